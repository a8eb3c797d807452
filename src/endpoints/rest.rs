//! REST handlers for resources: verbs, subresources, content negotiation, Table and watch.

use super::negotiation::{self, Format, Offer, Output, View};
use super::request_info::RequestInfo;
use super::status::ApiError;
use super::{Body, Request, Response, full};
use crate::registry::StoreSet;
use crate::registry::managed_fields::{self, ApplyError, ApplyRequest, Operation};
use crate::registry::selectors::{FieldSelector, LabelSelector};
use crate::registry::store::{
    DeleteParams, Deleted, Event, FieldValidation, ListParams, Store, UpdateTarget, WatchParams,
    WriteOptions,
};
use crate::registry::table::Column;
use crate::registry::{FieldError, RegistryError};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's limit on request bodies (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Admission for writes: called with the request's namespace and the object's name (empty
/// with generateName) once a create's body is decoded.
pub trait Admission: Send + Sync {
    /// `Err` rejects the create.
    fn admit_create<'a>(
        &'a self,
        store: &'a Store,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), ApiError>>;
    /// `Err` rejects the delete of object `name`.
    fn admit_delete(&self, _store: &Store, _name: &str) -> Result<(), ApiError> {
        Ok(())
    }
}

/// All resources of the built-in groups, by (group, version, resource).
pub struct ResourceHandler {
    stores: StoreSet,
    admission: Vec<Arc<dyn Admission>>,
    min_request_timeout: Duration,
}

/// What an endpoint serving `store` offers to negotiate: protobuf for built-in kinds with a
/// protobuf message, never for custom resources (upstream answers those 406, or JSON when
/// the client accepts it too).
fn offer(store: &Store, conversions: bool) -> Offer {
    let ri = store.info();
    Offer {
        protobuf: store.strategy().serves_protobuf()
            && super::protobuf::supports(&ri.api_version(), &ri.kind),
        conversions,
    }
}

