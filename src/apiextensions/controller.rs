//! The CRD controllers, in one loop over a watch of CustomResourceDefinitions, as upstream's
//! naming, establishing, finalizer and serving controllers: accept names that do not conflict,
//! mark the CRD Established, serve its versions, and on deletion remove its objects first.

use super::conversion::Converter;
use super::crd::{CLEANUP_FINALIZER, condition, set_condition};
use super::custom_resource::CustomResource;
use crate::admission::{Attributes, Mutating, Operation, Result as AdmissionResult};
use crate::endpoints::discovery::Discovery;
use crate::endpoints::openapi::{CustomResourceSchema, OpenApi};
use crate::registry::store::{DeleteParams, ListParams, UpdateTarget, WatchParams, WriteOptions};
use crate::registry::{RegistryError, Store, StoreFactory, StoreSet};
use crate::webhook::ServiceResolver;
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long to wait before retrying after a failed watch or a cleanup that is not done.
const RETRY: Duration = Duration::from_millis(500);

/// What one CRD currently serves.
struct Served {
    /// The spec and accepted names the stores were built from.
    fingerprint: Value,
    group: String,
    resource: String,
    versions: Vec<String>,
}

/// Turns established CRDs into stores and discovery entries.
pub struct Serving {
    storage: Arc<dyn StoreFactory>,
    stores: StoreSet,
    discovery: Arc<Discovery>,
    openapi: Arc<OpenApi>,
    served: Mutex<HashMap<String, Served>>,
    cleaning: Mutex<HashSet<String>>,
    terminating: Arc<Mutex<HashSet<(String, String)>>>,
    /// Where conversion webhooks referenced by Service are.
    resolver: Arc<ServiceResolver>,
}

/// Refuses creates of custom objects whose CRD is being deleted, as upstream's crdHandler
/// does before it decodes anything: it runs with the mutating plugins, ahead of validation.
pub struct TerminatingCrds(Arc<Mutex<HashSet<(String, String)>>>);

#[async_trait::async_trait]
impl Mutating for TerminatingCrds {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, _object: Option<&mut Value>) -> AdmissionResult {
        let resource = a.resource.group_resource();
        let key = (resource.group.clone(), resource.resource.clone());
        if self.0.lock().expect("poisoned").contains(&key) {
            return Err(RegistryError::MethodNotSupported {
                resource,
                message: "create not allowed while custom resource definition is terminating"
                    .into(),
            });
        }
        Ok(())
    }
}

impl Serving {
    /// Serving into `stores` and `discovery`.
    pub fn new(
        storage: Arc<dyn StoreFactory>,
        stores: StoreSet,
        discovery: Arc<Discovery>,
        openapi: Arc<OpenApi>,
    ) -> Self {
        let resolver = Arc::new(ServiceResolver {
            services: storage.builtin_store("", "services"),
            endpoint_slices: storage.builtin_store("discovery.k8s.io", "endpointslices"),
        });
        Self {
            storage,
            stores,
            discovery,
            openapi,
            resolver,
            served: Mutex::default(),
            cleaning: Mutex::default(),
            terminating: Arc::default(),
        }
    }

    /// The admission plugin refusing creates while a CRD is being deleted.
    pub fn admission(&self) -> TerminatingCrds {
        TerminatingCrds(self.terminating.clone())
    }

    fn store_for(&self, crd: &CustomResourceDefinition, version: &str) -> Option<Arc<Store>> {
        let v = crd.spec.versions.iter().find(|v| v.name == version)?;
        let converter = crd
            .spec
            .conversion
            .as_ref()
            .filter(|c| c.strategy == "Webhook")
            .and_then(|c| c.webhook.as_ref())
            .map(|w| Arc::new(Converter::new(w, self.resolver.clone())));
        Some(Arc::new(
            self.storage
                .store(Arc::new(CustomResource::new(crd, v, converter))),
        ))
    }

