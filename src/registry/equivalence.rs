//! Which served resources are one resource (upstream's `EquivalentResourceRegistry`, keyed by
//! storage as kube-apiserver keys it): the versions of a CRD, and kinds kept in another's
//! storage (events.k8s.io Events are core Events). Admission's `matchPolicy: Equivalent`
//! matches a request through them and converts its objects between them, through the stored
//! form: the one side's storage conversion encodes, the other's decodes.

use super::{RegistryError, ResourceInfo, Strategy};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

/// A served (group, version, resource).
type Served = (String, String, String);

/// A storage's (group, resource).
type StorageResource = (String, String);

/// The resources registered as kept in one storage, each with its strategy, oldest first.
type Registrations = Vec<(Served, Weak<dyn Strategy>)>;

/// The strategy serving a resource, and those serving the resources equivalent to it.
pub type Equivalents = (Arc<dyn Strategy>, Vec<Arc<dyn Strategy>>);

/// The strategies of every served resource, by the storage they share. Held weakly: a CRD
/// version withdrawn from service drops out with its store. A resource may be registered more
/// than once (each store of it registers); the latest live registration speaks for it, so a
/// CRD served anew with a changed spec is converted by its new strategy.
#[derive(Default)]
pub struct EquivalentResources {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Each served resource's storage (group, resource).
    storage_of: HashMap<Served, StorageResource>,
    /// The strategies sharing one storage, in the order registered.
    sharing: HashMap<StorageResource, Registrations>,
}

fn served(info: &ResourceInfo) -> Served {
    (
        info.group.to_string(),
        info.version.to_string(),
        info.resource.to_string(),
    )
}

impl EquivalentResources {
    /// Records `strategy` as serving its group, version and resource.
    pub fn register(&self, strategy: &Arc<dyn Strategy>) {
        let key = served(strategy.info());
        let (group, resource) = strategy.storage_resource();
        let storage = (group.to_string(), resource.to_string());
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let sharing = inner.sharing.entry(storage.clone()).or_default();
        sharing.retain(|(_, s)| s.strong_count() > 0);
        sharing.push((key.clone(), Arc::downgrade(strategy)));
        inner.storage_of.insert(key, storage);
    }

    /// The resources serving `kind` of `group` at `version` (upstream's `RESTMappings`), each
    /// with whether it is namespaced; empty when none does.
    pub fn resources_of_kind(&self, group: &str, version: &str, kind: &str) -> Vec<(String, bool)> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<(String, bool)> = Vec::new();
        for (_, strategy) in inner.sharing.values().flatten() {
            let Some(strategy) = strategy.upgrade() else {
                continue;
            };
            let info = strategy.info();
            if info.group == group
                && info.version == version
                && info.kind == kind
                && !info.resource.contains('/')
                && !found.iter().any(|(r, _)| *r == info.resource)
            {
                found.push((info.resource.to_string(), info.namespaced));
            }
        }
        found.sort();
        found
    }

    /// The kind served as `resource` of `group` at `version` (upstream's `KindFor`).
    pub fn kind_of(&self, group: &str, version: &str, resource: &str) -> Option<String> {
        let key = (group.to_string(), version.to_string(), resource.to_string());
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let sharing = inner.sharing.get(inner.storage_of.get(&key)?)?;
        sharing
            .iter()
            .rev()
            .filter(|(served, _)| *served == key)
            .find_map(|(_, s)| Some(s.upgrade()?.info().kind.to_string()))
    }

    /// The strategy serving `info`, and those of the other resources sharing its storage.
    pub fn of(&self, info: &ResourceInfo) -> Option<Equivalents> {
        let key = served(info);
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let sharing = inner.sharing.get(inner.storage_of.get(&key)?)?;
        let mut own = None;
        let mut others: Vec<(&Served, Arc<dyn Strategy>)> = Vec::new();
        for (k, s) in sharing.iter().rev() {
            if *k == key && own.is_some() || others.iter().any(|(o, _)| *o == k) {
                continue;
            }
            let Some(s) = s.upgrade() else { continue };
            if *k == key {
                own = Some(s);
            } else {
                others.push((k, s));
            }
        }
        Some((own?, others.into_iter().map(|(_, s)| s).collect()))
    }
}

/// `obj`, served by `from`, as `to` serves it: encoded to the stored form by the one, decoded
/// by the other.
pub fn convert(
    from: &dyn Strategy,
    to: &dyn Strategy,
    obj: &Value,
) -> Result<Value, RegistryError> {
    let mut obj = obj.clone();
    if let Some(c) = from.storage_conversion() {
        c.encode(&mut obj)?;
    }
    if let Some(c) = to.storage_conversion() {
        c.decode(&mut obj)?;
    }
    Ok(obj)
}
