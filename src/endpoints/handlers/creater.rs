//! POSTs answered by REST storage of their own (upstream's `rest.Creater` storages, served by
//! the same create handler): create-only resources (the reviews) and subresources taking an
//! object of another kind (serviceaccounts/token, pods/binding, pods/eviction). Both decode the
//! body, pass admission as a create, then let the storage answer.

use super::admit::AdmissionPoint;
use super::body;
use super::query::Query;
use super::scope::{RequestScope, encode};
use crate::admission::{Attributes, Chain, Operation, Options, Warnings};
use crate::auth::UserInfo;
use crate::endpoints::negotiation::{self, Offer};
use crate::endpoints::request_info::{RequestInfo, Verb};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response};
use crate::registry::rest::{Context, Creater, SubresourceCreater};
use crate::registry::{Admit, RegistryError, ResourceInfo};
use http::StatusCode;
use serde_json::Value;

/// Refuses a body that names another kind or version than `kind` of `api_version`.
fn check_type(body: &Value, kind: &str, api_version: &str) -> Result<(), ApiError> {
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && k != kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the request body ({k}) does not match the expected kind {kind}"
        )));
    }
    if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
        && av != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({api_version})"
        )));
    }
    Ok(())
}

/// Passes `obj` through mutating then validating admission as a create.
async fn admit(admission: &AdmissionPoint<'_>, obj: &mut Value) -> Result<(), RegistryError> {
    admission.mutate(obj, None).await?;
    admission.validate(obj, None).await
}

/// What a create-only resource's request needs beside its body.
pub(super) struct CreaterRequest<'a> {
    /// The parsed path.
    pub request: &'a RequestInfo,
    /// The query parameters.
    pub query: Query,
    /// The Accept header.
    pub accept: &'a str,
    /// The Content-Type header.
    pub content_type: &'a str,
    /// Who asks.
    pub user: &'a UserInfo,
    /// The admission chain.
    pub admission: &'a Chain,
    /// The request's audit annotations.
    pub annotations: crate::audit::Annotations,
}

/// The offer of a resource without a store: JSON and YAML (its kinds have no protobuf here).
const JSON_ONLY: Offer = Offer {
    protobuf: false,
    conversions: false,
};

/// Serves a request for a create-only resource: POST to its collection, and nothing else.
pub(super) async fn serve(
    creater: &dyn Creater,
    r: CreaterRequest<'_>,
    body: Body,
) -> Result<Response, ApiError> {
    let info: &ResourceInfo = creater.info();
    let namespace = (!r.request.namespace.is_empty()).then_some(r.request.namespace.as_str());
    if info.namespaced != namespace.is_some() {
        return Err(ApiError::not_found_path());
    }
    if r.request.verb != Verb::Create || !r.request.name.is_empty() {
        return Err(ApiError::method_not_allowed(&info.group, &info.resource));
    }
    let output = negotiation::negotiate(r.accept, JSON_ONLY)
        .ok_or_else(|| negotiation::not_acceptable(JSON_ONLY, false))?;
    let dry_run = r.query.dry_run()?;
    let mut obj = body::decode_object(&body::read(body).await?, r.content_type, Some(&info.kind))?;
    check_type(&obj, &info.kind, &info.api_version())?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let warnings = Warnings::default();
    let admission = AdmissionPoint::of(
        r.admission,
        Attributes {
            operation: Operation::Create,
            resource: info,
            subresource: "",
            namespace,
            name: &name,
            old_object: None,
            user: r.user,
            dry_run,
            options: Options::Create {
                field_manager: r.query.get("fieldManager").unwrap_or(""),
            },
            warnings: &warnings,
            annotations: &r.annotations,
        },
    );
    admit(&admission, &mut obj).await?;
    let ctx = Context {
        user: r.user,
        namespace,
        dry_run,
    };
    let out = creater.create(&ctx, obj).await?;
    Ok(encode(&out, output, StatusCode::CREATED, &warnings.take()))
}

/// Serves a POST to a subresource served by `creater`.
pub(super) async fn create_subresource(
    scope: &RequestScope<'_>,
    creater: &dyn SubresourceCreater,
    body: Body,
) -> Result<Response, ApiError> {
    let info = scope.store.info();
    let sub = info
        .subresources
        .iter()
        .find(|s| s.name == scope.subresource())
        .expect("routed subresources are declared");
    let dry_run = scope.query.dry_run()?;
    let mut obj = scope.read_object(body).await?;
    let api_version = if sub.group.is_empty() {
        sub.version.to_string()
    } else {
        format!("{}/{}", sub.group, sub.version)
    };
    check_type(&obj, &sub.kind, &api_version)?;
    let admission = scope.admission(
        Operation::Create,
        scope.name(),
        dry_run,
        Options::Create {
            field_manager: scope.requested_field_manager(),
        },
    );
    admit(&admission, &mut obj).await?;
    let ctx = Context {
        user: &scope.user,
        namespace: scope.namespace,
        dry_run,
    };
    let out = creater
        .create(&ctx, &scope.store, scope.name(), obj)
        .await?;
    Ok(encode(&out, scope.output.plain(), StatusCode::CREATED, &[]))
}
