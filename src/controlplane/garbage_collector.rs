//! The garbage collector (kube-controller-manager's `garbagecollector`), run in-process with
//! `--builtin-controllers` so that cascading deletion works on a single kubeboot:
//! - an object all of whose owners are gone is deleted (background cascading);
//! - an owner deleted with `propagationPolicy=Foreground` (finalizer `foregroundDeletion`) has
//!   its dependents deleted, and loses the finalizer — and so goes — once no dependent that
//!   blocks its deletion (`blockOwnerDeletion: true`) is left;
//! - an owner deleted with `propagationPolicy=Orphan` (finalizer `orphan`) has its reference
//!   removed from every dependent, then loses the finalizer;
//! - references to owners that are gone are removed from objects that still have a live owner.
//!
//! Every resource is listed then watched into a graph of owner references by uid; changes put
//! the uids they concern on a queue that one worker attends. An owner not in the graph is
//! looked up by its kind and name before it is taken for gone, as upstream does.

use crate::registry::store::{
    DeleteParams, FINALIZER_FOREGROUND, FINALIZER_ORPHAN, ListParams, UpdateTarget, WatchParams,
    WriteOptions, meta_str,
};
use crate::registry::{RegistryError, Store, StoreSet};
use futures::StreamExt;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a failed step or watch waits before it is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// How often the stores are checked for new resources (custom resources come and go).
const RESCAN: Duration = Duration::from_secs(2);

/// One owner reference.
#[derive(Debug, Clone)]
struct Owner {
    uid: String,
    api_version: String,
    kind: String,
    name: String,
    block: bool,
}

/// What the collector knows of one object.
#[derive(Clone)]
struct Node {
    store: Arc<Store>,
    namespace: Option<String>,
    name: String,
    owners: Vec<Owner>,
    deleting: bool,
    finalizers: Vec<String>,
}

impl Node {
    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

/// The graph of owner references.
#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    /// Records `obj` of `store`; returns the uids to attend.
    fn upsert(&mut self, store: &Arc<Store>, obj: &Value) -> Vec<String> {
        let Some(uid) = meta_str(obj, "uid").map(str::to_string) else {
            return Vec::new();
        };
        let owners: Vec<Owner> = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| {
                Some(Owner {
                    uid: o["uid"].as_str()?.to_string(),
                    api_version: o["apiVersion"].as_str().unwrap_or_default().to_string(),
                    kind: o["kind"].as_str().unwrap_or_default().to_string(),
                    name: o["name"].as_str().unwrap_or_default().to_string(),
                    block: o["blockOwnerDeletion"] == true,
                })
            })
            .collect();
        let node = Node {
            store: store.clone(),
            namespace: meta_str(obj, "namespace").map(str::to_string),
            name: meta_str(obj, "name").unwrap_or_default().to_string(),
            deleting: obj.pointer("/metadata/deletionTimestamp").is_some(),
            finalizers: obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(String::from))
                .collect(),
            owners,
        };
        if let Some(old) = self.nodes.get(&uid) {
            for o in &old.owners {
                if let Some(d) = self.dependents.get_mut(&o.uid) {
                    d.remove(&uid);
                }
            }
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let mut attend: Vec<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
        attend.push(uid.clone());
        attend.extend(self.dependents.get(&uid).into_iter().flatten().cloned());
        self.nodes.insert(uid, node);
        attend
    }

    /// Forgets the object `uid`; returns the uids to attend (its owners and dependents).
    fn remove(&mut self, uid: &str) -> Vec<String> {
        let Some(old) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        for o in &old.owners {
            if let Some(d) = self.dependents.get_mut(&o.uid) {
                d.remove(uid);
            }
        }
        let mut attend: Vec<String> = old.owners.iter().map(|o| o.uid.clone()).collect();
        attend.extend(self.dependents.get(uid).into_iter().flatten().cloned());
        attend
    }

    fn dependents_of(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }
}

/// The collector: the graph, the stores owners are looked up in, and the queue.
struct Collector {
    graph: Mutex<Graph>,
    sets: Vec<StoreSet>,
    queue: mpsc::UnboundedSender<String>,
    queued: Mutex<HashSet<String>>,
}

