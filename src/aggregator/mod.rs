//! The aggregator link of the chain: fronts everything, proxies APIServices to extension servers.
//!
//! It owns no path yet; every request is delegated to the kube API server.

use crate::server::{DelegationTarget, GenericApiServer};
use std::sync::Arc;

/// Builds the aggregator in front of `delegate` (the kube API server).
pub fn new_aggregator(delegate: Arc<dyn DelegationTarget>) -> GenericApiServer {
    GenericApiServer::new("kube-aggregator", delegate)
}
