//! The apiextensions link of the chain: CustomResourceDefinitions and the resources they
//! define, served by the same generic store and REST handlers as the built-in kinds.

pub mod cel;
mod controller;
pub mod crd;
mod custom_resource;
mod field_types;
pub mod jsonpath;
pub mod schema;

use crate::controlplane::storage_factory::StorageFactory;
use crate::endpoints::discovery::Discovery;
use crate::endpoints::openapi::OpenApi;
use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::rest::{Admission, ResourceHandler};
use crate::endpoints::{call, handler_fn};
use crate::registry::{Store, StoreSet};
use crate::server::{DelegationTarget, GenericApiServer};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the apiextensions link.
pub struct Config {
    /// Storage, shared with the other links.
    pub storage: Arc<StorageFactory>,
    /// Discovery, shared with the other links.
    pub discovery: Arc<Discovery>,
    /// OpenAPI documents, shared with the kube API server link (which serves them).
    pub openapi: Arc<OpenApi>,
    /// Admission plugins.
    pub admission: Vec<Arc<dyn Admission>>,
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
    let crds = Arc::new(Store::new(
        strategy,
        config.storage.for_resource(&info.group, &info.resource),
        config.storage.keys().clone(),
    ));
    config.stores.insert(crds.clone());
    config.discovery.add([info]);
    let serving = Arc::new(controller::Serving::new(
        config.storage,
        config.stores.clone(),
        config.discovery,
        config.openapi,
    ));
    let mut admission = config.admission;
    admission.push(Arc::new(serving.admission()));
    let resources = Arc::new(ResourceHandler::new(
        config.stores,
        admission,
        config.min_request_timeout,
    ));

    let mut server = GenericApiServer::new("apiextensions-apiserver", delegate);
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let synced_tx = std::sync::Mutex::new(Some(synced_tx));
    server.add_post_start_hook(
        "start-apiextensions-controllers",
        Arc::new(move |_ctx| {
            if let Some(tx) = synced_tx.lock().expect("poisoned").take() {
                tokio::spawn(controller::run(crds.clone(), serving.clone(), tx));
            }
            Box::pin(async { Ok(()) })
        }),
    );
    // Ready only once every CRD that existed at start is served, as upstream's hook.
    server.add_post_start_hook(
        "crd-informer-synced",
        Arc::new(move |_ctx| {
            let mut rx = synced_rx.clone();
            Box::pin(async move {
                rx.wait_for(|synced| *synced)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }),
    );

    let next = server.delegate_handler();
    let api = handler_fn(move |req| {
        let (resources, next) = (resources.clone(), next.clone());
        async move {
            let info = req
                .extensions()
                .get::<RequestInfo>()
                .cloned()
                .unwrap_or_default();
            if info.is_resource_request {
                return resources.serve_or(req, info, &next).await;
            }
            call(&next, req).await
        }
    });
    server.handle_prefix("/apis", api);
    server
}