fn accept_header(req: &Request) -> &str {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Negotiates the response of a resource request (upstream's `NegotiateOutputMediaType` with
/// the request scope's restrictions).
fn negotiate(req: &Request, offer: Offer) -> Result<Output, ApiError> {
    negotiation::negotiate(accept_header(req), offer)
        .ok_or_else(|| negotiation::not_acceptable(offer, false))
}

/// Renders an error as upstream's `ErrorNegotiated`: the Status in the format the client
/// accepts (no transformations), or JSON when it accepts none.
fn error_response(e: ApiError, accept: &str, offer: Offer) -> Response {
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

fn encode(value: &Value, output: Output, status: StatusCode, warnings: &[String]) -> Response {
    let body = match output.format {
        Format::Yaml => serde_saphyr::to_string(value)
            .unwrap_or_default()
            .into_bytes(),
        Format::Json => serde_json::to_vec(value).unwrap_or_default(),
        Format::Protobuf => match super::protobuf::encode(value) {
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
fn respond(body: Vec<u8>, output: Output, status: StatusCode, warnings: &[String]) -> Response {
    let mut resp = http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, output.content_type())
        .body(full(body))
        .expect("valid response");
    add_warnings(&mut resp, warnings);
    resp
}

/// A list's metadata.
fn list_metadata(
    resource_version: &str,
    continue_token: &Option<String>,
    remaining: Option<i64>,
) -> Value {
    let mut metadata = json!({ "resourceVersion": resource_version });
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        metadata["remainingItemCount"] = json!(r);
    }
    metadata
}

fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", v);
        }
    }
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// Query parameters of a request, decoded.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(req: &Request) -> Self {
        Self(
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }
    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let field_validation = match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        Ok(WriteOptions {
            dry_run: self.dry_run()?,
            field_validation,
            writer: None,
        })
    }
    /// `?force=`, which only apply patches may carry (upstream `ValidatePatchOptions`).
    fn force(&self, apply: bool) -> Result<bool, ApiError> {
        match self.get("force") {
            None => Ok(false),
            Some(_) if !apply => Err(patch_options_invalid(FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            ))),
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid force: {v:?}"))),
        }
    }
    fn list_params(&self) -> Result<ListParams, ApiError> {
        let labels = LabelSelector::parse(self.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(self.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let limit = match self.get("limit") {
            None | Some("") => 0,
            Some(l) => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?,
        };
        Ok(ListParams {
            labels,
            fields,
            limit,
            continue_token: self
                .get("continue")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            resource_version: self.get("resourceVersion").map(str::to_string),
            resource_version_match: self
                .get("resourceVersionMatch")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }
}

async fn read_body(req: Request) -> Result<(Bytes, String), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY_BYTES {
                return Err(ApiError::too_large(MAX_BODY_BYTES));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf.freeze(), content_type))
}

/// Decodes a JSON or YAML object body.
fn decode_object(bytes: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let value: Value = match media {
        "" | "application/json" => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        super::protobuf::MEDIA_TYPE => {
            super::protobuf::decode(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text =
                std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
        }
        _ => {
            return Err(ApiError::unsupported_media_type(
                media,
                &[
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf",
                ],
            ));
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Custom resources have no patch strategies, so upstream refuses strategic merge for them.
fn refuse_unsupported_patch(store: &Store, content_type: &str) -> Result<(), ApiError> {
    use super::patch::PatchType;
    let media = content_type.split(';').next().unwrap_or("").trim();
    if PatchType::from_content_type(media) == Some(PatchType::StrategicMerge)
        && !store.strategy().supports_strategic_merge()
    {
        return Err(ApiError::unsupported_media_type(
            media,
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ],
        ));
    }
    Ok(())
}

/// Applies a patch body to `original`.
fn apply_patch(
    original: &Value,
    bytes: &[u8],
    content_type: &str,
    info: &crate::registry::ResourceInfo,
) -> Result<Value, ApiError> {
    use super::patch::{PatchType, apply_patch};
    let media = content_type.split(';').next().unwrap_or("").trim();
    let kind = PatchType::from_content_type(media).ok_or_else(|| {
        ApiError::unsupported_media_type(
            media,
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                "application/strategic-merge-patch+json",
            ],
        )
    })?;
    let schema = super::patch::schema_for_kind(&info.group, &info.version, &info.kind);
    apply_patch(kind, original, bytes, schema.as_ref()).map_err(ApiError::from)
}

/// A 422 about the request's PatchOptions, as upstream's `ValidatePatchOptions`.
fn patch_options_invalid(error: FieldError) -> ApiError {
    RegistryError::Invalid {
        group: "meta.k8s.io".into(),
        qualified_kind: "PatchOptions.meta.k8s.io".into(),
        kind: "PatchOptions".into(),
        name: String::new(),
        errors: vec![error],
    }
    .into()
}

/// The field manager of a write: `?fieldManager=`, else the User-Agent's product.
fn request_manager(req: &Request, query: &Query) -> String {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    managed_fields::manager_from(query.get("fieldManager"), user_agent)
}

fn apply_error(e: ApplyError) -> RegistryError {
    match e {
        ApplyError::Conflicts(c) => RegistryError::ApplyConflict(c),
        ApplyError::BadRequest(m) => RegistryError::BadRequest(m),
        other => RegistryError::Internal(other.to_string()),
    }
}

/// Decodes an apply configuration: YAML, of which JSON is a part.
fn decode_apply_config(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    }
    Ok(value)
}

impl ResourceHandler {
    /// A handler serving `stores`, with admission plugins run on creates.
    pub fn new(
        stores: StoreSet,
        admission: Vec<Arc<dyn Admission>>,
        min_request_timeout: Duration,
    ) -> Self {
        Self {
            stores,
            admission,
            min_request_timeout,
        }
    }

    /// Serves a resource request a store of this handler owns; passes every other request
    /// (non-resource paths, resources of other links) to `next`.
    pub async fn serve_or(self: Arc<Self>, req: Request, next: &super::Handler) -> Response {
        let info = req
            .extensions()
            .get::<RequestInfo>()
            .cloned()
            .unwrap_or_default();
        if !info.is_resource_request
            || self
                .stores
                .get(&info.api_group, &info.api_version, &info.resource)
                .is_none()
        {
            return super::call(next, req).await;
        }
        match self.serve(req, info).await {
            Some(resp) => resp,
            None => ApiError::not_found_path().into_response(),
        }
    }

    /// Serves a resource request; `None` if no store owns it.
    pub fn serve(
        self: Arc<Self>,
        req: Request,
        info: RequestInfo,
    ) -> futures::future::BoxFuture<'static, Option<Response>> {
        Box::pin(async move {
            let store = self
                .stores
                .get(&info.api_group, &info.api_version, &info.resource)?;
            let accept = accept_header(&req).to_owned();
            let offer = offer(&store, false);
            Some(match self.dispatch(req, &info, store).await {
                Ok(resp) => resp,
                Err(e) => error_response(e, &accept, offer),
            })
        })
    }

    async fn dispatch(
        &self,
        req: Request,
        info: &RequestInfo,
        store: Arc<Store>,
    ) -> Result<Response, ApiError> {
        let ri = store.info().clone();
        let ns = (!info.namespace.is_empty()).then_some(info.namespace.as_str());
        // A namespaced resource is reachable without a namespace only for cluster-wide list/watch;
        // a cluster-scoped one never under a namespace.
        if (ri.namespaced && ns.is_none() && !matches!(info.verb.as_str(), "list" | "watch"))
            || (!ri.namespaced && ns.is_some() && ri.resource != "namespaces")
        {
            return Err(ApiError::not_found_path());
        }
        let ns = if ri.resource == "namespaces" {
            None
        } else {
            ns
        };
        let output = negotiate(&req, offer(&store, true))?;
        let query = Query::parse(&req);
        let name = info.name.as_str();
        let sub = info.subresource.as_str();
        if !sub.is_empty() && !ri.subresources.iter().any(|s| s.name == sub) {
            return Err(ApiError::not_found_path());
        }
        match (info.verb.as_str(), sub) {
            ("get", "") => Ok(self.render_one(
                &store,
                store.get(ns, name).await?,
                output,
                StatusCode::OK,
                &[],
            )),
            ("get", "status") => Ok(self.render_one(
                &store,
                store.get(ns, name).await?,
                output,
                StatusCode::OK,
                &[],
            )),
            ("get", "scale") => Ok(encode(
                &scale_of(&store, &store.get(ns, name).await?),
                output.plain(),
                StatusCode::OK,
                &[],
            )),
            ("list", "") => self.list(&store, ns, &query, output).await,
            ("watch", "") => self.watch(&store, ns, &query, output).await,
            ("create", "") if !name.is_empty() => {
                Err(ApiError::method_not_allowed(&ri.group, &ri.resource))
            }
            ("create", "") => {
                let mut opts = query.write_options()?;
                opts.writer =
                    Some(store.writer(request_manager(&req, &query), Operation::Update, sub));
                let (bytes, ct) = read_body(req).await?;
                let body = decode_object(&bytes, &ct)?;
                store.check_namespace(ns, &body)?;
                let object_name = body
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                for plugin in &self.admission {
                    plugin.admit_create(&store, ns, object_name).await?;
                }
                let out = store.create(ns, body, opts).await?;
                Ok(self.render_one(
                    &store,
                    out.value,
                    output,
                    StatusCode::CREATED,
                    &out.warnings,
                ))
            }
            ("update", "" | "status" | "finalize" | "approval") => {
                let mut opts = query.write_options()?;
                opts.writer =
                    Some(store.writer(request_manager(&req, &query), Operation::Update, sub));
                let (bytes, ct) = read_body(req).await?;
                let body = decode_object(&bytes, &ct)?;
                let target = UpdateTarget::for_subresource(sub)
                    .ok_or_else(|| ApiError::method_not_allowed(&ri.group, &ri.resource))?;
                let out = store.update(ns, name, body, target, opts).await?;
                Ok(self.render_one(&store, out.value, output, StatusCode::OK, &out.warnings))
            }
            ("update", "scale") => {
                let mut opts = query.write_options()?;
                opts.writer =
                    Some(store.writer(request_manager(&req, &query), Operation::Update, sub));
                let (bytes, ct) = read_body(req).await?;
                let scale = decode_object(&bytes, &ct)?;
                let out = update_scale(&store, ns, name, move |_| Ok(scale.clone()), opts).await?;
                Ok(encode(&out, output.plain(), StatusCode::OK, &[]))
            }
            ("patch", "" | "status" | "approval") => {
                let mut opts = query.write_options()?;
                let manager = request_manager(&req, &query);
                let (bytes, ct) = read_body(req).await?;
                refuse_unsupported_patch(&store, &ct)?;
                let target = UpdateTarget::for_subresource(sub)
                    .ok_or_else(|| ApiError::method_not_allowed(&ri.group, &ri.resource))?;
                let is_apply = super::patch::PatchType::from_content_type(&ct)
                    == Some(super::patch::PatchType::Apply);
                let force = query.force(is_apply)?;
                if is_apply {
                    // Appliers must name themselves; the User-Agent is not enough.
                    if query.get("fieldManager").unwrap_or("").is_empty() {
                        return Err(patch_options_invalid(FieldError::required(
                            "fieldManager",
                            "is required for apply patch",
                        )));
                    }
                    opts.writer = Some(store.writer(manager, Operation::Apply, sub));
                    let config = decode_apply_config(&bytes)?;
                    let (out, status) = self
                        .server_side_apply(&store, ns, name, target, &config, force, opts)
                        .await?;
                    return Ok(self.render_one(&store, out.value, output, status, &out.warnings));
                }
                opts.writer = Some(store.writer(manager, Operation::Update, sub));
                let out = store
                    .update_with(ns, name, target, opts, |current| {
                        apply_patch(current, &bytes, &ct, &ri).map_err(api_to_registry)
                    })
                    .await?;
                Ok(self.render_one(&store, out.value, output, StatusCode::OK, &out.warnings))
            }
            ("patch", "scale") => {
                let mut opts = query.write_options()?;
                opts.writer =
                    Some(store.writer(request_manager(&req, &query), Operation::Update, sub));
                let (bytes, ct) = read_body(req).await?;
                let scale_info = scale_resource_info();
                let out = update_scale(
                    &store,
                    ns,
                    name,
                    move |current| apply_patch(current, &bytes, &ct, &scale_info),
                    opts,
                )
                .await?;
                Ok(encode(&out, output.plain(), StatusCode::OK, &[]))
            }
            ("delete", "") => {
                for plugin in &self.admission {
                    plugin.admit_delete(&store, name)?;
                }
                let (bytes, ct) = read_body(req).await?;
                let params = delete_params(&bytes, &ct, &query)?;
                match store.delete(ns, name, &params).await? {
                    Deleted::Pending(obj) => {
                        Ok(self.render_one(&store, obj, output, StatusCode::OK, &[]))
                    }
                    Deleted::Gone(obj) if ri.resource == "pods" || ri.resource == "namespaces" => {
                        Ok(self.render_one(&store, obj, output, StatusCode::OK, &[]))
                    }
                    Deleted::Gone(obj) => {
                        let status = json!({
                            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                            "details": {"name": name, "group": ri.group, "kind": ri.resource, "uid": obj.pointer("/metadata/uid")}
                        });
                        Ok(encode(&status, output.plain(), StatusCode::OK, &[]))
                    }
                }
            }
            ("deletecollection", "") if ri.verbs.contains(&"deletecollection") => {
                let (bytes, ct) = read_body(req).await?;
                let params = delete_params(&bytes, &ct, &query)?;
                let items = store
                    .delete_collection(ns, &query.list_params()?, &params)
                    .await?;
                let list = json!({"kind": ri.list_kind(), "apiVersion": ri.api_version(), "metadata": {}, "items": items});
                Ok(encode(&list, output.plain(), StatusCode::OK, &[]))
            }
            _ => Err(ApiError::method_not_allowed(&ri.group, &ri.resource)),
        }
    }

    /// Server-side apply: merges `config` into the live object with field ownership, or
    /// creates it (on the main resource, with create admission) when it does not exist.
    #[allow(clippy::too_many_arguments)]
    async fn server_side_apply(
        &self,
        store: &Arc<Store>,
        ns: Option<&str>,
        name: &str,
        target: UpdateTarget,
        config: &Value,
        force: bool,
        opts: WriteOptions,
    ) -> Result<(crate::registry::store::Outcome<Value>, StatusCode), ApiError> {
        let ri = store.info();
        let writer = opts.writer.clone().expect("apply has a writer");
        let config_name = config.pointer("/metadata/name").and_then(Value::as_str);
        if let Some(n) = config_name
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if let (true, Some(req_ns), Some(obj_ns)) = (
            ri.namespaced,
            ns,
            config
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
        ) && !obj_ns.is_empty()
            && obj_ns != req_ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let now = crate::registry::store::now_rfc3339();
        let request = ApplyRequest {
            config,
            force,
            scope: target.scope(ri.has_status()),
            kind: &ri.kind,
            now: &now,
        };
        // A create racing this apply makes the create fail; the second round updates it.
        for _ in 0..2 {
            let updated = store
                .update_with(ns, name, target, opts.clone(), |current| {
                    managed_fields::apply(Some(current), &writer, request).map_err(apply_error)
                })
                .await;
            match updated {
                Ok(out) => return Ok((out, StatusCode::OK)),
                Err(RegistryError::NotFound { .. }) if target == UpdateTarget::Main => {}
                Err(e) => return Err(e.into()),
            }
            if config_name.is_none() {
                return Err(ApiError::bad_request(format!(
                    "the name of the object () does not match the name on the URL ({name})"
                )));
            }
            for plugin in &self.admission {
                plugin.admit_create(store, ns, name).await?;
            }
            let obj = managed_fields::apply(None, &writer, request)
                .map_err(|e| ApiError::from(apply_error(e)))?;
            match store.create(ns, obj, opts.clone()).await {
                Ok(out) => return Ok((out, StatusCode::CREATED)),
                Err(RegistryError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Conflict {
            resource: ri.group_resource(),
            name: name.into(),
            message: "the object has been modified; please apply your changes to the latest version and try again".into(),
        }
        .into())
    }

    fn render_one(
        &self,
        store: &Store,
        obj: Value,
        output: Output,
        status: StatusCode,
        warnings: &[String],
    ) -> Response {
        match output.view {
            View::Table => encode(
                &table(
                    store,
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

    async fn list(
        &self,
        store: &Store,
        ns: Option<&str>,
        query: &Query,
        output: Output,
    ) -> Result<Response, ApiError> {
        let params = query.list_params()?;
        let ri = store.info();
        if output.view == View::Object
            && output.format == Format::Json
            && let Some(page) = store.list_spliced(ns, &params).await?
        {
            let metadata =
                list_metadata(&page.resource_version, &page.continue_token, page.remaining);
            // The members in serde_json's (sorted) order, as the decoded path writes them.
            let mut body = Vec::with_capacity(page.items.len() + 256);
            body.extend_from_slice(b"{\"apiVersion\":");
            serde_json::to_writer(&mut body, &ri.api_version()).expect("strings serialize");
            body.extend_from_slice(b",\"items\":");
            body.extend_from_slice(&page.items);
            body.extend_from_slice(b",\"kind\":");
            serde_json::to_writer(&mut body, &ri.list_kind()).expect("strings serialize");
            body.extend_from_slice(b",\"metadata\":");
            serde_json::to_writer(&mut body, &metadata).expect("JSON values serialize");
            body.push(b'}');
            return Ok(respond(body, output, StatusCode::OK, &[]));
        }
        let page = store.list(ns, &params).await?;
        let metadata = list_metadata(&page.resource_version, &page.continue_token, page.remaining);
        let value = match output.view {
            View::Table => {
                let mut t = table(
                    store,
                    &page.items,
                    query.get("includeObject"),
                    &page.resource_version,
                );
                t["metadata"] = metadata;
                t
            }
            View::PartialMetadata => json!({
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
                "items": page.items.iter().map(partial_metadata).collect::<Vec<_>>()
            }),
            View::Object => {
                let mut items = page.items;
                let omit_type_meta = store.strategy().typed_list_items();
                for item in &mut items {
                    crate::registry::spliced_list::to_list_item(item, omit_type_meta);
                }
                // Built by hand so the items move into the list: `json!` would deep-copy them.
                let mut list = serde_json::Map::new();
                list.insert("kind".into(), Value::String(ri.list_kind()));
                list.insert("apiVersion".into(), Value::String(ri.api_version()));
                list.insert("metadata".into(), metadata);
                list.insert("items".into(), Value::Array(items));
                Value::Object(list)
            }
        };
        Ok(encode(&value, output, StatusCode::OK, &[]))
    }

    async fn watch(
        &self,
        store: &Arc<Store>,
        ns: Option<&str>,
        query: &Query,
        output: Output,
    ) -> Result<Response, ApiError> {
        let params = WatchParams {
            list: query.list_params()?,
            bookmarks: query.flag("allowWatchBookmarks"),
            send_initial_events: query.get("sendInitialEvents").map(|v| v == "true"),
        };
        let timeout = match query.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(
                t.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}")))?,
            ),
            // Upstream spreads watch lifetimes over [min, 2·min) so clients do not reconnect in waves.
            None => self
                .min_request_timeout
                .mul_f64(1.0 + (crate::registry::store::new_uid().as_bytes()[0] as f64 / 256.0)),
        };
        // Watches need a streaming serialiser: YAML has none (upstream's
        // NegotiateOutputMediaTypeStream).
        if output.format == Format::Yaml {
            return Err(negotiation::not_acceptable(offer(store, true), true));
        }
        let events = store.watch(ns, params).await?;
        let store = store.clone();
        let include = query.get("includeObject").map(str::to_string);
        let deadline = tokio::time::sleep(timeout);
        let lines = events.take_until(deadline).map(move |ev: Event| {
            let converted = match output.view {
                View::Table if ev.kind != "ERROR" && ev.kind != "BOOKMARK" => Some(table(
                    &store,
                    std::slice::from_ref(&*ev.object),
                    include.as_deref(),
                    "",
                )),
                View::PartialMetadata if ev.kind != "ERROR" => Some(partial_metadata(&ev.object)),
                _ => None,
            };
            let encode = |object: &Value| -> Result<Bytes, super::BoxError> {
                if output.format == Format::Protobuf {
                    // Upstream ends the watch when an event cannot be encoded; so does the error.
                    let mut frame = Vec::new();
                    super::protobuf::encode_watch_frame(&mut frame, ev.kind, object)?;
                    Ok(Bytes::from(frame))
                } else {
                    let mut line = serde_json::to_vec(&WatchLine {
                        object,
                        kind: ev.kind,
                    })
                    .unwrap_or_default();
                    line.push(b'\n');
                    Ok(Bytes::from(line))
                }
            };
            let frame = match (&converted, &ev.frames) {
                (Some(object), _) => encode(object)?,
                // The object as stored: every watcher of this change in this encoding sends the
                // same bytes, so the first one encodes them for all.
                (None, Some(frames)) => {
                    let encoding = match output.format {
                        Format::Protobuf => "protobuf",
                        _ => "json",
                    };
                    frames.get_or_encode(ev.kind, encoding, || encode(&ev.object))?
                }
                (None, None) => encode(&ev.object)?,
            };
            Ok::<_, super::BoxError>(hyper::body::Frame::data(frame))
        });
        // Upstream adds `;stream=watch` to every media type but JSON's.
        let content_type = match (output.format, output.view) {
            (Format::Protobuf, _) => "application/vnd.kubernetes.protobuf;stream=watch",
            (_, View::Table) => "application/json;as=Table;v=v1;g=meta.k8s.io",
            _ => "application/json",
        };
        let body: Body = BodyExt::boxed_unsync(StreamBody::new(lines));
        Ok(http::Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(body)
            .expect("valid response"))
    }
}

/// One line of a JSON watch stream, borrowing the shared object; the fields are in the sorted
/// order a `serde_json` map writes them.
#[derive(serde::Serialize)]
struct WatchLine<'a> {
    object: &'a Value,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// Carries an API error from a step inside a store operation (a patch) through the registry.
fn api_to_registry(e: ApiError) -> crate::registry::RegistryError {
    crate::registry::RegistryError::Rejected {
        code: e.code.as_u16(),
        reason: e.reason,
        message: e.message,
    }
}

fn delete_params(
    bytes: &[u8],
    content_type: &str,
    query: &Query,
) -> Result<DeleteParams, ApiError> {
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_object(bytes, content_type)?
    };
    let str_at = |ptr: &str| {
        body.pointer(ptr)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let dry_run = query.dry_run()?
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let propagation_policy = query
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| str_at("/propagationPolicy"))
        .or_else(|| {
            body.get("orphanDependents")
                .and_then(Value::as_bool)
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
        .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64));
    Ok(DeleteParams {
        precondition_uid: str_at("/preconditions/uid"),
        precondition_resource_version: str_at("/preconditions/resourceVersion"),
        propagation_policy,
        grace_period_seconds: grace,
        dry_run,
    })
}

/// The `autoscaling/v1` Scale view of an object with a scale subresource.
fn scale_of(store: &Store, obj: &Value) -> Value {
    let paths = store
        .info()
        .scale
        .as_ref()
        .expect("scale subresource has paths");
    // Custom resources may have no selector path, or one to a serialized selector string.
    let selector = match Some(&paths.selector)
        .filter(|p| !p.is_empty())
        .and_then(|p| obj.pointer(p))
    {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(sel))
            if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") =>
        {
            label_selector_string(&Value::Object(sel.clone()))
        }
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut metadata = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            metadata[k] = v.clone();
        }
    }
    let mut status =
        json!({"replicas": obj.pointer(&paths.status_replicas).cloned().unwrap_or(json!(0))});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
        "spec": {"replicas": obj.pointer(&paths.spec_replicas).cloned().unwrap_or(json!(0))},
        "status": status,
    })
}

