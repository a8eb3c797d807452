//! `RequestScope`: what every verb handler knows about its request, parsed once (upstream's
//! `handlers.RequestScope` plus the request's own facts), and how it renders its answer.

use super::admit::AdmissionPoint;
use super::body;
use super::query::Query;
use crate::admission::{Chain, Operation, Options, Warnings};
use crate::auth::UserInfo;
use crate::endpoints::negotiation::{self, Format, Offer, Output, View};
use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response, full};
use crate::protobuf;
use crate::registry::Store;
use crate::registry::managed_fields::{self, Operation as FieldsOperation};
use crate::registry::store::{BodyFields, FieldValidation, WriteOptions};
use http::{HeaderValue, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// One resource request, ready for its verb's handler.
pub(super) struct RequestScope<'a> {
    /// The store of the resource.
    pub store: Arc<Store>,
    /// The parsed path.
    pub request: &'a RequestInfo,
    /// The request's namespace as the store takes it: `None` at the cluster scope, and for
    /// namespaces themselves (whose name the path's namespace segment is).
    pub namespace: Option<&'a str>,
    /// The query parameters.
    pub query: Query,
    /// The negotiated response format.
    pub output: Output,
    /// Who asks.
    pub user: UserInfo,
    /// The request's Content-Type.
    pub content_type: String,
    /// The request's User-Agent, for field managers.
    pub user_agent: String,
    /// The admission chain writes pass.
    pub admission: &'a Chain,
    /// --min-request-timeout, for watches.
    pub min_request_timeout: Duration,
    /// When a watch ends because the server shuts down (--shutdown-watch-termination-grace-period).
    pub watch_termination: Option<crate::filters::watch_termination::WatchTermination>,
    /// Warnings admission gave, sent with the response whatever it is.
    pub warnings: Warnings,
    /// The request's audit annotations (none kept when it is not audited).
    pub annotations: crate::audit::Annotations,
}

/// What an endpoint serving `store` offers to negotiate: protobuf for built-in kinds with a
/// protobuf message, never for custom resources (upstream answers those 406, or JSON when
/// the client accepts it too).
pub(super) fn offer(store: &Store, conversions: bool) -> Offer {
    let ri = store.info();
    Offer {
        protobuf: store.strategy().serves_protobuf()
            && protobuf::supports(&ri.api_version(), &ri.kind),
        conversions,
    }
}

/// Renders an error as upstream's `ErrorNegotiated`: the Status in the format the client
/// accepts (no transformations), or JSON when it accepts none.
pub(super) fn error_response(e: ApiError, accept: &str, offer: Offer) -> Response {
    let offer = Offer {
        conversions: false,
        ..offer
    };
    let output = match negotiation::negotiate(accept, offer) {
        Some(output) if output.format != Format::Json => output,
        _ => return e.into_response(),
    };
    let status = serde_json::to_value(e.status()).unwrap_or_default();
    let mut resp = encode(&status, output, e.code, &[]);
    if let Some(secs) = e.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    resp
}

/// A body in the negotiated format.
pub(super) fn encode(
    value: &Value,
    output: Output,
    status: StatusCode,
    warnings: &[String],
) -> Response {
    let body = match output.format {
        Format::Yaml => serde_saphyr::to_string(value)
            .unwrap_or_default()
            .into_bytes(),
        Format::Json => serde_json::to_vec(value).unwrap_or_default(),
        Format::Protobuf => match protobuf::encode(value) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "encoding a response as protobuf");
                return ApiError::internal(e).into_response();
            }
        },
    };
    respond(body, output, status, warnings)
}

/// A response with an encoded body.
pub(super) fn respond(
    body: Vec<u8>,
    output: Output,
    status: StatusCode,
    warnings: &[String],
) -> Response {
    let resp = http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, output.content_type())
        .body(full(body))
        .expect("valid response");
    with_warnings(resp, warnings)
}

/// `resp` with one `Warning: 299 - "…"` header per warning, as upstream's warning recorder.
pub(super) fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

/// A list's metadata.
pub(super) fn list_meta(
    resource_version: &str,
    continue_token: Option<String>,
    remaining: Option<i64>,
) -> ListMeta {
    ListMeta {
        resource_version: Some(resource_version.to_string()),
        continue_: continue_token,
        remaining_item_count: remaining,
        self_link: None,
    }
}

