//! The kube API server link of the chain: the built-in API groups and /version.

use crate::endpoints::{handler_fn, json};
use crate::server::{DelegationTarget, GenericApiServer};
use std::sync::Arc;

/// Builds the kube API server link in front of `delegate` (the apiextensions server).
pub fn new_kube_api_server(delegate: Arc<dyn DelegationTarget>) -> GenericApiServer {
    let mut server = GenericApiServer::new("kube-apiserver", delegate);
    let version = handler_fn(|_req| async { json(http::StatusCode::OK, &crate::version::info()) });
    server.handle("/version", version.clone());
    server.handle("/version/", version);
    server
}