/// Runs the collector over every resource of `sets` until the process ends.
pub async fn run(sets: Vec<StoreSet>) {
    let (queue, mut work) = mpsc::unbounded_channel();
    let gc = Arc::new(Collector {
        graph: Mutex::default(),
        sets,
        queue,
        queued: Mutex::default(),
    });
    let watcher = gc.clone();
    tokio::spawn(async move {
        let mut watched = HashSet::new();
        loop {
            for store in watcher.sets.iter().flat_map(StoreSet::per_resource) {
                let info = store.info();
                if watched.insert((info.group.to_string(), info.resource.to_string())) {
                    tokio::spawn(follow(watcher.clone(), store));
                }
            }
            tokio::time::sleep(RESCAN).await;
        }
    });
    while let Some(uid) = work.recv().await {
        gc.queued.lock().expect("poisoned").remove(&uid);
        if let Err(e) = gc.attend(&uid).await {
            tracing::debug!(uid, error = %e, "garbage collector: retrying");
            let gc = gc.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RETRY).await;
                gc.enqueue([uid]);
            });
        }
    }
}

/// Lists `store` into the graph, then follows its watch; again after a failure.
async fn follow(gc: Arc<Collector>, store: Arc<Store>) {
    loop {
        let page = match store.list(None, &ListParams::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::debug!(resource = %store.info().resource, error = %e, "garbage collector: list failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let attend: Vec<String> = {
            let mut graph = gc.graph.lock().expect("poisoned");
            page.items
                .iter()
                .flat_map(|obj| graph.upsert(&store, obj))
                .collect()
        };
        gc.enqueue(attend);
        let params = WatchParams {
            list: ListParams {
                resource_version: Some(page.resource_version.clone()),
                ..ListParams::default()
            },
            ..WatchParams::default()
        };
        if let Ok(mut events) = store.watch(None, params).await {
            while let Some(ev) = events.next().await {
                let attend = {
                    let mut graph = gc.graph.lock().expect("poisoned");
                    match ev.kind {
                        "ADDED" | "MODIFIED" => graph.upsert(&store, &ev.object),
                        "DELETED" => meta_str(&ev.object, "uid")
                            .map(|uid| graph.remove(uid))
                            .unwrap_or_default(),
                        _ => Vec::new(),
                    }
                };
                gc.enqueue(attend);
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// What became of an owner an object refers to.
enum Liveness {
    /// It exists with the uid referred to; `waiting` when it waits for its dependents'
    /// deletion (foreground).
    Alive { waiting: bool },
    /// It is gone, or another object of that name has taken its place.
    Gone,
}

impl Collector {
    fn enqueue(&self, uids: impl IntoIterator<Item = String>) {
        let mut queued = self.queued.lock().expect("poisoned");
        for uid in uids {
            if queued.insert(uid.clone()) {
                let _ = self.queue.send(uid);
            }
        }
    }

    /// The store serving `kind` of `api_version`'s group.
    fn store_of_kind(&self, api_version: &str, kind: &str) -> Option<Arc<Store>> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.sets
            .iter()
            .flat_map(StoreSet::per_resource)
            .find(|s| s.info().group == group && s.info().kind == kind)
    }

    /// Whether the owner `o` of an object in `namespace` still exists, and whether it waits
    /// for its dependents' deletion (foreground).
    async fn liveness(&self, o: &Owner, namespace: Option<&str>) -> Result<Liveness, String> {
        if let Some(n) = self.graph.lock().expect("poisoned").nodes.get(&o.uid) {
            return Ok(Liveness::Alive {
                waiting: n.deleting && n.has_finalizer(FINALIZER_FOREGROUND),
            });
        }
        let Some(store) = self.store_of_kind(&o.api_version, &o.kind) else {
            // Upstream treats a reference to a kind no server serves as gone.
            return Ok(Liveness::Gone);
        };
        let ns = store.info().namespaced.then_some(namespace).flatten();
        match store.get(ns, &o.name).await {
            Ok(obj) if meta_str(&obj, "uid") == Some(&o.uid) => {
                let waiting = obj.pointer("/metadata/deletionTimestamp").is_some()
                    && obj
                        .pointer("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .is_some_and(|f| f.iter().any(|f| f == FINALIZER_FOREGROUND));
                Ok(Liveness::Alive { waiting })
            }
            Ok(_) | Err(RegistryError::NotFound { .. }) => Ok(Liveness::Gone),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Does what the object `uid` needs.
    async fn attend(&self, uid: &str) -> Result<(), String> {
        let Some(node) = self.graph.lock().expect("poisoned").nodes.get(uid).cloned() else {
            return Ok(());
        };
        if node.deleting && node.has_finalizer(FINALIZER_ORPHAN) {
            return self.orphan_dependents(uid, &node).await;
        }
        if node.deleting && node.has_finalizer(FINALIZER_FOREGROUND) {
            return self.delete_dependents(uid, &node).await;
        }
        if node.deleting || node.owners.is_empty() {
            return Ok(());
        }
        let (mut solid, mut dangling, mut waiting) = (0, Vec::new(), 0);
        for o in &node.owners {
            match self.liveness(o, node.namespace.as_deref()).await? {
                Liveness::Alive { waiting: true } => waiting += 1,
                Liveness::Alive { waiting: false } => solid += 1,
                Liveness::Gone => dangling.push(o.uid.clone()),
            }
        }
        if solid == 0 {
            // Owners waiting on their dependents see this one's own dependents go first.
            let has_dependents = !self
                .graph
                .lock()
                .expect("poisoned")
                .dependents_of(uid)
                .is_empty();
            let policy = if waiting > 0 && has_dependents {
                "Foreground"
            } else {
                "Background"
            };
            tracing::debug!(uid, name = node.name, policy, "garbage collector: deleting");
            return self.delete(uid, &node, policy).await;
        }
        if !dangling.is_empty() {
            return self
                .update(&node, |obj| {
                    remove_owner_refs(obj, &dangling);
                })
                .await;
        }
        Ok(())
    }

    /// Foreground: deletes every dependent, and removes the finalizer once no blocking one is
    /// left.
    async fn delete_dependents(&self, uid: &str, node: &Node) -> Result<(), String> {
        let dependents = self.graph.lock().expect("poisoned").dependents_of(uid);
        let mut blocking = 0;
        for (dep_uid, dep) in &dependents {
            if dep.owners.iter().any(|o| o.uid == uid && o.block) {
                blocking += 1;
            }
            if !dep.deleting {
                self.enqueue([dep_uid.clone()]);
            }
        }
        if blocking == 0 {
            return self
                .update(node, |obj| remove_finalizer(obj, FINALIZER_FOREGROUND))
                .await;
        }
        Ok(())
    }

    /// Orphan: removes the reference to `uid` from every dependent, then the finalizer.
    async fn orphan_dependents(&self, uid: &str, node: &Node) -> Result<(), String> {
        let dependents = self.graph.lock().expect("poisoned").dependents_of(uid);
        let owner = [uid.to_string()];
        for (_, dep) in &dependents {
            self.update(dep, |obj| remove_owner_refs(obj, &owner))
                .await?;
        }
        self.update(node, |obj| remove_finalizer(obj, FINALIZER_ORPHAN))
            .await
    }

    async fn delete(&self, uid: &str, node: &Node, policy: &str) -> Result<(), String> {
        let params = DeleteParams {
            precondition_uid: Some(uid.to_string()),
            propagation_policy: Some(policy.into()),
            ..DeleteParams::default()
        };
        match node
            .store
            .delete(node.namespace.as_deref(), &node.name, &params)
            .await
        {
            Ok(_) | Err(RegistryError::NotFound { .. }) | Err(RegistryError::Conflict { .. }) => {
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Changes the stored object of `node` with `change`.
    async fn update(&self, node: &Node, change: impl Fn(&mut Value)) -> Result<(), String> {
        let result = node
            .store
            .update_with(
                node.namespace.as_deref(),
                &node.name,
                UpdateTarget::Main,
                WriteOptions::default(),
                |current| {
                    let mut next = current.clone();
                    change(&mut next);
                    Ok::<_, RegistryError>(next)
                },
            )
            .await;
        match result {
            Ok(_) | Err(RegistryError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Removes the references to `uids`; no references left is no field, as Go's omitempty writes it.
fn remove_owner_refs(obj: &mut Value, uids: &[String]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| !uids.iter().any(|u| r["uid"] == u.as_str()));
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
}

fn remove_finalizer(obj: &mut Value, finalizer: &str) {
    if let Some(Value::Array(f)) = obj.pointer_mut("/metadata/finalizers") {
        f.retain(|v| v.as_str() != Some(finalizer));
    }
}
