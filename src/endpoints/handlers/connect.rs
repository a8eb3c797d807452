//! Connect subresources (upstream's `rest.Connecter`): pods/log, exec, attach, portforward and
//! proxy, nodes/proxy and services/proxy are not stored but connected to a backend — a kubelet,
//! a pod, a service endpoint. The handler finds the connecter of the subresource, refuses the
//! methods it does not answer, and hands it the whole request, upgrades included. Before it
//! connects, admission sees a CONNECT with the subresource's options (PodExecOptions, …) as
//! the object, as upstream's `ConnectResource` does; pods/log is a read and is not admitted.

use super::super::status::ApiError;
use super::super::{Request, Response};
use crate::admission::{Attributes, Chain, Operation, Options, Warnings};
use crate::auth::UserInfo;
use crate::registry::Store;
use http::Method;
use serde_json::{Map, Value, json};

/// What a connect subresource is asked.
pub struct ConnectRequest<'a> {
    /// The store of the parent resource (pods, nodes, services).
    pub store: &'a Store,
    /// The parent's namespace, `None` at the cluster scope.
    pub namespace: Option<&'a str>,
    /// The parent's name as the path gives it (for proxies possibly `scheme:name:port`).
    pub name: &'a str,
    /// For proxies, the path after the subresource (`/stats/summary`), empty if none.
    pub path: &'a str,
    /// The request itself.
    pub request: Request,
}

/// A connect subresource.
#[async_trait::async_trait]
pub trait Connecter: Send + Sync {
    /// The methods it answers; any other is a 405.
    fn methods(&self) -> &'static [Method];
    /// Connects `req` to the backend and returns its (possibly streaming or switching) answer.
    async fn connect(&self, req: ConnectRequest<'_>) -> Result<Response, ApiError>;
}

/// The methods of exec, attach and portforward: GET for WebSocket clients, POST for SPDY.
pub const STREAM_METHODS: &[Method] = &[Method::GET, Method::POST];

/// The methods a proxy forwards.
pub const PROXY_METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// The path of `full` after `/<name>/<subresource>`, as a proxy passes it on.
pub fn path_after(full: &str, name: &str, subresource: &str) -> String {
    let marker = format!("/{name}/{subresource}");
    full.find(&marker)
        .map(|i| full[i + marker.len()..].to_string())
        .unwrap_or_default()
}

/// The options object of a connect to `subresource` (of kind `kind`), from its query, as
/// upstream decodes PodExecOptions, PodAttachOptions, PodPortForwardOptions and the proxy
/// options.
fn options(kind: &str, query: Option<&str>, path: &str) -> Value {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let all = |k: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let first = |k: &str| all(k).first().copied();
    let flag = |k: &str| matches!(first(k), Some("true" | "1"));
    let mut o = Map::new();
    o.insert("kind".into(), json!(kind));
    o.insert("apiVersion".into(), json!("v1"));
    match kind {
        "PodExecOptions" | "PodAttachOptions" => {
            for k in ["stdin", "stdout", "stderr", "tty"] {
                if flag(k) {
                    o.insert(k.into(), json!(true));
                }
            }
            if let Some(c) = first("container").filter(|c| !c.is_empty()) {
                o.insert("container".into(), json!(c));
            }
            if kind == "PodExecOptions" {
                o.insert("command".into(), json!(all("command")));
            }
        }
        "PodPortForwardOptions" => {
            let ports: Vec<i64> = all("ports")
                .into_iter()
                .flat_map(|p| p.split(','))
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            if !ports.is_empty() {
                o.insert("ports".into(), json!(ports));
            }
        }
        _ if !path.is_empty() => {
            o.insert("path".into(), json!(path));
        }
        _ => {}
    }
    Value::Object(o)
}

/// A connect as admission sees it: the subresource of which object, asked with which query (the
/// options), by whom; the proxy's path for the proxy options.
pub struct Connect<'a> {
    /// The parent resource's store.
    pub store: &'a Store,
    /// The subresource: exec, attach, portforward, proxy.
    pub subresource: &'a str,
    /// The parent's namespace.
    pub namespace: Option<&'a str>,
    /// The parent's name.
    pub name: &'a str,
    /// The proxied path.
    pub path: &'a str,
    /// The request's query string.
    pub query: Option<&'a str>,
    /// Who asks.
    pub user: &'a UserInfo,
    /// The request's audit annotations.
    pub annotations: &'a crate::audit::Annotations,
}

/// Admits connect `c`: mutating, then validating admission, with the connect's options as the
/// object. Warnings go to `warnings`.
pub async fn admit(chain: &Chain, c: Connect<'_>, warnings: &Warnings) -> Result<(), ApiError> {
    let Connect {
        store,
        subresource,
        namespace,
        name,
        path,
        query,
        user,
        annotations,
    } = c;
    let info = store.info();
    let Some(kind) = info
        .subresources
        .iter()
        .find(|s| s.name == subresource)
        .map(|s| s.kind.to_string())
        .filter(|k| k != &*info.kind)
    else {
        // pods/log answers with the Pod's own kind: a read, which admission never sees.
        return Ok(());
    };
    let mut object = options(&kind, query, path);
    let attributes = Attributes {
        operation: Operation::Connect,
        resource: info,
        subresource,
        namespace,
        name,
        old_object: None,
        user,
        dry_run: false,
        options: Options::Connect,
        warnings,
        annotations,
    };
    chain.admit(&attributes, Some(&mut object)).await?;
    chain.validate(&attributes, Some(&object)).await?;
    Ok(())
}