/// A list body of `kind` in `api_version`; the items move into it rather than being copied.
pub(super) fn list_body(
    api_version: String,
    kind: String,
    metadata: ListMeta,
    items: Vec<Value>,
) -> Value {
    let mut list = Map::new();
    list.insert("kind".into(), Value::String(kind));
    list.insert("apiVersion".into(), Value::String(api_version));
    list.insert(
        "metadata".into(),
        serde_json::to_value(metadata).expect("ListMeta serializes"),
    );
    list.insert("items".into(), Value::Array(items));
    Value::Object(list)
}

/// The PartialObjectMetadata view of an object.
pub(super) fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A `meta.k8s.io/v1` Table of `objects`.
pub(super) fn table(
    store: &Store,
    objects: &[Value],
    include_object: Option<&str>,
    resource_version: &str,
) -> Value {
    let strategy = store.strategy();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let object = match include_object {
                Some("None") => Value::Null,
                Some("Object") => obj.clone(),
                _ => partial_metadata(obj),
            };
            json!({"cells": strategy.cells(obj), "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": strategy.columns(), "rows": rows})
}

impl<'a> RequestScope<'a> {
    /// The object's name from the path.
    pub fn name(&self) -> &'a str {
        &self.request.name
    }

    /// The subresource from the path, empty for the main resource.
    pub fn subresource(&self) -> &'a str {
        &self.request.subresource
    }

    /// `?fieldManager=` as the client sent it (empty when it sent none).
    pub fn requested_field_manager(&self) -> &str {
        self.query.get("fieldManager").unwrap_or("")
    }

    /// The field manager of a write: `?fieldManager=`, else the User-Agent's product.
    pub fn field_manager(&self) -> String {
        managed_fields::manager_from(self.query.get("fieldManager"), &self.user_agent)
    }

    /// The options every write takes from the query (dry-run, field validation) and its
    /// writer for managedFields; admission is attached by the handler.
    pub fn write_options(
        &self,
        manager: String,
        operation: FieldsOperation,
    ) -> Result<WriteOptions<'static>, ApiError> {
        Ok(WriteOptions {
            dry_run: self.query.dry_run()?,
            field_validation: self.query.field_validation()?,
            writer: Some(self.store.writer(manager, operation, self.subresource())),
            admission: None,
            direct: false,
            body_fields: None,
        })
    }

    /// Reads and decodes the request's object body.
    pub async fn read_object(&self, body: Body) -> Result<Value, ApiError> {
        let bytes = body::read(body).await?;
        body::decode_object(&bytes, &self.content_type, Some(&self.store.info().kind))
    }

    /// Reads and decodes the object a write stores; for a JSON body whose unknown fields are
    /// checked, also notes its fields in `opts` (see [`WriteOptions::body_fields`]).
    pub async fn read_written_object(
        &self,
        body: Body,
        opts: &mut WriteOptions<'_>,
    ) -> Result<Value, ApiError> {
        let bytes = body::read(body).await?;
        let obj = body::decode_object(&bytes, &self.content_type, Some(&self.store.info().kind))?;
        if opts.field_validation != FieldValidation::Ignore
            && matches!(
                body::media_type(&self.content_type),
                "" | "application/json"
            )
        {
            opts.body_fields = BodyFields::scan(&bytes).map(Arc::new);
        }
        Ok(obj)
    }

    /// The admission of this request's write of `name` (see [`AdmissionPoint`]).
    pub fn admission(
        &'a self,
        operation: Operation,
        name: &'a str,
        dry_run: bool,
        options: Options<'a>,
    ) -> AdmissionPoint<'a> {
        AdmissionPoint::new(self, operation, name, dry_run, options)
    }

    /// One object in the negotiated view and format.
    pub fn render(&self, obj: Value, status: StatusCode, warnings: &[String]) -> Response {
        let output = self.output;
        match output.view {
            View::Table => encode(
                &table(
                    &self.store,
                    std::slice::from_ref(&obj),
                    None,
                    obj.pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ),
                output,
                status,
                warnings,
            ),
            View::PartialMetadata => encode(&partial_metadata(&obj), output, status, warnings),
            View::Object => encode(&obj, output, status, warnings),
        }
    }

    /// A body that has no other views (a Scale, a Status, a deletecollection list), in the
    /// negotiated format.
    pub fn render_plain(&self, value: &Value) -> Response {
        encode(value, self.output.plain(), StatusCode::OK, &[])
    }
}
