//! Audit (upstream's `WithAuditInit` and `WithAudit`): every response carries an `Audit-ID`
//! (the client's, or a new one); a request the audit policy selects is recorded at its stages —
//! RequestReceived, ResponseStarted for long-running requests, ResponseComplete once the body
//! is sent — with the request's object at level Request and the response's at
//! RequestResponse. It runs after authentication, so events name the authenticated user; a
//! request authentication refuses is recorded there (upstream's
//! `WithFailedAuthenticationAudit`) through [`FailedAuthentication`]. With a blocking audit
//! webhook the request waits for its RequestReceived event to be sent before its handler runs,
//! and a long-running one for its ResponseStarted event before its response goes out; a
//! `blocking-strict` webhook that cannot store the first fails the request, as upstream; and a
//! response of bounded size is held until its ResponseComplete event is sent (a streamed one's
//! is sent as it ends).

use super::{Mapped, request_info};
use crate::audit::{Annotations, Auditor, Decision, Delivery, Level, Stage};
use crate::auth::authorizer::Attributes;
use crate::auth::{ConnInfo, UserInfo};
use crate::endpoints::handlers::body::MAX_BODY_BYTES;
use crate::endpoints::observed_body::ObservedBody;
use crate::endpoints::request_info::{RequestInfo, Verb};
use crate::endpoints::{Request, Response};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Either};
use http::HeaderValue;
use serde_json::{Map as Object, Value, json};
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The response header naming a request's audit ID.
const AUDIT_ID: &str = "Audit-ID";

/// Adds [`Audit`].
#[derive(Clone)]
pub struct AuditLayer {
    auditor: Option<Arc<Auditor>>,
}

impl AuditLayer {
    /// Audits with `auditor`; with none, only gives each response its Audit-ID.
    pub fn new(auditor: Option<Arc<Auditor>>) -> Self {
        Self { auditor }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            auditor: self.auditor.clone(),
        }
    }
}

/// Gives responses their Audit-ID and records the requests the policy selects.
#[derive(Clone)]
pub struct Audit<S> {
    inner: S,
    auditor: Option<Arc<Auditor>>,
}

impl<S> Service<Request> for Audit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Mapped<S::Future>, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let id = audit_id(&req);
        let decided = self.auditor.as_ref().and_then(|auditor| {
            let decision = decide(auditor, &req);
            (decision.level != Level::None).then(|| (auditor.clone(), decision))
        });
        let Some((auditor, decision)) = decided else {
            return Either::Left(
                self.inner
                    .call(req)
                    .map(Box::new(move |resp| resp.map(|r| with_id(r, &id)))),
            );
        };
        let info = request_info(req.extensions()).clone();
        let annotations = Annotations::recorded();
        let mut req = req;
        req.extensions_mut().insert(annotations.clone());
        let record = Record {
            annotations,
            event: base_event(&req, &info, decision.level, &id),
            auditor,
            decision,
        };
        let received = record.emit(Stage::RequestReceived, |_| {});
        // The request's object, kept as the handler reads the body: recorded at level Request
        // and up, and naming what a create makes.
        let request_body: Arc<Mutex<Option<Bytes>>> = Arc::default();
        let wants_body = record.decision.level >= Level::Request || info.verb == Verb::Create;
        let req = if wants_body && has_body(&req) {
            let slot = request_body.clone();
            req.map(|body| {
                ObservedBody::wrap(
                    body,
                    MAX_BODY_BYTES,
                    Box::new(move |sent| {
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = sent.content;
                    }),
                )
            })
        } else {
            req
        };
        // The service that was made ready goes with this request; its clone takes the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            if !received.stored().await {
                crate::metrics::metrics().audit_requests_rejected.inc();
                return Ok(with_id(store_failed(&req), &id));
            }
            // The panic is caught so that the Panic stage is recorded before it goes on to the
            // panic-recovery filter.
            let handled: BoxFuture<'static, _> = Box::pin(inner.call(req));
            match AssertUnwindSafe(handled).catch_unwind().await {
                Ok(Ok(resp)) => {
                    let read = request_body
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    Ok(respond(record, &info, read, with_id(resp, &id)).await)
                }
                Ok(Err(never)) => match never {},
                Err(panic) => {
                    let _ = panicked(&record, panic.as_ref()).stored().await;
                    std::panic::resume_unwind(panic)
                }
            }
        }))
    }
}