/// A LabelSelector object in its string form.
fn label_selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(Value::Object(m)) = sel.get("matchLabels") {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(Value::Array(exprs)) = sel.get("matchExpressions") {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(
                match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                    "In" => format!("{key} in ({})", values.join(",")),
                    "NotIn" => format!("{key} notin ({})", values.join(",")),
                    "Exists" => key.to_string(),
                    _ => format!("!{key}"),
                },
            );
        }
    }
    parts.join(",")
}

fn scale_resource_info() -> crate::registry::ResourceInfo {
    crate::registry::ResourceInfo {
        group: "autoscaling".into(),
        version: "v1".into(),
        kind: "Scale".into(),
        resource: "scale".into(),
        singular: "scale".into(),
        namespaced: true,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: std::borrow::Cow::Borrowed(&[]),
        subresources: Vec::new(),
        name_rule: crate::registry::validation::NameRule::Dns1123Subdomain,
        scale: None,
    }
}

/// Writes `spec.replicas` from a Scale the client sent (or patched), with upstream's checks.
async fn update_scale(
    store: &Store,
    ns: Option<&str>,
    name: &str,
    desired_scale: impl Fn(&Value) -> Result<Value, ApiError>,
    opts: WriteOptions,
) -> Result<Value, ApiError> {
    use crate::registry::{FieldError, RegistryError};
    let paths = store
        .info()
        .scale
        .as_ref()
        .expect("scale subresource has paths");
    let out = store
        .update_with(ns, name, UpdateTarget::Main, opts, |current| {
            let scale = desired_scale(&scale_of(store, current)).map_err(api_to_registry)?;
            if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str)
                && Some(rv) != current.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            {
                return Err(RegistryError::Conflict {
                    resource: store.info().group_resource(),
                    name: name.into(),
                    message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
            }
            let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            if replicas < 0 {
                return Err(RegistryError::Invalid {
                    group: "autoscaling".into(),
                    qualified_kind: "Scale.autoscaling".into(),
                    kind: "Scale".into(),
                    name: name.into(),
                    errors: vec![FieldError::invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
                });
            }
            let mut next = current.clone();
            if let Some(slot) = next.pointer_mut(&paths.spec_replicas) {
                *slot = json!(replicas);
            } else if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(replicas));
            }
            Ok(next)
        })
        .await?;
    Ok(scale_of(store, &out.value))
}

/// A `meta.k8s.io/v1` Table of `objects`.
fn table(
    store: &Store,
    objects: &[Value],
    include_object: Option<&str>,
    resource_version: &str,
) -> Value {
    let strategy = store.strategy();
    let columns: Vec<Column> = strategy.columns();
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
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": columns, "rows": rows})
}
