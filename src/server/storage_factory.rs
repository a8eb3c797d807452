//! Opens the configured storage backend and hands each resource its (cached) storage: the
//! concrete [`StoreFactory`] every link of the chain builds its stores with.

use crate::registry::equivalence::EquivalentResources;
use crate::registry::kinds::field_types_for_kind;
use crate::registry::managed_fields::TypeRef;
use crate::registry::{Store, StoreFactory, Strategy};
use crate::server::healthz::HealthCheck;
use crate::storage::cacher::{Cacher, CacherOptions};
use crate::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use crate::storage::encryption::{EncryptedStorage, EncryptionConfig};
use crate::storage::instrumented::Instrumented;
use crate::storage::{
    KeyBuilder, Storage, StorageBackend, StorageConfig, StorageError, StorageMediaType,
};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events a watcher may fall behind before it is dropped and re-lists. Each cache preallocates
/// its broadcast ring, so this bounds memory too (~50 bytes a slot, one ring per resource).
const WATCHER_BUFFER: usize = 1024;

/// Each resource's watch cache by key prefix, with the resource's name in metrics.
type Cachers = HashMap<String, (String, Arc<Cacher>)>;

/// The backend plus one watch cache per resource prefix.
pub struct StorageFactory {
    backend: Arc<dyn Storage>,
    keys: KeyBuilder,
    watch_cache_size: usize,
    cachers: Arc<Mutex<Cachers>>,
    equivalents: Arc<EquivalentResources>,
    event_ttl: Option<Duration>,
    encryption: Option<Arc<EncryptionConfig>>,
    /// Objects are written as protobuf (`--storage-media-type`).
    protobuf: bool,
}

impl StorageFactory {
    /// An embedded store in `dir` with a watch cache, for unit tests of what reads stores.
    #[cfg(test)]
    pub async fn for_tests(dir: &std::path::Path) -> Arc<dyn crate::registry::StoreFactory> {
        let config = StorageConfig {
            backend: StorageBackend::Embedded {
                path: dir.join("db"),
            },
            prefix: "/registry".into(),
            media_type: StorageMediaType::Json,
            watch_cache_size: 100,
            compaction_interval: std::time::Duration::ZERO,
            compaction_keep: 0,
        };
        Arc::new(Self::open(&config).await.expect("embedded storage opens"))
    }