    /// Serves the served versions of `crd` (rebuilding them when its spec or names changed).
    fn serve(
        &self,
        name: &str,
        crd: &CustomResourceDefinition,
        accepted: &CustomResourceDefinitionNames,
    ) {
        let terminating = crd.metadata.deletion_timestamp.is_some();
        let fingerprint = json!([crd.spec, accepted, terminating]);
        let mut served = self.served.lock().expect("served poisoned");
        if served
            .get(name)
            .is_some_and(|s| s.fingerprint == fingerprint)
        {
            return;
        }
        // The old versions keep serving until the new ones replace them, so a request during a
        // CRD update never finds the resource missing.
        let old = served.remove(name);
        if let Some(old) = &old {
            self.terminating
                .lock()
                .expect("poisoned")
                .remove(&(old.group.clone(), old.resource.clone()));
        }
        if terminating {
            self.terminating
                .lock()
                .expect("poisoned")
                .insert((crd.spec.group.clone(), accepted.plural.clone()));
        }
        let mut crd = crd.clone();
        crd.status
            .get_or_insert_with(Default::default)
            .accepted_names = Some(accepted.clone());
        let mut versions = Vec::new();
        let mut infos = Vec::new();
        let mut schemas = Vec::new();
        for v in crd.spec.versions.iter().filter(|v| v.served) {
            if let Some(store) = self.store_for(&crd, &v.name) {
                infos.push(store.info().clone());
                schemas.push(CustomResourceSchema {
                    info: store.info().clone(),
                    list_kind: accepted
                        .list_kind
                        .clone()
                        .unwrap_or_else(|| format!("{}List", accepted.kind)),
                    schema: v
                        .schema
                        .as_ref()
                        .and_then(|s| s.open_api_v3_schema.as_ref())
                        .and_then(|s| serde_json::to_value(s).ok()),
                    selectable_fields: v
                        .selectable_fields
                        .iter()
                        .flatten()
                        .map(|f| f.json_path.clone())
                        .collect(),
                });
                self.stores.insert(store);
                versions.push(v.name.clone());
            }
        }
        if let Some(old) = &old {
            let kept = |v: &String| {
                old.group == crd.spec.group
                    && old.resource == accepted.plural
                    && versions.contains(v)
            };
            for v in old.versions.iter().filter(|v| !kept(v)) {
                self.stores.remove(&old.group, v, &old.resource);
            }
            self.discovery.remove(&old.group, &old.resource);
        }
        self.discovery.add(infos);
        self.openapi.set_custom_resource(name, schemas);
        tracing::info!(crd = name, versions = ?versions, "serving custom resource");
        served.insert(
            name.to_string(),
            Served {
                fingerprint,
                group: crd.spec.group.clone(),
                resource: accepted.plural.clone(),
                versions,
            },
        );
    }

    fn withdraw(&self, served: &Served) {
        self.terminating
            .lock()
            .expect("poisoned")
            .remove(&(served.group.clone(), served.resource.clone()));
        for v in &served.versions {
            self.stores.remove(&served.group, v, &served.resource);
        }
        self.discovery.remove(&served.group, &served.resource);
    }

    /// Stops serving the CRD named `name`.
    fn unserve(&self, name: &str) {
        if let Some(old) = self.served.lock().expect("served poisoned").remove(name) {
            tracing::info!(crd = name, "no longer serving custom resource");
            self.withdraw(&old);
            self.openapi.remove_custom_resource(name);
        }
    }
}

fn names_of(crd: &Value) -> Option<CustomResourceDefinitionNames> {
    crd.pointer("/status/acceptedNames")
        .and_then(|n| serde_json::from_value::<CustomResourceDefinitionNames>(n.clone()).ok())
        .filter(|n| !n.plural.is_empty())
}

