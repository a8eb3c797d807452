//! `StoreSet`: the stores one server link serves, by group/version/resource. Built-in links fill
//! it once; the apiextensions link adds and removes custom resources while it runs.

use super::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

type Key = (String, String, String);

/// A shared, changeable set of stores; clones share the set.
#[derive(Clone, Default)]
pub struct StoreSet {
    stores: Arc<RwLock<BTreeMap<Key, Arc<Store>>>>,
}

fn key(group: &str, version: &str, resource: &str) -> Key {
    (group.to_string(), version.to_string(), resource.to_string())
}

impl StoreSet {
    /// A set holding `stores`.
    pub fn new(stores: impl IntoIterator<Item = Arc<Store>>) -> Self {
        let set = Self::default();
        for s in stores {
            set.insert(s);
        }
        set
    }

    /// Adds a store, replacing the one serving the same group/version/resource.
    pub fn insert(&self, store: Arc<Store>) {
        let i = store.info();
        let k = key(&i.group, &i.version, &i.resource);
        self.stores
            .write()
            .expect("store set poisoned")
            .insert(k, store);
    }

    /// Removes the store of a group/version/resource.
    pub fn remove(&self, group: &str, version: &str, resource: &str) -> Option<Arc<Store>> {
        self.stores
            .write()
            .expect("store set poisoned")
            .remove(&key(group, version, resource))
    }

    /// The store of a group/version/resource.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<Arc<Store>> {
        self.stores
            .read()
            .expect("store set poisoned")
            .get(&key(group, version, resource))
            .cloned()
    }

    /// Whether the set holds a built-in kind of `group` (see
    /// [`is_builtin`](crate::registry::strategy::ResourceInfo::is_builtin)).
    pub fn has_builtin_group(&self, group: &str) -> bool {
        let stores = self.stores.read().expect("store set poisoned");
        stores
            .iter()
            .any(|((g, _, _), s)| g == group && s.info().is_builtin())
    }

    /// Every store, one per group/resource (the first version of a resource served in several).
    pub fn per_resource(&self) -> Vec<Arc<Store>> {
        let stores = self.stores.read().expect("store set poisoned");
        let mut seen = std::collections::HashSet::new();
        stores
            .iter()
            .filter(|((g, _, r), _)| seen.insert((g.clone(), r.clone())))
            .map(|(_, s)| s.clone())
            .collect()
    }
}
