//! DELETE of a collection (upstream's `DeleteCollection`): every object the list options
//! select is deleted as one DELETE would, each passing admission; answers the list of them.

use super::delete::delete_params;
use super::scope::{RequestScope, list_body};
use crate::admission::Operation;
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response};
use crate::registry::store::DeleteParams;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;

/// Serves a deletecollection.
pub(super) async fn delete_collection(
    scope: &RequestScope<'_>,
    body: Body,
) -> Result<Response, ApiError> {
    let store = &scope.store;
    let ri = store.info();
    let params = delete_params(scope, body).await?;
    // Upstream's attributes of a deletecollection name no object.
    let admission = scope.admission(
        Operation::Delete,
        "",
        params.dry_run,
        params.admission_options(),
    );
    let params = DeleteParams {
        admission: Some(&admission),
        ..params.clone()
    };
    let items = store
        .delete_collection(scope.namespace, &scope.query.list_params()?, &params)
        .await?;
    Ok(scope.render_plain(&list_body(
        ri.api_version(),
        ri.list_kind(),
        ListMeta::default(),
        items,
    )))
}
