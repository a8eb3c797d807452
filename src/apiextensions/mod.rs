//! The apiextensions link of the chain: CustomResourceDefinitions and the resources they
//! define, served by the same generic store and REST handlers as the built-in kinds.

pub mod cel;
mod controller;
mod conversion;
pub mod crd;
mod custom_resource;
mod field_types;
pub mod jsonpath;
pub mod schema;

use crate::admission::Chain;
use crate::endpoints::discovery::Discovery;
use crate::endpoints::handler_fn;
use crate::endpoints::handlers::ResourceHandler;
use crate::endpoints::openapi::OpenApi;
use crate::registry::{StoreFactory, StoreSet};
use crate::server::{DelegationTarget, GenericApiServer, spawn_once, wait_until};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the apiextensions link.
pub struct Config {
    /// Storage, shared with the other links.
    pub storage: Arc<dyn StoreFactory>,
    /// Discovery, shared with the other links.
    pub discovery: Arc<Discovery>,
    /// OpenAPI documents, shared with the kube API server link (which serves them).
    pub openapi: Arc<OpenApi>,
    /// The admission chain.
    pub admission: Chain,
    /// Where the CRD store and the custom resources' stores go (the namespace controller
    /// reads it too).
    pub stores: StoreSet,
    /// --min-request-timeout.
    pub min_request_timeout: Duration,
}

/// Builds the apiextensions link in front of `delegate` (the end of the chain).
pub fn new_apiextensions_server(
    config: Config,
    delegate: Arc<dyn DelegationTarget>,
) -> GenericApiServer {
    let strategy = crd::strategy();
    let info = strategy.info().clone();
    let crds = Arc::new(config.storage.store(strategy));
    config.stores.insert(crds.clone());
    config.discovery.add([info]);
    let serving = Arc::new(controller::Serving::new(
        config.storage,
        config.stores.clone(),
        config.discovery,
        config.openapi,
    ));
    let admission = config
        .admission
        .with_mutating(Arc::new(serving.admission()))
        .named("TerminatingCustomResourceDefinitions");
    let resources = Arc::new(ResourceHandler::new(
        config.stores,
        admission,
        config.min_request_timeout,
    ));

    let mut server = GenericApiServer::new("apiextensions-apiserver", delegate);
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    server.add_post_start_hook(
        "start-apiextensions-controllers",
        spawn_once(move |_ctx| Box::pin(controller::run(crds, serving, synced_tx))),
    );
    // Ready only once every CRD that existed at start is served, as upstream's hook.
    server.add_post_start_hook("crd-informer-synced", wait_until(synced_rx));

    let next = server.delegate_handler();
    let api = handler_fn(move |req| {
        let (resources, next) = (resources.clone(), next.clone());
        async move { resources.serve_or(req, &next).await }
    });
    server.handle_prefix("/apis", api);
    server
}
