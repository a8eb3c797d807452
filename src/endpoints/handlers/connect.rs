//! Connect subresources (upstream's `rest.Connecter`): pods/log, exec, attach, portforward and
//! proxy, nodes/proxy and services/proxy are not stored but connected to a backend — a kubelet,
//! a pod, a service endpoint. The handler finds the connecter of the subresource, refuses the
//! methods it does not answer, and hands it the whole request, upgrades included.

use super::super::status::ApiError;
use super::super::{Request, Response};
use crate::registry::Store;
use http::Method;

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
