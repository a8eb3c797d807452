//! The start-up flow of cmd/kube-apiserver/app, from validated options: server chain → prepare → run.

use crate::aggregator::new_aggregator;
use crate::apiextensions::new_apiextensions_server;
use crate::auth::{AuthError, Authenticator, Authorizer};
use crate::controlplane::authentication_info::AuthenticationInfo;
use crate::controlplane::new_kube_api_server;
use crate::endpoints::discovery::Discovery;
use crate::endpoints::openapi::OpenApi;
use crate::filters::FilterConfig;
use crate::filters::watch_termination::WatchDrain;
use crate::options::ValidOptions;
use crate::pki::{self, PkiError};
use crate::proxy::ClientIdentity;
use crate::registry::StoreSet;
use crate::server::resource_config::{GroupVersionResource, ResourceConfig, RuntimeConfigError};
use crate::server::serving::{self, TlsError};
use crate::server::storage_factory::StorageFactory;
use crate::server::{EmptyDelegate, GenericApiServer, PreparedApiServer, RunConfig, ServerError};
use crate::storage::StorageError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Errors of starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A file the server needs is missing.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// An authenticator could not be configured.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listener could not be bound.
    #[error("--bind-address/--secure-port: failed to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The audit log could not be opened.
    #[error("--audit-log-path: opening {path}: {source}")]
    AuditLog {
        /// The log's path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The audit webhook's kubeconfig could not be used.
    #[error("--audit-webhook-config-file: {0}")]
    AuditWebhook(#[source] crate::webhook::WebhookError),
    /// The storage backend could not be opened.
    #[error("opening storage: {0}")]
    Storage(#[from] StorageError),
    /// A file the server publishes could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The front-proxy client certificate could not be loaded.
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    /// `--runtime-config` names what cannot be served.
    #[error(transparent)]
    RuntimeConfig(#[from] RuntimeConfigError),
    /// The server stopped with an error.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The kubelet client certificate or CA could not be loaded.
    #[error("--kubelet-client-certificate/--kubelet-certificate-authority: {0}")]
    Kubelet(crate::proxy::ProxyError),
    /// The authorization webhook's configuration is unusable.
    #[error("--authorization-webhook-config-file: {0}")]
    AuthorizationWebhook(crate::webhook::WebhookError),
}

/// What kube-system/extension-apiserver-authentication publishes, from the options.
fn authentication_info(o: &ValidOptions) -> Result<AuthenticationInfo, AppError> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|source| AppError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut info = AuthenticationInfo {
        client_ca: read(&o.authentication.client_ca_file)?,
        ..AuthenticationInfo::default()
    };
    if let Some(rh) = &o.authentication.requestheader {
        info.requestheader_client_ca = read(&rh.client_ca_file)?;
        info.allowed_names = rh.allowed_names.clone();
        info.username_headers = rh.username_headers.clone();
        info.uid_headers = rh.uid_headers.clone();
        info.group_headers = rh.group_headers.clone();
        info.extra_headers_prefix = rh.extra_headers_prefix.clone();
    }
    Ok(info)
}

/// The cluster CA bundle published in every namespace: kubeadm's `ca.crt` (which
/// kube-controller-manager's `--root-ca-file` names), or the client CA when there is none.
fn root_ca(o: &ValidOptions) -> Result<Arc<str>, AppError> {
    let path = if o.pki.ca_crt.exists() {
        &o.pki.ca_crt
    } else {
        &o.authentication.client_ca_file
    };
    std::fs::read_to_string(path)
        .map(Arc::from)
        .map_err(|source| AppError::Read {
            path: path.clone(),
            source,
        })
}

/// The legacy `bindings` resource, on the pods' store.
fn pod_bindings(
    builtin: &[Arc<dyn crate::registry::Strategy>],
    storage: &dyn crate::registry::StoreFactory,
) -> Arc<dyn crate::registry::rest::Creater> {
    let pods = builtin
        .iter()
        .find(|s| s.info().group.is_empty() && s.info().resource == "pods")
        .expect("pods are built in");
    Arc::new(crate::registry::kinds::corev1::Bindings::new(Arc::new(
        storage.store(pods.clone()),
    )))
}

/// `--runtime-config` merged over everything kubeboot serves; warns of keys that cannot act.
fn resource_config(
    o: &ValidOptions,
    builtin: &[Arc<dyn crate::registry::Strategy>],
    creaters: &[Arc<dyn crate::registry::rest::Creater>],
) -> Result<ResourceConfig, AppError> {
    let own = [
        crate::apiextensions::crd::strategy(),
        crate::aggregator::apiservice::strategy(),
    ];
    let served: Vec<GroupVersionResource> = builtin
        .iter()
        .chain(&own)
        .map(|s| s.info())
        .chain(creaters.iter().map(|c| c.info()))
        .map(|i| GroupVersionResource::new(&i.group, &i.version, &i.resource))
        .collect();
    let (config, mut warnings) = ResourceConfig::merge(&o.runtime_config, &served)?;
    // The CRD and APIService APIs feed the chain's own informers, so they stay served.
    for info in own.iter().map(|s| s.info()) {
        if !config.resource_enabled(&info.group, &info.version, &info.resource) {
            warnings.push(format!(
                "--runtime-config: kubeboot always serves {}/{}/{}; the key has no effect",
                info.group, info.version, info.resource
            ));
        }
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// The server chain and the identity checks its filters run, built together because the
/// authenticators and authorizers read objects the chain stores (and its reviews ask them).
pub struct ServerChain {
    /// The chain: aggregator → kube API server → apiextensions → 404.
    pub server: GenericApiServer,
    /// Who is asking.
    pub authenticator: Arc<Authenticator>,
    /// May they.
    pub authorizer: Arc<Authorizer>,
    /// API Priority and Fairness, unless --enable-priority-and-fairness=false.
    pub flow_control: Option<Arc<crate::flowcontrol::FlowControl>>,
}

/// Builds the chain aggregator → kube API server → apiextensions → 404, as upstream's
/// CreateServerChain, with its authenticator and authorizer.
pub async fn create_server_chain(o: &ValidOptions) -> Result<ServerChain, AppError> {
    let storage_factory = StorageFactory::open(&o.storage)
        .await?
        .with_event_ttl(o.event_ttl)
        .with_encryption(o.encryption.clone());
    let storage_health = storage_factory.health_check("etcd");
    let storage_readiness = storage_factory.health_check("etcd-readiness");
    let storage: Arc<dyn crate::registry::StoreFactory> = Arc::new(storage_factory);
    // Authentication and authorization read objects (service accounts, roles, bindings) from
    // the same stores the chain serves.
    let authenticator = Arc::new(Authenticator::new(&o.authentication, &storage)?);
    let authorizer = Arc::new(
        Authorizer::new(&o.authorization, &storage).map_err(AppError::AuthorizationWebhook)?,
    );
    let not_found = Arc::new(EmptyDelegate);
    let discovery = Arc::new(Discovery::new(
        std::net::SocketAddr::new(o.advertise_address, o.secure_port).to_string(),
    ));
    let admission = crate::controlplane::admission_plugins(
        &storage,
        &authorizer,
        &o.admission_plugins,
        &o.admission_config,
    );
    let builtin = crate::registry::kinds::builtin();
    let mut creaters = crate::auth::reviews::all(&authenticator, &authorizer);
    creaters.push(pod_bindings(&builtin, &*storage));
    let resource_config = resource_config(o, &builtin, &creaters)?;
    let served = |info: &crate::registry::ResourceInfo| {
        resource_config.resource_enabled(&info.group, &info.version, &info.resource)
    };
    let creaters: Vec<_> = creaters.into_iter().filter(|c| served(c.info())).collect();
    let openapi = Arc::new(OpenApi::build(
        &builtin
            .iter()
            .map(|s| s.info().clone())
            .filter(served)
            .chain([
                crate::apiextensions::crd::strategy().info().clone(),
                crate::aggregator::apiservice::strategy().info().clone(),
            ])
            .chain(creaters.iter().map(|c| c.info().clone()))
            .collect::<Vec<_>>(),
    ));
    let custom_stores = StoreSet::default();
    let min_request_timeout = o.min_request_timeout;
    let apiextensions = Arc::new(new_apiextensions_server(
        crate::apiextensions::Config {
            storage: storage.clone(),
            discovery: discovery.clone(),
            openapi: openapi.clone(),
            admission: admission.clone(),
            stores: custom_stores.clone(),
            min_request_timeout,
        },
        not_found,
    ));
    // Upstream shares the sum of both max-in-flight limits among the priority levels.
    let flow_control = o.enable_priority_and_fairness.then(|| {
        crate::flowcontrol::FlowControl::new(
            o.max_requests_inflight + o.max_mutating_requests_inflight,
        )
    });
    let config = crate::controlplane::Config {
        flow_control: flow_control.clone(),
        min_request_timeout,
        event_ttl: o.event_ttl,
        profiling: o.profiling,
        builtin_controllers: o.builtin_controllers,
        root_ca: root_ca(o)?,
        service_ranges: o.service_cluster_ip_ranges.clone(),
        node_ports: (o.node_port_range.base, o.node_port_range.size),
        compaction: (o.storage.compaction_interval, o.storage.compaction_keep),
        kubernetes_service: crate::controlplane::bootstrap::KubernetesService {
            cluster_ip: o.api_server_service_ip,
            advertise: o.advertise_address,
            port: o.secure_port,
        },
        discovery: discovery.clone(),
        openapi,
        admission: admission.clone(),
        custom_stores,
        creaters,
        resource_config,
        storage_health,
        storage_readiness,
        authentication_info: authentication_info(o)?,
        service_accounts: authenticator.service_accounts().cloned(),
        rbac: authorizer.rbac().cloned(),
        endpoint_leases: o.endpoint_leases,
        kubelet: Arc::new(
            crate::controlplane::kubelet::KubeletClient::new(o.kubelet.clone())
                .map_err(AppError::Kubelet)?,
        ),
    };
    let kube_api_server = Arc::new(new_kube_api_server(config, storage.clone(), apiextensions));
    let aggregator = crate::aggregator::Config {
        storage,
        discovery,
        admission,
        proxy_identity: ClientIdentity::load(&o.proxy_client_cert_file, &o.proxy_client_key_file)?,
        min_request_timeout,
    };
    Ok(ServerChain {
        server: new_aggregator(aggregator, kube_api_server),
        authenticator,
        authorizer,
        flow_control,
    })
}

/// A server whose listener is bound and whose chain is prepared: `run` serves it.
pub struct Started {
    /// The prepared chain.
    pub server: PreparedApiServer,
    /// The bound listener.
    pub listener: TcpListener,
    /// The TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// Re-reads the client CA files while the server runs.
    reload_client_cas: futures::future::BoxFuture<'static, ()>,
}

impl Started {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until the shutdown sequence ends.
    pub async fn run(self) -> Result<(), AppError> {
        let reloader = tokio::spawn(self.reload_client_cas);
        let served = self.server.run(self.listener, self.tls).await;
        reloader.abort();
        Ok(served?)
    }
}

/// Loads credentials, binds the listener and prepares the chain; fails before serving anything.
pub async fn prepare(o: &ValidOptions, handle_os_signals: bool) -> Result<Started, AppError> {
    pki::require(o)?;
    prepare_chain(o, create_server_chain(o).await?, None, handle_os_signals).await
}

/// As [`prepare`], for a chain the caller built (and may have added paths to) after checking the
/// PKI; served on `listener` when the caller bound one (say on port 0) for the options' address.
pub async fn prepare_chain(
    o: &ValidOptions,
    chain: ServerChain,
    listener: Option<std::net::TcpListener>,
    handle_os_signals: bool,
) -> Result<Started, AppError> {
    let ServerChain {
        server: chain,
        authenticator,
        authorizer,
        flow_control,
    } = chain;
    let tls = serving::tls_config(
        &o.tls_cert_file,
        &o.tls_private_key_file,
        &o.tls.versions,
        o.tls.cipher_suites.clone(),
        authenticator.client_cert_verifier(),
    )?;
    let addr = SocketAddr::new(o.bind_address, o.secure_port);
    let listener = match listener {
        Some(bound) => crate::server::listener::from_std(bound),
        None => crate::server::listener::listen(addr).await,
    }
    .map_err(|source| AppError::Bind { addr, source })?;

    let auditor = match &o.audit_policy {
        Some(policy) => {
            let mut backends = Vec::new();
            if let Some(log) = &o.audit_log {
                let events =
                    crate::audit::log::start(log.clone()).map_err(|source| AppError::AuditLog {
                        path: log.path.clone(),
                        source,
                    })?;
                backends.push(crate::audit::Backend::Queued("log", events));
            }
            if let Some((file, batch)) = &o.audit_webhook {
                let client = crate::webhook::WebhookClient::from_kubeconfig_file(
                    file,
                    std::time::Duration::from_secs(30),
                )
                .map_err(AppError::AuditWebhook)?;
                backends.push(crate::audit::webhook::backend(client, batch.clone()));
            }
            (!backends.is_empty())
                .then(|| Arc::new(crate::audit::Auditor::new(policy.clone(), backends)))
        }
        None => None,
    };
    let reload_client_cas = Box::pin(authenticator.reload_client_cas());
    let grace = o.shutdown_watch_termination_grace_period;
    let watch_drain = (!grace.is_zero()).then(|| WatchDrain::new(grace));
    let server = chain.prepare_run(
        |signals, in_flight| FilterConfig {
            authenticator,
            authorizer,
            max_requests_inflight: o.max_requests_inflight,
            max_mutating_requests_inflight: o.max_mutating_requests_inflight,
            request_timeout: o.request_timeout,
            not_accepting_new_requests: signals.not_accepting_new_requests.clone(),
            send_retry_after: o.shutdown_send_retry_after,
            in_flight,
            auditor,
            flow_control,
            goaway_chance: o.goaway_chance,
            watch_drain: watch_drain.clone(),
        },
        RunConfig {
            shutdown_delay: o.shutdown_delay,
            send_retry_after: o.shutdown_send_retry_after,
            request_timeout: o.request_timeout,
            handle_os_signals,
            http2_max_streams: o.http2_max_streams_per_connection,
            watch_drain: watch_drain.clone(),
        },
    );
    Ok(Started {
        server,
        listener,
        tls,
        reload_client_cas,
    })
}
