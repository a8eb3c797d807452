//! DELETE of one object (upstream's `DeleteResource`): DeleteOptions from the body and query,
//! then the store's delete with the request's admission.

use super::body;
use super::query::Query;
use super::scope::RequestScope;
use crate::admission::{Operation, Options};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response};
use crate::registry::store::{DeleteParams, Deleted};
use http::StatusCode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Status, StatusDetails};
use serde_json::Value;

/// The DeleteOptions of a request: its body (JSON, YAML or protobuf; empty means none) and
/// query, the query winning where both say something.
pub(super) async fn delete_params(
    scope: &RequestScope<'_>,
    body: Body,
) -> Result<DeleteParams<'static>, ApiError> {
    let bytes = body::read(body).await?;
    let options = if bytes.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        let value = body::decode_object(&bytes, &scope.content_type, None)?;
        serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("decoding DeleteOptions: {e}")))?
    };
    params_of(&options, &scope.query)
}

fn params_of(body: &DeleteOptions, query: &Query) -> Result<DeleteParams<'static>, ApiError> {
    let dry_run = query.dry_run()?
        || body
            .dry_run
            .as_ref()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let propagation_policy = query
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| body.propagation_policy.clone())
        .or_else(|| {
            body.orphan_dependents
                .map(|o| if o { "Orphan" } else { "Background" }.to_string())
        });
    if let Some(p) = &propagation_policy
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    let grace = query
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or(body.grace_period_seconds);
    let preconditions = body.preconditions.as_ref();
    Ok(DeleteParams {
        precondition_uid: preconditions.and_then(|p| p.uid.clone()),
        precondition_resource_version: preconditions.and_then(|p| p.resource_version.clone()),
        propagation_policy,
        grace_period_seconds: grace,
        dry_run,
        admission: None,
    })
}

impl DeleteParams<'_> {
    /// The options admission sees.
    pub(super) fn admission_options(&self) -> Options<'_> {
        Options::Delete {
            propagation_policy: self.propagation_policy.as_deref(),
            grace_period_seconds: self.grace_period_seconds,
        }
    }
}

/// Serves the delete of one object: the object while deletion is pending (and, for pods and
/// namespaces, once it is gone), else a Success Status naming it, as upstream.
pub(super) async fn delete(scope: &RequestScope<'_>, body: Body) -> Result<Response, ApiError> {
    let (store, name) = (&scope.store, scope.name());
    let ri = store.info();
    let params = delete_params(scope, body).await?;
    let admission = scope.admission(
        Operation::Delete,
        name,
        params.dry_run,
        params.admission_options(),
    );
    let params = DeleteParams {
        admission: Some(&admission),
        ..params.clone()
    };
    match store.delete(scope.namespace, name, &params).await? {
        Deleted::Pending(obj) => Ok(scope.render(obj, StatusCode::OK, &[])),
        Deleted::Gone(obj) if ri.delete_returns_object => {
            Ok(scope.render(obj, StatusCode::OK, &[]))
        }
        Deleted::Gone(obj) => {
            let status = Status {
                status: Some("Success".into()),
                details: Some(StatusDetails {
                    name: Some(name.into()),
                    group: Some(ri.group.to_string()),
                    kind: Some(ri.resource.to_string()),
                    uid: obj
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    ..StatusDetails::default()
                }),
                ..Status::default()
            };
            Ok(scope.render_plain(&serde_json::to_value(status).expect("Status serializes")))
        }
    }
}
