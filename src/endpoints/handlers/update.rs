//! PUT (upstream's `UpdateResource`): replaces the object, or what one of its subresources owns
//! (`status`, `finalize`, `approval`), or its replicas through `scale`.

use super::scale;
use super::scope::RequestScope;
use crate::admission::{Operation, Options};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response};
use crate::registry::managed_fields::Operation as FieldsOperation;
use crate::registry::store::UpdateTarget;
use http::StatusCode;

/// Serves an update.
pub(super) async fn update(scope: &RequestScope<'_>, body: Body) -> Result<Response, ApiError> {
    let (store, ns, name) = (&scope.store, scope.namespace, scope.name());
    let mut opts = scope.write_options(scope.field_manager(), FieldsOperation::Update)?;
    let admission = scope.admission(
        Operation::Update,
        name,
        opts.dry_run,
        Options::Update {
            field_manager: scope.requested_field_manager(),
        },
    );
    opts.admission = Some(&admission);
    if scope.subresource() == "scale" {
        let desired = scope.read_written_object(body, &mut opts).await?;
        let out = scale::write(store, ns, name, move |_| Ok(desired.clone()), opts).await?;
        return Ok(scope.render_plain(&out));
    }
    let target = UpdateTarget::for_subresource(scope.subresource())
        .ok_or_else(|| ApiError::method_not_allowed(&store.info().group, &store.info().resource))?;
    let obj = scope.read_written_object(body, &mut opts).await?;
    let out = store.update(ns, name, obj, target, opts).await?;
    Ok(scope.render(out.value, StatusCode::OK, &out.warnings))
}
