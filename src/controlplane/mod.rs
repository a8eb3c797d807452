//! The kube API server link of the chain: the built-in API groups and /version.

pub mod storage_factory;

use crate::endpoints::{handler_fn, json};
use crate::server::{DelegationTarget, GenericApiServer};
use std::sync::Arc;
use storage_factory::{COMPACTION_INTERVAL, COMPACTION_KEEP, StorageFactory};

/// Builds the kube API server link in front of `delegate` (the apiextensions server).
pub fn new_kube_api_server(
    storage: Arc<StorageFactory>,
    delegate: Arc<dyn DelegationTarget>,
) -> GenericApiServer {
    let mut server = GenericApiServer::new("kube-apiserver", delegate);
    server.add_health_check(storage.health_check());
    let backend = storage.backend();
    server.add_post_start_hook(
        "start-storage-compactor",
        Arc::new(move |_ctx| {
            tokio::spawn(crate::storage::run_compactor(
                backend.clone(),
                COMPACTION_INTERVAL,
                COMPACTION_KEEP,
            ));
            Box::pin(async { Ok(()) })
        }),
    );
    let version = handler_fn(|_req| async { json(http::StatusCode::OK, &crate::version::info()) });
    server.handle("/version", version.clone());
    server.handle("/version/", version);
    server
}
