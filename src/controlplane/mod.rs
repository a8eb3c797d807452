//! The kube API server link of the chain: the built-in API groups, discovery, /version and
//! the bootstrap data (system namespaces).

pub mod authentication_info;
pub mod bootstrap;
pub mod connect;
pub mod endpoint_leases;
pub mod event_ttl;
pub mod garbage_collector;
pub mod identity_lease;
pub mod kubelet;
pub mod legacy_token_tracking;
pub mod namespace_controller;
pub mod namespace_defaults;
pub mod policy_status;
mod priority_and_fairness;
pub mod resource_quota;

use crate::admission::{AdmissionConfig, Chain};
use crate::auth::Authorizer;
use crate::auth::authorizer::rbac::escalation::Escalation;
use crate::auth::authorizer::rbac::{Rbac, RbacStores, bootstrap as rbac_bootstrap};
use crate::auth::serviceaccount::{ServiceAccounts, discovery, token_request::TokenRequests};
use crate::endpoints::discovery::Discovery;
use crate::endpoints::handlers::ResourceHandler;
use crate::endpoints::openapi::OpenApi;
use crate::endpoints::{Verbatim, full, handler_fn};
use crate::registry::informer::{Informer, InformerSync};
use crate::registry::rest::Creater;
use crate::registry::service_alloc::ServiceAllocator;
use crate::registry::store::{FieldValidation, WriteOptions};
use crate::registry::{RegistryError, Store, StoreFactory, StoreSet};
use crate::server::healthz::HealthCheck;
use crate::server::resource_config::ResourceConfig;
use crate::server::{DelegationTarget, GenericApiServer, spawn_once};
use namespace_defaults::NamespaceDefault;
use std::sync::Arc;
use std::time::Duration;

/// Namespaces that exist from the start, as upstream's system namespaces controller makes them.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Settings of the kube API server link.
pub struct Config {
    /// API Priority and Fairness, whose configuration this server's objects hold.
    pub flow_control: Option<Arc<crate::flowcontrol::FlowControl>>,
    /// --min-request-timeout.
    pub min_request_timeout: Duration,
    /// --profiling: serve the CPU profile.
    pub profiling: bool,
    /// --event-ttl.
    pub event_ttl: Duration,
    /// Whether to run the built-in controllers (namespace deletion, each namespace's default
    /// ServiceAccount and CA bundle, ClusterRole aggregation).
    pub builtin_controllers: bool,
    /// The cluster CA bundle the root-CA publisher puts in every namespace.
    pub root_ca: Arc<str>,
    /// Service cluster IP ranges, primary first.
    pub service_ranges: Vec<ipnet::IpNet>,
    /// First node port and number of node ports.
    pub node_ports: (u16, u32),
    /// The `kubernetes` Service and where it points.
    pub kubernetes_service: bootstrap::KubernetesService,
    /// How often to compact storage (zero: never) and how many revisions to keep.
    pub compaction: (Duration, i64),
    /// Discovery, shared with the other links of the chain.
    pub discovery: Arc<Discovery>,
    /// The OpenAPI documents, shared with the apiextensions link which adds CRDs to them.
    pub openapi: Arc<OpenApi>,
    /// The admission chain, shared with the other links of the chain.
    pub admission: Chain,
    /// The custom resources' stores, which the namespace controller empties too.
    pub custom_stores: StoreSet,
    /// Which built-in resources are served (`--runtime-config`); the others are still stored.
    pub resource_config: ResourceConfig,
    /// Create-only resources served beside the stored ones (the review APIs).
    pub creaters: Vec<Arc<dyn Creater>>,
    /// The storage backend's health check (`etcd`).
    pub storage_health: Arc<dyn HealthCheck>,
    /// The same probe, for /readyz only (`etcd-readiness`).
    pub storage_readiness: Arc<dyn HealthCheck>,
    /// What kube-system/extension-apiserver-authentication publishes.
    pub authentication_info: authentication_info::AuthenticationInfo,
    /// Service-account tokens: the token subresource issues them, discovery publishes their keys.
    pub service_accounts: Option<Arc<ServiceAccounts>>,
    /// The RBAC authorizer, when RBAC is a mode: readiness waits for its index.
    pub rbac: Option<Arc<Rbac>>,
    /// How the connect subresources reach kubelets.
    pub kubelet: Arc<kubelet::KubeletClient>,
    /// Whether the `kubernetes` Service's endpoints are kept by the lease reconciler
    /// (`--endpoint-reconciler-type=lease`) rather than not at all (`none`).
    pub endpoint_leases: bool,
}