    /// Opens the backend the options name.
    pub async fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        let backend: Arc<dyn Storage> = match &config.backend {
            StorageBackend::Embedded { path } => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StorageError::with_source(
                            crate::storage::ErrorCode::Internal,
                            dir.display().to_string(),
                            e,
                        )
                    })?;
                }
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || {
                    EmbeddedStorage::open(path, EmbeddedOptions::default())
                })
                .await
                .map_err(|e| {
                    StorageError::with_source(crate::storage::ErrorCode::Internal, "", e)
                })??;
                Arc::new(store)
            }
            #[cfg(feature = "etcd")]
            StorageBackend::Etcd {
                servers,
                cafile,
                certfile,
                keyfile,
            } => {
                let options = crate::storage::etcd::EtcdOptions {
                    endpoints: servers.clone(),
                    ca_file: cafile.clone(),
                    cert_file: certfile.clone(),
                    key_file: keyfile.clone(),
                    connect_timeout: Some(Duration::from_secs(10)),
                };
                Arc::new(crate::storage::etcd::EtcdStorage::connect(options).await?)
            }
            #[cfg(not(feature = "etcd"))]
            StorageBackend::Etcd { .. } => {
                return Err(StorageError::new(
                    crate::storage::ErrorCode::Unavailable,
                    "",
                    0,
                    "this kubeboot was built without the `etcd` feature",
                ));
            }
        };
        let cachers: Arc<Mutex<Cachers>> = Arc::default();
        let counted = Arc::downgrade(&cachers);
        // apiserver_storage_objects: what each watch cache holds when scraped.
        crate::metrics::metrics().count_objects_with(Box::new(move || {
            let Some(cachers) = counted.upgrade() else {
                return Vec::new();
            };
            let cachers = cachers.lock().unwrap_or_else(|e| e.into_inner());
            cachers
                .values()
                .filter_map(|(resource, c)| Some((resource.clone(), c.object_count()?)))
                .collect()
        }));
        let protobuf = config.media_type == StorageMediaType::Protobuf;
        // etcd may be shared with, or taken over from or by, kube-apiserver: its key layout.
        let keys = match config.backend {
            StorageBackend::Etcd { .. } => KeyBuilder::upstream(&config.prefix),
            StorageBackend::Embedded { .. } => KeyBuilder::new(&config.prefix),
        };
        Ok(Self {
            backend,
            keys,
            protobuf,
            watch_cache_size: config.watch_cache_size,
            cachers,
            equivalents: Arc::default(),
            event_ttl: None,
            encryption: None,
        })
    }

    /// Events written through its stores expire `ttl` after their last write, kept by the
    /// backend's leases when it [expires keys](Storage::expires_keys) (etcd), as upstream's
    /// event storage; other backends leave it to a sweeper (`controlplane::event_ttl`).
    pub fn with_event_ttl(mut self, ttl: Duration) -> Self {
        self.event_ttl = Some(ttl);
        self
    }

    /// Resources `encryption` covers are encrypted at rest (`--encryption-provider-config`).
    pub fn with_encryption(mut self, encryption: Option<Arc<EncryptionConfig>>) -> Self {
        self.encryption = encryption;
        self
    }

    /// The backend as one resource sees it: its values encrypted when the encryption
    /// configuration covers it, its calls timed.
    fn resource_backend(&self, group: &str, resource: &str, name: String) -> Arc<dyn Storage> {
        let backend = match self
            .encryption
            .as_ref()
            .and_then(|e| e.transformer(group, resource))
        {
            Some(transformer) => Arc::new(EncryptedStorage::new(self.backend.clone(), transformer)),
            None => self.backend.clone(),
        };
        Arc::new(Instrumented::new(backend, name))
    }

    /// Storage for one resource: a watch cache over its key prefix, created on first use, or
    /// the backend itself when the watch cache is off; its backend calls are timed.
    fn for_resource(&self, group: &str, resource: &str) -> Arc<dyn Storage> {
        let name = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        if self.watch_cache_size == 0 {
            return self.resource_backend(group, resource, name);
        }
        let prefix = self.keys.resource_prefix(group, resource);
        let mut cachers = self.cachers.lock().expect("cacher map poisoned");
        let (_, cacher) = cachers.entry(prefix.clone()).or_insert_with(|| {
            let backend = self.resource_backend(group, resource, name.clone());
            let cacher = Cacher::new(
                backend,
                &prefix,
                CacherOptions {
                    event_ring: self.watch_cache_size,
                    watch_buffer: WATCHER_BUFFER,
                    ..CacherOptions::default()
                },
            )
            .with_metrics(self.keys.resource_path(group, resource));
            (name, Arc::new(cacher))
        });
        cacher.clone()
    }

    /// The storage health check, a read through the backend, named as upstream's (`etcd` in
    /// every endpoint, `etcd-readiness` in /readyz) whichever backend answers it, so monitoring
    /// and `?exclude=etcd` work unchanged on the embedded store.
    pub fn health_check(&self, name: &'static str) -> Arc<dyn HealthCheck> {
        Arc::new(StorageHealth {
            name,
            backend: self.backend.clone(),
            probe_key: self.keys.key("", "health", None, "probe"),
        })
    }
}

impl StoreFactory for StorageFactory {
    fn store(&self, strategy: Arc<dyn Strategy>) -> Store {
        // Another version of a resource (events.k8s.io Events) shares its watch cache.
        let (group, resource) = strategy.storage_resource();
        let backend = self.for_resource(group, resource);
        let protobuf = self.protobuf && crate::storage::kube_apiserver_owns(group);
        let info = strategy.info();
        let field_types = strategy
            .field_types()
            .or_else(|| field_types_for_kind(&info.group, &info.version, &info.kind))
            .unwrap_or_else(TypeRef::untyped);
        self.equivalents.register(&strategy);
        let expiring = (group, resource) == ("", "events") && self.backend.expires_keys();
        let mut store = Store::new(strategy, backend, self.keys.clone(), field_types);
        if protobuf {
            store = store.with_protobuf();
        }
        match self.event_ttl {
            Some(ttl) if expiring => store.with_ttl(ttl),
            _ => store,
        }
    }

    fn backend(&self) -> Arc<dyn Storage> {
        self.backend.clone()
    }

    fn keys(&self) -> &KeyBuilder {
        &self.keys
    }

    fn equivalents(&self) -> Arc<EquivalentResources> {
        self.equivalents.clone()
    }
}

struct StorageHealth {
    name: &'static str,
    backend: Arc<dyn Storage>,
    probe_key: String,
}

impl HealthCheck for StorageHealth {
    fn name(&self) -> &str {
        self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match tokio::time::timeout(Duration::from_secs(2), self.backend.get(&self.probe_key))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("storage did not answer within 2s".into()),
            }
        })
    }
}
