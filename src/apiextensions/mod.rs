//! The apiextensions link of the chain: CustomResourceDefinitions and their resources.
//!
//! It owns no path yet; requests fall through to the end of the chain (404).

use crate::server::{DelegationTarget, GenericApiServer};
use std::sync::Arc;

pub mod schema;

/// Builds the apiextensions link in front of `delegate` (the end of the chain).
pub fn new_apiextensions_server(delegate: Arc<dyn DelegationTarget>) -> GenericApiServer {
    GenericApiServer::new("apiextensions-apiserver", delegate)
}