/// The admission chain every link runs: the `enabled` plugins in upstream's order (each
/// reading what it needs from `storage`), then RBAC's escalation checks when `authorizer` runs
/// RBAC (upstream's RBAC storage makes them, whatever the plugins).
pub fn admission_plugins(
    storage: &Arc<dyn StoreFactory>,
    authorizer: &Arc<Authorizer>,
    enabled: &[String],
    config: &AdmissionConfig,
) -> Chain {
    let chain = crate::admission::plugins::chain(enabled, storage, authorizer, config);
    match authorizer.rbac() {
        Some(rbac) => chain
            .with_validating(Arc::new(Escalation::new(rbac.clone(), authorizer.clone())))
            .named("RBACEscalation"),
        None => chain,
    }
}

/// Builds the kube API server link in front of `delegate` (the apiextensions server).
pub fn new_kube_api_server(
    config: Config,
    storage: Arc<dyn StoreFactory>,
    delegate: Arc<dyn DelegationTarget>,
) -> GenericApiServer {
    let mut stores: Vec<Arc<Store>> = crate::registry::kinds::builtin()
        .into_iter()
        .map(|strategy| Arc::new(storage.store(strategy)))
        .collect();
    let find = |stores: &[Arc<Store>], group: &str, resource: &str| {
        stores
            .iter()
            .position(|s| s.info().group == group && s.info().resource == resource)
            .expect("built-in resource")
    };
    // Services allocate cluster IPs (IPAddress objects) and node ports beside each write.
    let services_at = find(&stores, "", "services");
    let allocator = Arc::new(ServiceAllocator::new(
        config.service_ranges.clone(),
        config.node_ports.0,
        config.node_ports.1,
        stores[find(&stores, "networking.k8s.io", "ipaddresses")].clone(),
        storage.backend(),
        storage.keys().key("", "ranges", None, "servicenodeports/"),
    ));
    let services_strategy = stores[services_at].strategy().clone();
    stores[services_at] = Arc::new(
        storage
            .store(services_strategy)
            .with_hooks(allocator.clone()),
    );
    let namespaces = stores[find(&stores, "", "namespaces")].clone();
    let services = stores[services_at].clone();
    let endpoints = stores[find(&stores, "", "endpoints")].clone();
    let nodes = stores[find(&stores, "", "nodes")].clone();
    let slices = stores[find(&stores, "discovery.k8s.io", "endpointslices")].clone();
    let configmaps = stores[find(&stores, "", "configmaps")].clone();
    let serviceaccounts = stores[find(&stores, "", "serviceaccounts")].clone();
    let pdbs = stores[find(&stores, "policy", "poddisruptionbudgets")].clone();
    let discovery = config.discovery.clone();
    // Unserved resources keep their stores, so the server's own writes and the namespace
    // controller still reach them, as upstream's controllers reach unserved data through etcd.
    let served: Vec<Arc<Store>> = stores
        .iter()
        .filter(|s| {
            let i = s.info();
            config
                .resource_config
                .resource_enabled(&i.group, &i.version, &i.resource)
        })
        .cloned()
        .collect();
    discovery.add(served.iter().map(|s| s.info().clone()));
    discovery.add(config.creaters.iter().map(|c| c.info().clone()));
    let served_stores = StoreSet::new(served);
    let priority_classes = stores[find(&stores, "scheduling.k8s.io", "priorityclasses")].clone();
    let controller_stores = vec![StoreSet::new(stores), config.custom_stores.clone()];
    let resources = config
        .creaters
        .iter()
        .fold(
            ResourceHandler::new(
                served_stores,
                config.admission.clone(),
                config.min_request_timeout,
            ),
            |handler, creater| handler.with_creater(creater.clone()),
        )
        .with_subresource(
            "",
            "pods",
            "binding",
            Arc::new(crate::registry::kinds::corev1::PodBinding),
        )
        .with_subresource(
            "",
            "pods",
            "eviction",
            Arc::new(crate::registry::kinds::corev1::PodEviction::new(pdbs)),
        );
    let resources = ["log", "exec", "attach", "portforward"]
        .into_iter()
        .fold(resources, |handler, sub| {
            handler.with_connecter(
                "",
                "pods",
                sub,
                Arc::new(connect::PodKubelet::new(
                    config.kubelet.clone(),
                    nodes.clone(),
                    sub,
                )),
            )
        })
        .with_connecter("", "pods", "proxy", Arc::new(connect::PodProxy))
        .with_connecter(
            "",
            "nodes",
            "proxy",
            Arc::new(connect::NodeProxy::new(config.kubelet.clone())),
        )
        .with_connecter(
            "",
            "services",
            "proxy",
            Arc::new(connect::ServiceProxy::new(endpoints.clone())),
        );
    let resources = match &config.service_accounts {
        Some(tokens) => resources.with_subresource(
            "",
            "serviceaccounts",
            "token",
            Arc::new(TokenRequests::new(tokens.clone())),
        ),
        None => resources,
    };
    let resources = Arc::new(resources);

    let namespaces_for_controller = namespaces.clone();
    let bootstrap_namespaces = namespaces.clone();
    let auth_namespaces = namespaces.clone();
    let mut server = GenericApiServer::new("kube-apiserver", delegate);
    server.add_health_check(config.storage_health.clone());
    server.add_readyz_check(config.storage_readiness.clone());
    server.add_readyz_check(Arc::new(InformerSync::new(config.admission.informers())));
    let backend = storage.backend();
    let (interval, keep) = config.compaction;
    server.add_post_start_hook(
        "start-storage-compactor",
        Arc::new(move |_ctx| {
            if !interval.is_zero() {
                tokio::spawn(crate::storage::run_compactor(
                    backend.clone(),
                    interval,
                    keep,
                ));
            }
            Box::pin(async { Ok(()) })
        }),
    );
    server.add_post_start_hook(
        "scheduling/bootstrap-system-priority-classes",
        Arc::new(move |_ctx| {
            let classes = priority_classes.clone();
            Box::pin(async move {
                ensure_exist(
                    &classes,
                    crate::admission::system_priority_classes().to_vec(),
                )
                .await
            })
        }),
    );
    let repaired_services = services.clone();
    server.add_post_start_hook(
        "start-service-ip-repair-controllers",
        Arc::new(move |_ctx| {
            let (allocator, services) = (allocator.clone(), repaired_services.clone());
            Box::pin(async move {
                let repaired = allocator.repair(&services).await.map_err(|e| {
                    format!("holding the addresses and ports of stored Services: {e}")
                })?;
                if repaired > 0 {
                    tracing::info!(
                        repaired,
                        "held cluster IPs and node ports of Services written elsewhere"
                    );
                }
                Ok(())
            })
        }),
    );
    server.add_post_start_hook(
        "start-system-namespaces-controller",
        Arc::new(move |_ctx| {
            let namespaces = namespaces.clone();
            Box::pin(async move { ensure_system_namespaces(&namespaces).await })
        }),
    );

    if config.builtin_controllers {
        let namespaces = namespaces_for_controller;
        let defaults = [
            (
                "start-kubeboot-serviceaccounts-controller",
                NamespaceDefault::ServiceAccount,
                serviceaccounts,
            ),
            (
                "start-kubeboot-root-ca-cert-publisher",
                NamespaceDefault::RootCa(config.root_ca.clone()),
                configmaps.clone(),
            ),
        ];
        for (hook, default, objects) in defaults {
            let namespaces = namespaces.clone();
            server.add_post_start_hook(
                hook,
                spawn_once(move |_ctx| {
                    Box::pin(namespace_defaults::run(default, namespaces, objects))
                }),
            );
        }
        let gc_stores = controller_stores.clone();
        server.add_post_start_hook(
            "start-kubeboot-namespace-controller",
            spawn_once(move |_ctx| {
                Box::pin(namespace_controller::run(namespaces, controller_stores))
            }),
        );
        let quota_stores = gc_stores.clone();
        server.add_post_start_hook(
            "start-kubeboot-garbage-collector",
            spawn_once(move |_ctx| Box::pin(garbage_collector::run(gc_stores))),
        );
        let policies = storage.builtin_store(
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
        );
        let (openapi, equivalents) = (config.openapi.clone(), storage.equivalents());
        server.add_post_start_hook(
            "start-kubeboot-validatingadmissionpolicy-status-controller",
            spawn_once(move |_ctx| Box::pin(policy_status::run(policies, openapi, equivalents))),
        );
        let quotas = storage.builtin_store("", "resourcequotas");
        server.add_post_start_hook(
            "start-kubeboot-resource-quota-controller",
            spawn_once(move |_ctx| {
                let informer = Informer::start(quotas.clone());
                Box::pin(resource_quota::run(quotas, informer, quota_stores))
            }),
        );
    }

    if config
        .resource_config
        .resource_enabled(priority_and_fairness::GROUP, "v1", "flowschemas")
    {
        priority_and_fairness::install_producer(&mut server, &*storage);
    }
    if let Some(fc) = config.flow_control.clone() {
        priority_and_fairness::install(&mut server, fc, &*storage);
    }

    // Events expire whether or not the built-in controllers run: upstream's storage does it,
    // with etcd's leases; a backend without them has the sweeper.
    if !storage.backend().expires_keys() {
        let events = storage.builtin_store("", "events");
        let event_ttl = config.event_ttl;
        server.add_post_start_hook(
            "start-kubeboot-event-ttl",
            spawn_once(move |_ctx| Box::pin(event_ttl::run(events, event_ttl))),
        );
    }

    install_identity_lease(
        &mut server,
        storage.builtin_store("coordination.k8s.io", "leases"),
    );

    let rbac_stores = RbacStores::new(&*storage);
    if config.builtin_controllers {
        let stores = rbac_stores.clone();
        server.add_post_start_hook(
            "start-kubeboot-clusterrole-aggregation-controller",
            spawn_once(move |_ctx| Box::pin(rbac_bootstrap::aggregate_forever(stores))),
        );
    }
    let rbac = config.rbac.clone();
    server.add_post_start_hook(
        "rbac/bootstrap-roles",
        Arc::new(move |_ctx| {
            let (stores, rbac) = (rbac_stores.clone(), rbac.clone());
            Box::pin(async move {
                rbac_bootstrap::reconcile(&stores).await?;
                if let Some(rbac) = rbac {
                    rbac.wait_synced().await;
                }
                Ok(())
            })
        }),
    );

    let tracking = (auth_namespaces.clone(), configmaps.clone());
    server.add_post_start_hook(
        "start-legacy-token-tracking-controller",
        Arc::new(move |_ctx| {
            let (namespaces, configmaps) = tracking.clone();
            Box::pin(async move {
                ensure_system_namespaces(&namespaces).await?;
                legacy_token_tracking::ensure(&configmaps)
                    .await
                    .map_err(|e| format!("recording legacy token tracking: {e}"))
            })
        }),
    );

    let auth_info = config.authentication_info.clone();
    server.add_post_start_hook(
        "start-cluster-authentication-info-controller",
        Arc::new(move |_ctx| {
            let (info, namespaces, configmaps) = (
                auth_info.clone(),
                auth_namespaces.clone(),
                configmaps.clone(),
            );
            Box::pin(async move {
                ensure_system_namespaces(&namespaces).await?;
                info.publish(&configmaps)
                    .await
                    .map_err(|e| format!("publishing {}: {e}", authentication_info::NAME))
            })
        }),
    );

    // The kubernetes Service's endpoints: with the lease reconciler, every live server's
    // address, renewed in the background; without, none are published.
    let leases = config.endpoint_leases.then(|| {
        endpoint_leases::EndpointLeases::new(
            storage.backend(),
            storage.keys().resource_prefix("", "masterleases"),
        )
    });
    let withdrawn = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kubernetes = config.kubernetes_service.clone();
    let bootstrap = (
        bootstrap_namespaces.clone(),
        services.clone(),
        endpoints.clone(),
        slices.clone(),
        leases.clone(),
        withdrawn.clone(),
    );
    server.add_post_start_hook(
        "bootstrap-controller",
        Arc::new(move |_ctx| {
            let kubernetes = kubernetes.clone();
            let (namespaces, services, endpoints, slices, leases, withdrawn) = bootstrap.clone();
            Box::pin(async move {
                ensure_system_namespaces(&namespaces).await?;
                kubernetes.ensure_service(&services).await?;
                let Some(leases) = leases else {
                    return Ok(());
                };
                if !kubernetes.publishes() {
                    // Endpoints may not hold loopback addresses (upstream validation);
                    // upstream's reconciler fails the same way, so say it once.
                    tracing::warn!(advertise = %kubernetes.advertise, "not publishing endpoints of the kubernetes Service for a loopback advertise address");
                    return Ok(());
                }
                let servers = leases
                    .renew(kubernetes.advertise)
                    .await
                    .map_err(|e| format!("renewing this server's endpoint lease: {e}"))?;
                kubernetes.publish(&endpoints, &slices, &servers).await?;
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(endpoint_leases::RENEW_INTERVAL).await;
                        if withdrawn.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        let result = match leases.renew(kubernetes.advertise).await {
                            Ok(servers) => kubernetes.publish(&endpoints, &slices, &servers).await,
                            Err(e) => Err(e.to_string()),
                        };
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "endpoint reconciler: renewing failed");
                        }
                    }
                });
                Ok(())
            })
        }),
    );
    let kubernetes = config.kubernetes_service.clone();
    server.add_pre_shutdown_hook(
        "withdraw-apiserver-endpoint",
        Arc::new(move |_ctx| {
            let (kubernetes, endpoints, slices, leases, withdrawn) = (
                kubernetes.clone(),
                endpoints.clone(),
                slices.clone(),
                leases.clone(),
                withdrawn.clone(),
            );
            Box::pin(async move {
                withdrawn.store(true, std::sync::atomic::Ordering::SeqCst);
                let Some(leases) = leases.filter(|_| kubernetes.publishes()) else {
                    return Ok(());
                };
                let servers = leases
                    .release(kubernetes.advertise)
                    .await
                    .map_err(|e| format!("releasing this server's endpoint lease: {e}"))?;
                kubernetes.publish(&endpoints, &slices, &servers).await
            })
        }),
    );

    // Rendering the documents takes ~100 ms in release builds: it happens on the first request,
    // on a blocking thread, so start-up stays fast and no async worker stalls.
    let openapi = config.openapi.clone();
    server.handle_prefix(
        "/openapi",
        handler_fn(move |req| {
            let openapi = openapi.clone();
            async move {
                match tokio::task::spawn_blocking(move || openapi.serve(&req)).await {
                    Ok(Some(resp)) => resp,
                    Ok(None) => crate::endpoints::status::page_not_found(),
                    Err(e) => crate::endpoints::status::ApiError::internal(e).into_response(),
                }
            }
        }),
    );

    // Upstream writes /version with WriteRawJSON: indented for every client.
    let version = handler_fn(|_req| async {
        let body = serde_json::to_vec_pretty(&crate::version::info()).expect("version serializes");
        let mut resp = http::Response::builder()
            .status(http::StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(full(body))
            .expect("static headers are valid");
        resp.extensions_mut().insert(Verbatim);
        resp
    });
    for (path, handler) in config
        .service_accounts
        .as_deref()
        .and_then(discovery::handlers)
        .into_iter()
        .flatten()
    {
        server.handle(path, handler);
    }
    server.handle("/version", version.clone());
    server.handle("/version/", version);
    let sized = storage.backend();
    server.handle(
        "/metrics",
        handler_fn(move |_req| {
            let sized = sized.clone();
            async move {
                // Read at each scrape, as upstream's storage monitor is.
                match sized.size().await {
                    Ok(Some((cluster, bytes))) => {
                        let labels = crate::metrics::StorageClusterLabels {
                            storage_cluster_id: cluster,
                        };
                        let size = &crate::metrics::metrics().storage_size;
                        size.get_or_create(&labels).set(bytes);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "reading the storage size failed"),
                }
                scrape().await
            }
        }),
    );
    if config.profiling {
        server.handle(
            crate::server::profiling::PROFILE_PATH,
            handler_fn(
                |req| async move { crate::server::profiling::serve(req.uri().query()).await },
            ),
        );
    }
    server.handle(
        "/metrics/slis",
        handler_fn(|_req| async {
            http::Response::builder()
                .header(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
                .body(full(crate::metrics::slis::slis().encode()))
                .expect("static headers are valid")
        }),
    );

    let next = server.delegate_handler();
    let api = handler_fn(move |req| {
        let (resources, discovery, next) = (resources.clone(), discovery.clone(), next.clone());
        async move {
            if let Some(resp) = discovery.serve(&req) {
                return resp;
            }
            // A group/version/resource no built-in store owns may be a custom resource: the
            // next link (apiextensions) decides, and answers 404 if nobody owns it.
            resources.serve_or(req, &next).await
        }
    });
    server.handle_prefix("/api", api.clone());
    server.handle_prefix("/apis", api);
    server
}

/// Creates the system namespaces that do not exist yet.
async fn ensure_system_namespaces(namespaces: &Store) -> Result<(), String> {
    let all: Vec<serde_json::Value> = SYSTEM_NAMESPACES
        .iter()
        .map(|name| serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .collect();
    ensure_exist(namespaces, all).await
}

/// Creates each cluster-scoped object of `objects` that does not exist yet.
/// `/metrics` in Prometheus' text format, encoded off the runtime's worker threads.
async fn scrape() -> crate::endpoints::Response {
    let body = tokio::task::spawn_blocking(|| crate::metrics::metrics().encode())
        .await
        .unwrap_or_default();
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
        .body(full(body))
        .expect("static headers are valid")
}

async fn ensure_exist(store: &Store, objects: Vec<serde_json::Value>) -> Result<(), String> {
    for obj in objects {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let options = WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Strict,
            ..Default::default()
        };
        match store.create(None, obj, options).await {
            Ok(_) | Err(RegistryError::AlreadyExists { .. }) => {}
            Err(e) => return Err(format!("creating {} {name}: {e}", store.info().resource)),
        }
    }
    Ok(())
}

/// Upstream's apiserver identity (`identity_lease`): the Lease this server holds while it runs,
/// and the collector of those of servers that died.
fn install_identity_lease(server: &mut GenericApiServer, leases: Arc<Store>) {
    let identity = Arc::new(identity_lease::IdentityLease::new(
        leases.clone(),
        identity_lease::hostname(),
    ));
    let held = identity.clone();
    server.add_post_start_hook(
        "start-kube-apiserver-identity-lease-controller",
        spawn_once(move |_ctx| Box::pin(held.run())),
    );
    server.add_post_start_hook(
        "start-kube-apiserver-identity-lease-garbage-collector",
        spawn_once(move |_ctx| Box::pin(identity_lease::collect_forever(leases))),
    );
    server.add_pre_shutdown_hook(
        "stop-kube-apiserver-identity-lease-controller",
        Arc::new(move |_ctx| {
            let identity = identity.clone();
            Box::pin(async move {
                identity
                    .stop()
                    .await
                    .map_err(|e| format!("deleting the identity lease: {e}"))
            })
        }),
    );
}
