//! API Priority and Fairness in the kube API server: upstream's three post-start hooks (the
//! configuration producer and consumer, and the filter waiting for the first digest) and the
//! `/debug/api_priority_and_fairness/dump_*` tables.

use crate::endpoints::{full, handler_fn};
use crate::flowcontrol::{FlowControl, controller, dump, ensurer};
use crate::registry::StoreFactory;
use crate::server::{GenericApiServer, spawn_once, wait_until};
use std::sync::Arc;

/// The API group of the flow-control objects.
pub const GROUP: &str = "flowcontrol.apiserver.k8s.io";

/// Adds the producer of the bootstrap objects to `server`: as upstream's flowcontrol storage,
/// whenever the group is served, whether or not requests are flow-controlled.
pub fn install_producer(server: &mut GenericApiServer, storage: &dyn StoreFactory) {
    let producer_schemas = storage.builtin_store(GROUP, "flowschemas");
    let producer_levels = storage.builtin_store(GROUP, "prioritylevelconfigurations");
    server.add_post_start_hook(
        "priority-and-fairness-config-producer",
        Arc::new(move |_ctx| {
            let (schemas, levels) = (producer_schemas.clone(), producer_levels.clone());
            Box::pin(async move {
                ensurer::ensure(&schemas, &levels)
                    .await
                    .map_err(|e| format!("ensuring the bootstrap flow-control objects: {e}"))?;
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(ensurer::INTERVAL).await;
                        if let Err(e) = ensurer::ensure(&schemas, &levels).await {
                            tracing::warn!(error = %e, "ensuring the bootstrap flow-control objects failed");
                        }
                    }
                });
                Ok(())
            })
        }),
    );
}

/// Adds flow control's consumer, its filter's readiness and its debug paths to `server`.
pub fn install(server: &mut GenericApiServer, fc: Arc<FlowControl>, storage: &dyn StoreFactory) {
    let schemas = storage.builtin_store(GROUP, "flowschemas");
    let levels = storage.builtin_store(GROUP, "prioritylevelconfigurations");
    let (digested, first_digest) = tokio::sync::watch::channel(false);
    let consumer = fc.clone();
    server.add_post_start_hook(
        "priority-and-fairness-config-consumer",
        spawn_once(move |_ctx| Box::pin(controller::run(consumer, schemas, levels, digested))),
    );
    server.add_post_start_hook("priority-and-fairness-filter", wait_until(first_digest));
    for table in ["dump_priority_levels", "dump_queues", "dump_requests"] {
        let fc = fc.clone();
        server.handle(
            &format!("{}{table}", dump::PREFIX),
            handler_fn(move |req| {
                let fc = fc.clone();
                async move {
                    let text = dump::dump(
                        &fc.current(),
                        req.uri().path(),
                        req.uri().query().unwrap_or(""),
                    )
                    .unwrap_or_default();
                    http::Response::builder()
                        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                        .body(full(text))
                        .expect("static headers are valid")
                }
            }),
        );
    }
}
