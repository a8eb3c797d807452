//! POST to a collection (upstream's `CreateResource`): decode, check the namespace, then the
//! store's create with the request's admission.

use super::scope::RequestScope;
use crate::admission::{Operation, Options};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response};
use crate::registry::managed_fields::Operation as FieldsOperation;
use http::StatusCode;
use serde_json::Value;

/// Serves a create.
pub(super) async fn create(scope: &RequestScope<'_>, body: Body) -> Result<Response, ApiError> {
    let store = &scope.store;
    let mut opts = scope.write_options(scope.field_manager(), FieldsOperation::Update)?;
    let obj = scope.read_written_object(body, &mut opts).await?;
    store.check_namespace(scope.namespace, &obj)?;
    // Admission names the object as its body does (empty with generateName), as upstream.
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let admission = scope.admission(
        Operation::Create,
        &name,
        opts.dry_run,
        Options::Create {
            field_manager: scope.requested_field_manager(),
        },
    );
    opts.admission = Some(&admission);
    let out = store.create(scope.namespace, obj, opts).await?;
    Ok(scope.render(out.value, StatusCode::CREATED, &out.warnings))
}
