//! What the options tell storage: which backend to open, the key prefix, the watch cache and compaction.

use std::path::PathBuf;
use std::time::Duration;

/// Which storage backend serves the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// redb file under the data directory.
    Embedded {
        /// Path of the database file.
        path: PathBuf,
    },
    /// etcd v3 cluster.
    Etcd {
        /// Endpoints, scheme://host:port.
        servers: Vec<String>,
        /// CA bundle for etcd's serving certificate.
        cafile: Option<PathBuf>,
        /// Client certificate presented to etcd.
        certfile: Option<PathBuf>,
        /// Key of the client certificate.
        keyfile: Option<PathBuf>,
    },
}

/// How objects are encoded (`--storage-media-type`); on etcd under kube-apiserver's keys
/// either way, so either server can take over the other's data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageMediaType {
    /// JSON: the embedded store's format, and etcd's when asked for.
    #[default]
    Json,
    /// kube-apiserver's default on etcd: protobuf for the kinds of its own scheme, JSON for
    /// custom resources, CRDs and APIServices.
    Protobuf,
}

/// Storage settings shared by both backends, as upstream's `storagebackend.Config`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The backend and its connection settings.
    pub backend: StorageBackend,
    /// Key prefix of every resource (`--etcd-prefix`), without a trailing slash.
    pub prefix: String,
    /// The encoding and key layout of objects (`--storage-media-type`).
    pub media_type: StorageMediaType,
    /// Recent events each resource's watch cache keeps (`--default-watch-cache-size`; 0: no cache).
    pub watch_cache_size: usize,
    /// How often the apiserver compacts storage (`--etcd-compaction-interval`; zero: never).
    pub compaction_interval: Duration,
    /// Revisions each compaction keeps behind the current one (`--storage-compaction-keep`).
    pub compaction_keep: i64,
}
