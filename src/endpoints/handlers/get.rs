//! GET of one object, of its status, or of its Scale (upstream's `GetResource`).

use super::scale;
use super::scope::RequestScope;
use crate::endpoints::Response;
use crate::endpoints::status::ApiError;
use http::StatusCode;

/// Serves a GET of the object, or of subresource `status` or `ephemeralcontainers` (the same
/// object) or `scale`.
pub(super) async fn get(scope: &RequestScope<'_>) -> Result<Response, ApiError> {
    let obj = scope.store.get(scope.namespace, scope.name()).await?;
    Ok(match scope.subresource() {
        "scale" => scope.render_plain(&scale::view(&scope.store, &obj)),
        _ => scope.render(obj, StatusCode::OK, &[]),
    })
}
