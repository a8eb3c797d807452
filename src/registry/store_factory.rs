//! `StoreFactory`: how a server link gets the store of a kind without knowing the backend,
//! the watch caches or the key layout (upstream's `StorageFactory`, which the generic server
//! owns). `app.rs` wires in the concrete one.

use super::{Store, Strategy};
use crate::storage::{KeyBuilder, Storage};
use std::sync::Arc;

/// Builds stores on the configured storage.
pub trait StoreFactory: Send + Sync {
    /// The store of `strategy`'s kind, on the storage (and watch cache) of the resource it is
    /// stored as.
    fn store(&self, strategy: Arc<dyn Strategy>) -> Store;

    /// The backend without a cache, for data kept beside objects (node-port bitmaps) and for
    /// compaction.
    fn backend(&self) -> Arc<dyn Storage>;

    /// The key layout of the backend.
    fn keys(&self) -> &KeyBuilder;
}