/// Whether `wanted` conflicts with names other CRDs of the same group have accepted, as
/// upstream's naming controller reports it: (reason, message). Every name is checked in
/// upstream's order (plural, singular, short names, kind, list kind) and the last conflict
/// wins; a name this CRD has already accepted is never a conflict.
fn conflict(
    name: &str,
    group: &str,
    wanted: &CustomResourceDefinitionNames,
    accepted: Option<&CustomResourceDefinitionNames>,
    all: &BTreeMap<String, Value>,
) -> Option<(&'static str, String)> {
    let mut resources: HashSet<String> = HashSet::new();
    let mut kinds: HashSet<String> = HashSet::new();
    for (other_name, other) in all {
        if other_name == name || other.pointer("/spec/group").and_then(Value::as_str) != Some(group)
        {
            continue;
        }
        let Some(taken) = names_of(other) else {
            continue;
        };
        resources.insert(taken.plural);
        resources.extend(taken.singular);
        resources.extend(taken.short_names.into_iter().flatten());
        kinds.insert(taken.kind);
        kinds.extend(taken.list_kind);
    }
    // upstream's equalToAcceptedOrFresh.
    let check = |requested: &str, accepted: &str, used: &HashSet<String>| {
        if requested == accepted || !used.contains(requested) {
            None
        } else {
            Some(format!("{requested:?} is already in use"))
        }
    };
    let accepted_plural = accepted.map(|a| a.plural.as_str()).unwrap_or("");
    let accepted_singular = accepted.and_then(|a| a.singular.as_deref()).unwrap_or("");
    let accepted_short: Vec<&str> = accepted
        .and_then(|a| a.short_names.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let accepted_kind = accepted.map(|a| a.kind.as_str()).unwrap_or("");
    let accepted_list_kind = accepted.and_then(|a| a.list_kind.as_deref()).unwrap_or("");

    let mut found = None;
    if let Some(m) = check(&wanted.plural, accepted_plural, &resources) {
        found = Some(("PluralConflict", m));
    }
    if let Some(m) = check(
        wanted.singular.as_deref().unwrap_or(""),
        accepted_singular,
        &resources,
    ) {
        found = Some(("SingularConflict", m));
    }
    let short: Vec<String> = wanted
        .short_names
        .iter()
        .flatten()
        .filter(|s| !accepted_short.contains(&s.as_str()))
        .filter_map(|s| check(s, "", &resources))
        .collect();
    match short.len() {
        0 => {}
        // upstream's utilerrors aggregate: one message alone, several in brackets.
        1 => found = Some(("ShortNamesConflict", short[0].clone())),
        _ => found = Some(("ShortNamesConflict", format!("[{}]", short.join(", ")))),
    }
    if let Some(m) = check(&wanted.kind, accepted_kind, &kinds) {
        found = Some(("KindConflict", m));
    }
    if let Some(m) = check(
        wanted.list_kind.as_deref().unwrap_or(""),
        accepted_list_kind,
        &kinds,
    ) {
        found = Some(("ListKindConflict", m));
    }
    found
}

/// Runs the controllers until the process ends; `synced` turns true once every CRD that
/// existed at start is served.
pub async fn run(crds: Arc<Store>, serving: Arc<Serving>, synced: watch::Sender<bool>) {
    let mut all: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let page = match crds.list(None, &ListParams::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "CRD controller: list failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let listed: BTreeMap<String, Value> = page
            .items
            .into_iter()
            .filter_map(|c| Some((c.pointer("/metadata/name")?.as_str()?.to_string(), c)))
            .collect();
        for gone in all.keys().filter(|n| !listed.contains_key(*n)) {
            serving.unserve(gone);
        }
        all = listed;
        for crd in all.values() {
            reconcile(&crds, &serving, crd, &all).await;
        }
        synced.send_replace(true);
        let params = WatchParams {
            list: ListParams {
                resource_version: Some(page.resource_version),
                ..ListParams::default()
            },
            ..WatchParams::default()
        };
        let mut events = match crds.watch(None, params).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "CRD controller: watch failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        while let Some(ev) = events.next().await {
            let Some(name) = ev
                .object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            match ev.kind {
                "DELETED" => {
                    all.remove(&name);
                    serving.unserve(&name);
                    // Names it held may now be free for another CRD.
                    for crd in all.values() {
                        reconcile(&crds, &serving, crd, &all).await;
                    }
                }
                "ADDED" | "MODIFIED" => {
                    all.insert(name.clone(), Value::clone(&ev.object));
                    reconcile(&crds, &serving, &ev.object, &all).await;
                }
                _ => {}
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn reconcile(
    crds: &Arc<Store>,
    serving: &Arc<Serving>,
    obj: &Value,
    all: &BTreeMap<String, Value>,
) {
    let Ok(crd) = serde_json::from_value::<CustomResourceDefinition>(obj.clone()) else {
        return;
    };
    let name = crd.metadata.name.clone().unwrap_or_default();
    if crd.metadata.deletion_timestamp.is_some() {
        if let Some(accepted) = names_of(obj) {
            serving.serve(&name, &crd, &accepted);
        }
        let finalizing = crd
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == CLEANUP_FINALIZER);
        if finalizing
            && serving
                .cleaning
                .lock()
                .expect("poisoned")
                .insert(name.clone())
        {
            let (crds, serving) = (crds.clone(), serving.clone());
            tokio::spawn(async move {
                cleanup(&crds, &serving, &crd).await;
                serving.cleaning.lock().expect("poisoned").remove(&name);
            });
        }
        return;
    }
    let wanted = crd.spec.names.clone();
    let mut desired = obj.clone();
    let accepted = match conflict(&name, &crd.spec.group, &wanted, names_of(obj).as_ref(), all) {
        Some((reason, message)) => {
            set_condition(
                &mut desired,
                condition("NamesAccepted", "False", reason, &message),
            );
            // upstream's naming controller: Established starts False until names are accepted.
            let established = desired
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Established"));
            if !established {
                set_condition(
                    &mut desired,
                    condition(
                        "Established",
                        "False",
                        "NotAccepted",
                        "not all names are accepted",
                    ),
                );
            }
            names_of(obj)
        }
        None => {
            desired["status"]["acceptedNames"] =
                serde_json::to_value(&wanted).expect("names serialize");
            set_condition(
                &mut desired,
                condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
            );
            set_condition(
                &mut desired,
                condition(
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ),
            );
            Some(wanted)
        }
    };
    if let Some(accepted) = &accepted {
        serving.serve(&name, &crd, accepted);
    }
    if desired.get("status") != obj.get("status") {
        let result = crds
            .replace_status(None, &name, desired["status"].clone())
            .await;
        if let Err(e) = result
            && !matches!(e, RegistryError::NotFound { .. })
        {
            tracing::warn!(crd = name, error = %e, "CRD controller: status update failed");
        }
    }
}

/// Deletes every object of a CRD being deleted, then removes its cleanup finalizer.
async fn cleanup(crds: &Store, serving: &Serving, crd: &CustomResourceDefinition) {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let storage_version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let mut crd_for_store = crd.clone();
    if let Some(accepted) = crd.status.as_ref().and_then(|s| s.accepted_names.clone()) {
        crd_for_store.spec.names = accepted;
    }
    let _ = set_status_condition(
        crds,
        &name,
        condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ),
    )
    .await;
    if let Some(store) = serving.store_for(&crd_for_store, &storage_version) {
        loop {
            let _ = store
                .delete_collection(None, &ListParams::default(), &DeleteParams::default())
                .await;
            match store.list(None, &ListParams::default()).await {
                Ok(page) if page.items.is_empty() => break,
                Ok(_) | Err(_) => tokio::time::sleep(RETRY).await,
            }
        }
    }
    let _ = set_status_condition(
        crds,
        &name,
        condition(
            "Terminating",
            "True",
            "InstanceDeletionCompleted",
            "removed all instances",
        ),
    )
    .await;
    let result = crds
        .update_with(
            None,
            &name,
            UpdateTarget::Main,
            WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                if let Some(Value::Array(f)) = next.pointer_mut("/metadata/finalizers") {
                    f.retain(|f| f != CLEANUP_FINALIZER);
                }
                Ok::<_, RegistryError>(next)
            },
        )
        .await;
    if let Err(e) = result {
        tracing::warn!(crd = name, error = %e, "CRD controller: removing the cleanup finalizer failed");
    }
}

async fn set_status_condition(crds: &Store, name: &str, cond: Value) -> Result<(), RegistryError> {
    crds.update_with(
        None,
        name,
        UpdateTarget::STATUS,
        WriteOptions::default(),
        |current| {
            let mut next = current.clone();
            set_condition(&mut next, cond.clone());
            Ok(next)
        },
    )
    .await
    .map(|_| ())
}
