//! The aggregator link of the chain, in front of everything: it serves APIServices, keeps a
//! local APIService for every group/version the server serves, watches APIServices through an
//! informer on the in-process loopback client, and proxies the group/versions of remote ones to
//! their extension API servers.

pub mod apiservice;
pub mod autoregister;
mod availability;
pub mod loopback;
pub mod proxy;
pub mod routes;

use crate::admission::Chain;
use crate::endpoints::discovery::Discovery;
use crate::endpoints::handler_fn;
use crate::endpoints::handlers::ResourceHandler;
use crate::proxy::ClientIdentity;
use crate::registry::{StoreFactory, StoreSet};
use crate::server::healthz::FlagCheck;
use crate::server::{DelegationTarget, GenericApiServer, spawn_once, wait_until};
use futures::StreamExt;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use routes::Routes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Settings of the aggregator link.
pub struct Config {
    /// Storage, shared with the other links.
    pub storage: Arc<dyn StoreFactory>,
    /// Discovery, shared with the other links; remote group/versions are added to it.
    pub discovery: Arc<Discovery>,
    /// The admission chain.
    pub admission: Chain,
    /// The front-proxy client certificate presented to extension servers.
    pub proxy_identity: ClientIdentity,
    /// --min-request-timeout.
    pub min_request_timeout: Duration,
}

/// Builds the aggregator in front of `delegate` (the kube API server).
pub fn new_aggregator(config: Config, delegate: Arc<dyn DelegationTarget>) -> GenericApiServer {
    let strategy = apiservice::strategy();
    let info = strategy.info().clone();
    let apiservices = Arc::new(config.storage.store(strategy));
    config.discovery.add([info]);
    let resources = Arc::new(ResourceHandler::new(
        StoreSet::new([apiservices.clone()]),
        config.admission,
        config.min_request_timeout,
    ));
    let routes = Routes::default();
    let (reader, writer) = reflector::store::<APIService>();
    let changed = Arc::new(Notify::new());

    let mut server = GenericApiServer::new("kube-aggregator", delegate);

    // The informer: a reflector over the loopback client; every change rebuilds the proxy table.
    let (informer_routes, informer_reader, informer_changed, informer_discovery) = (
        routes.clone(),
        reader.clone(),
        changed.clone(),
        config.discovery.clone(),
    );
    let (synced_tx, synced_rx) = watch::channel(false);
    server.add_post_start_hook(
        "start-kube-aggregator-informers",
        spawn_once(move |ctx| {
            Box::pin(async move {
                let client = loopback::client(ctx.loopback);
                let api = kube::Api::<APIService>::all(client);
                let mut events = reflector(writer, watcher(api, watcher::Config::default()))
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "APIService informer");
                            continue;
                        }
                    }
                    for (group, version) in informer_routes.sync(&informer_reader.state()) {
                        informer_discovery.remove_remote(&group, &version);
                    }
                    synced_tx.send_replace(true);
                    informer_changed.notify_one();
                }
            })
        }),
    );
    server.add_post_start_hook("apiservice-registration-controller", wait_until(synced_rx));

    let (availability_routes, availability_discovery, identity) = (
        routes.clone(),
        config.discovery.clone(),
        config.proxy_identity.clone(),
    );
    server.add_post_start_hook(
        "apiservice-status-available-controller",
        spawn_once(move |ctx| {
            Box::pin(async move {
                let client = loopback::client(ctx.loopback);
                tokio::spawn(availability::watch_services(
                    client.clone(),
                    availability_routes.clone(),
                    changed.clone(),
                ));
                availability::run(
                    client,
                    reader,
                    availability_routes,
                    availability_discovery,
                    identity,
                    changed,
                )
                .await
            })
        }),
    );

    let (done_tx, done_rx) = watch::channel(false);
    let (auto_store, auto_discovery) = (apiservices.clone(), config.discovery.clone());
    server.add_post_start_hook(
        "kube-apiserver-autoregistration",
        spawn_once(move |_ctx| Box::pin(autoregister::run(auto_store, auto_discovery, done_tx))),
    );
    // Healthy only once every local group/version has its APIService: upstream's boot-sequence
    // check, a check of its own rather than a post-start hook.
    server.add_health_check(Arc::new(FlagCheck {
        name: "autoregister-completion",
        done: done_rx,
        reason: "missing APIService registrations",
    }));

    let next = server.delegate_handler();
    let identity = config.proxy_identity;
    let api = handler_fn(move |req| {
        let (resources, next, routes, identity) = (
            resources.clone(),
            next.clone(),
            routes.clone(),
            identity.clone(),
        );
        async move {
            let segments: Vec<&str> = req.uri().path().split('/').skip(2).take(2).collect();
            if let [group, version] = segments.as_slice()
                && let Some(target) = routes.get(group, version)
            {
                return proxy::proxy(&target, &identity, req).await;
            }
            resources.serve_or(req, &next).await
        }
    });
    server.handle_prefix("/apis", api);
    server
}