/// Upstream's answer when a strict backend could not store a request's first event: its
/// `responsewriters.InternalError`, in plain text.
fn store_failed(req: &Request) -> Response {
    let uri = req.uri().path_and_query().map_or("", |p| p.as_str());
    let quoted = serde_json::to_string(uri).unwrap_or_default();
    crate::endpoints::text(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        format!("Internal Server Error: {quoted}: failed to store audit event\n"),
    )
}

/// Records the Panic stage of a request whose handler panicked with `payload`, as upstream's
/// `WithAudit` does.
fn panicked(record: &Record, payload: &(dyn std::any::Any + Send)) -> Delivery {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    record.emit(Stage::Panic, |event| {
        event.insert(
            "responseStatus".into(),
            json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": format!("APIServer panic'd: {message}"), "code": 500}),
        );
    })
}

/// The audit of a request authentication may refuse: its event, when the policy selects it.
pub struct FailedAuthentication {
    id: String,
    audited: Option<(Arc<Auditor>, Object<String, Value>, String)>,
}

impl FailedAuthentication {
    /// Prepares the audit of `req` by `auditor` before authentication decides.
    pub fn prepare(auditor: Option<&Arc<Auditor>>, req: &Request) -> Self {
        let id = audit_id(req);
        let audited = auditor.and_then(|auditor| {
            let decision = decide(auditor, req);
            if decision.level == Level::None
                || decision.omit_stages.contains(&Stage::ResponseStarted)
            {
                return None;
            }
            let info = request_info(req.extensions());
            let mut event = base_event(req, info, decision.level, &id);
            // No user was authenticated.
            event.insert("user".into(), json!({}));
            Some((auditor.clone(), event, auth_methods(req)))
        });
        Self { id, audited }
    }

    /// Records the refusal `resp` (ResponseStarted, with the credentials tried) and gives it
    /// its Audit-ID.
    pub fn refused(self, resp: Response) -> Response {
        if let Some((auditor, mut event, methods)) = self.audited {
            event.insert("stage".into(), json!(Stage::ResponseStarted.as_str()));
            event.insert(
                "stageTimestamp".into(),
                json!(crate::registry::store::now_micro()),
            );
            event.insert(
                "responseStatus".into(),
                json!({"metadata": {}, "message": methods, "code": resp.status().as_u16()}),
            );
            auditor.record(Value::Object(event)).detach();
        }
        with_id(resp, &self.id)
    }
}

/// Upstream's `getAuthMethods`: the credentials a refused request presented.
fn auth_methods(req: &Request) -> String {
    let mut methods = Vec::new();
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    let mut parts = authorization.split(' ');
    let scheme = parts.next().unwrap_or("");
    if scheme.eq_ignore_ascii_case("basic") {
        methods.push("basic");
    }
    if scheme.eq_ignore_ascii_case("bearer") && parts.next().is_some() {
        methods.push("bearer");
    }
    let query = req.uri().query().unwrap_or("");
    if form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "access_token" && !v.trim().is_empty())
    {
        methods.push("access_token");
    }
    if req
        .extensions()
        .get::<Arc<ConnInfo>>()
        .is_some_and(|c| !c.peer_certificates.is_empty())
    {
        methods.push("x509");
    }
    if methods.is_empty() {
        "Authentication failed, no credentials provided".into()
    } else {
        format!("Authentication failed, attempted: {}", methods.join(", "))
    }
}

