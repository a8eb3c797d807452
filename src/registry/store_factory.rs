//! `StoreFactory`: how a server link gets the store of a kind without knowing the backend,
//! the watch caches or the key layout (upstream's `StorageFactory`, which the generic server
//! owns). `app.rs` wires in the concrete one.

use super::equivalence::EquivalentResources;
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

    /// The served resources by the storage they share, as the stores made so far register them.
    fn equivalents(&self) -> Arc<EquivalentResources>;

    /// The store of the built-in `resource` of `group` (core: ""), for the authenticators,
    /// authorizers and admission plugins that read objects; panics for a kind not built in.
    fn builtin_store(&self, group: &str, resource: &str) -> Arc<Store> {
        let strategy = super::kinds::builtin()
            .into_iter()
            .find(|s| s.info().group == group && s.info().resource == resource)
            .unwrap_or_else(|| panic!("{resource}.{group} is not a built-in kind"));
        Arc::new(self.store(strategy))
    }
}