/// The request's audit ID: the client's, or a new one.
fn audit_id(req: &Request) -> String {
    req.headers()
        .get(AUDIT_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(crate::registry::store::new_uid)
}

/// Records the response's stages: ResponseStarted at once for a long-running request, and
/// ResponseComplete once its body has been sent.
async fn respond(
    mut record: Record,
    info: &RequestInfo,
    request: Option<Bytes>,
    resp: Response,
) -> Response {
    if let Some(obj) = request.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
        record.name_object(&obj);
        if record.decision.level >= Level::Request {
            let obj = record.object(obj);
            record.event.insert("requestObject".into(), obj);
        }
    }
    let code = resp.status().as_u16();
    let long_running = info.is_long_running();
    if long_running {
        // Upstream goes on whether or not this one was stored.
        let _ = record
            .emit(Stage::ResponseStarted, |ev| {
                ev.insert(
                    "responseStatus".into(),
                    json!({"metadata": {}, "code": code}),
                );
            })
            .stored()
            .await;
    }
    // Failures are recorded with their Status at every level; objects at RequestResponse.
    let keep = if (record.decision.level == Level::RequestResponse && !long_running) || code >= 400
    {
        MAX_BODY_BYTES
    } else {
        0
    };
    // A blocking webhook holds the response until its ResponseComplete event is sent, as
    // upstream's handler holds its response until then. Only a body of known, bounded size can
    // be held; a streamed list goes out as it comes, its event sent as it ends.
    let bounded = hyper::body::Body::size_hint(resp.body())
        .upper()
        .is_some_and(|n| n <= MAX_BODY_BYTES as u64);
    if record.auditor.blocks() && !long_running && bounded {
        let (parts, body) = resp.into_parts();
        let bytes = http_body_util::BodyExt::collect(body)
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let content = (keep > 0).then(|| bytes.clone());
        let _ = complete(&record, code, long_running, content)
            .stored()
            .await;
        return Response::from_parts(parts, crate::endpoints::full(bytes));
    }
    resp.map(|body| {
        ObservedBody::wrap(
            body,
            keep,
            Box::new(move |sent| complete(&record, code, long_running, sent.content).detach()),
        )
    })
}

/// Records the ResponseComplete stage of a response of `code` whose body was `content` (when
/// kept): failures with their Status, objects at RequestResponse.
fn complete(record: &Record, code: u16, long_running: bool, content: Option<Bytes>) -> Delivery {
    let content = content.and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    record.emit(Stage::ResponseComplete, |ev| {
        let mut status = json!({"metadata": {}, "code": code});
        if let Some(obj) = &content
            && obj["kind"] == "Status"
            && obj["status"] == "Failure"
        {
            for field in ["status", "message", "reason", "details"] {
                if let Some(v) = obj.get(field) {
                    status[field] = v.clone();
                }
            }
        }
        ev.insert("responseStatus".into(), status);
        if record.decision.level == Level::RequestResponse
            && !long_running
            && let Some(obj) = content
        {
            ev.insert("responseObject".into(), record.object(obj));
        }
    })
}

/// What the policy says of `req`, judged by the attributes authorization decides on.
fn decide(auditor: &Auditor, req: &Request) -> Decision {
    let anonymous = UserInfo::default();
    let user = req.extensions().get::<UserInfo>().unwrap_or(&anonymous);
    auditor.decide(&Attributes::of_request(
        user,
        request_info(req.extensions()),
    ))
}

/// One audited request's event so far.
struct Record {
    /// What authorization and admission add.
    annotations: Annotations,
    auditor: Arc<Auditor>,
    decision: Decision,
    event: Object<String, Value>,
}

impl Record {
    /// Records the event at `stage` unless the policy leaves it out.
    fn emit(&self, stage: Stage, extra: impl FnOnce(&mut Object<String, Value>)) -> Delivery {
        if self.decision.omit_stages.contains(&stage) {
            return Delivery::Taken;
        }
        let mut event = self.event.clone();
        event.insert("stage".into(), json!(stage.as_str()));
        event.insert(
            "stageTimestamp".into(),
            json!(crate::registry::store::now_micro()),
        );
        let added = self.annotations.snapshot();
        if let Some(user) = &added.impersonated {
            event.insert("impersonatedUser".into(), user_json(user));
        }
        if !added.pairs.is_empty() {
            let map: Object<String, Value> = added
                .pairs
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            event.insert("annotations".into(), Value::Object(map));
        }
        extra(&mut event);
        self.auditor.record(Value::Object(event))
    }

    /// `obj` as recorded: without managedFields when the policy says so.
    fn object(&self, mut obj: Value) -> Value {
        if self.decision.omit_managed_fields
            && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("managedFields");
        }
        obj
    }

    /// Fills the objectRef's name (and namespace) from the request's object where the path
    /// gives none, as upstream's `LogRequestObject`.
    fn name_object(&mut self, obj: &Value) {
        let Some(reference) = self
            .event
            .get_mut("objectRef")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        for field in ["name", "namespace"] {
            let missing = reference.get(field).is_none_or(|v| v == "");
            if missing && let Some(v) = obj.pointer(&format!("/metadata/{field}")) {
                reference.insert(field.into(), v.clone());
            }
        }
    }
}

fn has_body(req: &Request) -> bool {
    matches!(
        *req.method(),
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    )
}

fn with_id(mut resp: Response, id: &str) -> Response {
    if let Ok(h) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(AUDIT_ID, h);
    }
    resp
}

/// The fields every stage's event shares.
fn base_event(req: &Request, info: &RequestInfo, level: Level, id: &str) -> Object<String, Value> {
    let anonymous = UserInfo::default();
    let user = req.extensions().get::<UserInfo>().unwrap_or(&anonymous);
    let u = user_json(user);
    let mut source_ips: Vec<String> = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|ip| ip.trim().to_string()).collect())
        .unwrap_or_default();
    if let Some(conn) = req.extensions().get::<Arc<ConnInfo>>() {
        let ip = conn.remote_addr.ip().to_string();
        if !source_ips.contains(&ip) {
            source_ips.push(ip);
        }
    }
    let level = match level {
        Level::None => "None",
        Level::Metadata => "Metadata",
        Level::Request => "Request",
        Level::RequestResponse => "RequestResponse",
    };
    let mut event = Object::new();
    event.insert("kind".into(), json!("Event"));
    event.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
    event.insert("level".into(), json!(level));
    event.insert("auditID".into(), json!(id));
    event.insert(
        "requestURI".into(),
        json!(req.uri().path_and_query().map_or("", |p| p.as_str())),
    );
    event.insert("verb".into(), json!(info.verb.as_str()));
    event.insert("user".into(), u);
    event.insert("sourceIPs".into(), json!(source_ips));
    if let Some(agent) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        event.insert("userAgent".into(), json!(agent));
    }
    if info.is_resource_request {
        let mut reference = Object::new();
        reference.insert("resource".into(), json!(info.resource));
        if !info.namespace.is_empty() {
            reference.insert("namespace".into(), json!(info.namespace));
        }
        if !info.name.is_empty() {
            reference.insert("name".into(), json!(info.name));
        }
        reference.insert("apiGroup".into(), json!(info.api_group));
        reference.insert("apiVersion".into(), json!(info.api_version));
        if !info.subresource.is_empty() {
            reference.insert("subresource".into(), json!(info.subresource));
        }
        event.insert("objectRef".into(), Value::Object(reference));
    }
    event.insert(
        "requestReceivedTimestamp".into(),
        json!(crate::registry::store::now_micro()),
    );
    event
}

/// A user as audit events give one (authentication.k8s.io/v1 UserInfo).
fn user_json(user: &UserInfo) -> Value {
    let mut u = json!({"username": user.name});
    if !user.uid.is_empty() {
        u["uid"] = json!(user.uid);
    }
    if !user.groups.is_empty() {
        u["groups"] = json!(user.groups);
    }
    if !user.extra.is_empty() {
        u["extra"] = json!(user.extra);
    }
    u
}
