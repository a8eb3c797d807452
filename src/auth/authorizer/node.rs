//! The Node authorizer, as upstream's `plugin/pkg/auth/authorizer/node` with
//! AuthorizeNodeWithSelectors (on by default since 1.32): a kubelet (`system:node:<name>` in
//! `system:nodes`) reads the Secrets and ConfigMaps (get, or list/watch by name), PVCs, PVs and
//! VolumeAttachments, and requests tokens for the ServiceAccounts, of the pods bound to its node
//! and nothing else of those kinds; it reads its own pods (by name or a `spec.nodeName` selector),
//! its own Node, CSINode and Lease; everything else it may do is upstream's node rules (the
//! `system:node` ClusterRole). The pods are followed by list-then-watch and indexed by node, so a
//! decision looks only at the node's own pods.

use super::rbac::rules::allows;
use super::{Attributes, Authorization, Authorize, Decision};
use crate::registry::store::{ListParams, WatchParams, meta_str};
use crate::registry::{Store, StoreFactory};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The group every kubelet is in.
pub const NODES_GROUP: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";

/// What one pod bound to a node lets it read.
#[derive(Debug, Default, Clone)]
pub(crate) struct PodRefs {
    namespace: String,
    /// The Secrets it names (upstream's `VisitPodSecretNames`).
    pub(crate) secrets: BTreeSet<String>,
    /// The ConfigMaps it names (upstream's `VisitPodConfigmapNames`).
    pub(crate) configmaps: BTreeSet<String>,
    claims: BTreeSet<String>,
    service_account: String,
}

/// What `pod` refers to: the objects a node running it may read.
pub(crate) fn pod_references(pod: &Pod) -> PodRefs {
    let mut r = PodRefs {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        ..PodRefs::default()
    };
    let Some(spec) = &pod.spec else { return r };
    r.service_account = spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".into());
    for s in spec.image_pull_secrets.iter().flatten() {
        r.secrets.insert(s.name.clone());
    }
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    for v in spec.volumes.iter().flatten() {
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            r.secrets.insert(s);
        }
        if let Some(c) = &v.config_map {
            r.configmaps.insert(c.name.clone());
        }
        if let Some(c) = &v.persistent_volume_claim {
            r.claims.insert(c.claim_name.clone());
        }
        if v.ephemeral.is_some() {
            r.claims.insert(format!("{pod_name}-{}", v.name));
        }
        for p in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &p.secret {
                r.secrets.insert(s.name.clone());
            }
            if let Some(c) = &p.config_map {
                r.configmaps.insert(c.name.clone());
            }
        }
        let secret_refs = [
            v.csi
                .as_ref()
                .and_then(|c| c.node_publish_secret_ref.as_ref())
                .map(|s| s.name.clone()),
            v.rbd
                .as_ref()
                .and_then(|c| c.secret_ref.as_ref())
                .map(|s| s.name.clone()),
            v.cephfs
                .as_ref()
                .and_then(|c| c.secret_ref.as_ref())
                .map(|s| s.name.clone()),
            v.iscsi
                .as_ref()
                .and_then(|c| c.secret_ref.as_ref())
                .map(|s| s.name.clone()),
            v.flex_volume
                .as_ref()
                .and_then(|c| c.secret_ref.as_ref())
                .map(|s| s.name.clone()),
            v.azure_file.as_ref().map(|c| c.secret_name.clone()),
        ];
        r.secrets.extend(secret_refs.into_iter().flatten());
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for e in c.env_from.iter().flatten() {
            if let Some(s) = &e.secret_ref {
                r.secrets.insert(s.name.clone());
            }
            if let Some(m) = &e.config_map_ref {
                r.configmaps.insert(m.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            let from = e.value_from.as_ref();
            if let Some(s) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                r.secrets.insert(s.name.clone());
            }
            if let Some(m) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                r.configmaps.insert(m.name.clone());
            }
        }
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        for e in c.env_from.iter().flatten() {
            if let Some(s) = &e.secret_ref {
                r.secrets.insert(s.name.clone());
            }
            if let Some(m) = &e.config_map_ref {
                r.configmaps.insert(m.name.clone());
            }
        }
    }
    r
}

/// Pods by node, then by namespace/name.
type Graph = HashMap<String, HashMap<(String, String), PodRefs>>;

/// The Node authorizer.
pub struct NodeAuthorizer {
    graph: Arc<RwLock<Graph>>,
    /// Where a pod's claims' volumes are read, for PersistentVolume requests.
    claims: Arc<Store>,
    /// Where VolumeAttachments are read: one is the node's when it names the node.
    volume_attachments: Arc<Store>,
    /// The `system:node` ClusterRole's rules: everything else a node may do.
    rules: Vec<PolicyRule>,
    synced: watch::Receiver<bool>,
}

impl NodeAuthorizer {
    /// Starts following the pods of `storage`.
    pub fn start(storage: &dyn StoreFactory) -> Self {
        let graph: Arc<RwLock<Graph>> = Arc::default();
        let (tx, synced) = watch::channel(false);
        tokio::spawn(follow_pods(
            storage.builtin_store("", "pods"),
            graph.clone(),
            tx,
        ));
        Self {
            graph,
            claims: storage.builtin_store("", "persistentvolumeclaims"),
            volume_attachments: storage.builtin_store("storage.k8s.io", "volumeattachments"),
            rules: super::rbac::bootstrap::cluster_role_rules("system:node"),
            synced,
        }
    }

    /// Whether a pod on `node` refers to the object `pick` finds in its references.
    fn related(&self, node: &str, namespace: &str, pick: impl Fn(&PodRefs) -> bool) -> bool {
        let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
        graph
            .get(node)
            .into_iter()
            .flat_map(|pods| pods.values())
            .any(|r| r.namespace == namespace && pick(r))
    }

    /// Whether persistent volume `pv` is the volume of a claim of a pod on `node`.
    async fn has_volume(&self, node: &str, pv: &str) -> bool {
        let claims: Vec<(String, String)> = {
            let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
            graph
                .get(node)
                .into_iter()
                .flat_map(|pods| pods.values())
                .flat_map(|r| r.claims.iter().map(|c| (r.namespace.clone(), c.clone())))
                .collect()
        };
        for (ns, claim) in claims {
            if let Ok(pvc) = self.claims.get(Some(&ns), &claim).await
                && pvc.pointer("/spec/volumeName").and_then(Value::as_str) == Some(pv)
            {
                return true;
            }
        }
        false
    }
}

fn no_opinion(reason: impl Into<String>) -> Authorization {
    Authorization::because(Decision::NoOpinion, reason)
}

fn allow() -> Authorization {
    Authorization::of(Decision::Allow)
}

/// Whether the raw field selector `selector` requires `field` to equal `value`.
fn selects(selector: &str, field: &str, value: &str) -> bool {
    selector.split(',').any(|term| {
        let term = term.trim();
        term.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')))
            .is_some_and(|v| v == value)
    })
}

impl NodeAuthorizer {
    /// Upstream's `authorize`: the named object must be related to `node`.
    fn related_object(&self, node: &str, a: &Attributes<'_>, related: bool) -> Authorization {
        if a.name.is_empty() {
            no_opinion("No Object name found")
        } else if related {
            allow()
        } else {
            no_opinion(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    }

    /// Whether the pod `namespace/name` is bound to `node`.
    fn has_pod(&self, node: &str, namespace: &str, name: &str) -> bool {
        let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
        graph
            .get(node)
            .is_some_and(|pods| pods.contains_key(&(namespace.to_string(), name.to_string())))
    }

    /// Whether the stored object `name` of `store` names `node` in `spec.nodeName`.
    async fn names_node(&self, store: &Store, name: &str, node: &str) -> bool {
        store
            .get(None, name)
            .await
            .is_ok_and(|obj| obj.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
    }

    /// Secrets and ConfigMaps: get, list and watch of single objects (a list or watch names one
    /// with a `metadata.name` field selector) its pods use.
    fn read_namespaced(&self, node: &str, a: &Attributes<'_>) -> Authorization {
        if !matches!(a.verb, "get" | "list" | "watch") {
            return no_opinion("can only read resources of this type");
        }
        if !a.subresource.is_empty() {
            return no_opinion("cannot read subresource");
        }
        if a.namespace.is_empty() {
            return no_opinion("can only read namespaced object of this type");
        }
        let secrets = a.resource == "secrets";
        let related = self.related(node, a.namespace, |r| {
            if secrets {
                r.secrets.contains(a.name)
            } else {
                r.configmaps.contains(a.name)
            }
        });
        self.related_object(node, a, related)
    }

    /// Upstream's `authorizeGet`: only `get` of the main resource.
    fn only_get(a: &Attributes<'_>) -> Option<Authorization> {
        if a.verb != "get" {
            Some(no_opinion("can only get individual resources of this type"))
        } else if !a.subresource.is_empty() {
            Some(no_opinion("cannot get subresource"))
        } else {
            None
        }
    }

    /// Its own Node: created, updated and read by name (before it exists, too); its status.
    fn node(&self, node: &str, a: &Attributes<'_>) -> Authorization {
        match (a.subresource, a.verb) {
            ("", "create" | "update" | "patch") | ("status", "update" | "patch") => allow(),
            ("", "get" | "list" | "watch") => match a.name {
                n if n == node => allow(),
                "" => no_opinion(format!(
                    "node '{node}' cannot read all nodes, only its own Node object"
                )),
                other => no_opinion(format!(
                    "node '{node}' cannot read '{other}', only its own Node object"
                )),
            },
            _ => no_opinion(""),
        }
    }

    /// Pods: its own by name, lists and watches selecting `spec.nodeName` of its own, mirror
    /// pods created and deleted, its pods' status and evictions (NodeRestriction narrows those).
    fn pod(&self, node: &str, a: &Attributes<'_>) -> Authorization {
        match (a.subresource, a.verb) {
            ("", "get") => self.related_object(node, a, self.has_pod(node, a.namespace, a.name)),
            ("", "list" | "watch") => {
                if selects(a.field_selector, "spec.nodeName", node) {
                    allow()
                } else if !a.name.is_empty() {
                    self.related_object(node, a, self.has_pod(node, a.namespace, a.name))
                } else {
                    no_opinion("can only list/watch pods with spec.nodeName field selector")
                }
            }
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                allow()
            }
            _ => no_opinion(""),
        }
    }

    /// Its own Lease in kube-node-lease, or its own CSINode (create is checked by admission,
    /// as the name is not known yet).
    fn own_named(node: &str, a: &Attributes<'_>, kind: &str) -> Authorization {
        if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
            return no_opinion(format!(
                "can only get, create, update, patch, or delete a {kind}"
            ));
        }
        if kind == "CSINode" && !a.subresource.is_empty() {
            return no_opinion("cannot authorize CSINode subresources");
        }
        if kind == "node lease" && a.namespace != "kube-node-lease" {
            return no_opinion(
                "can only access leases in the \"kube-node-lease\" system namespace",
            );
        }
        if a.verb != "create" && a.name != node {
            let what = if kind == "CSINode" {
                "CSINode"
            } else {
                "node lease"
            };
            return no_opinion(format!(
                "can only access {what} with the same name as the requesting node"
            ));
        }
        allow()
    }
}

#[async_trait::async_trait]
impl Authorize for NodeAuthorizer {
    async fn authorize(&self, a: &Attributes<'_>) -> Authorization {
        let is_node = a.user.groups.iter().any(|g| g == NODES_GROUP);
        let Some(node) = a.user.name.strip_prefix(NODE_PREFIX).filter(|_| is_node) else {
            return Authorization::of(Decision::NoOpinion);
        };
        if node.is_empty() {
            return no_opinion(format!("unknown node for user {:?}", a.user.name));
        }
        if !*self.synced.borrow() {
            let mut synced = self.synced.clone();
            let _ = synced.wait_for(|s| *s).await;
        }
        if a.resource_request {
            match (a.api_group, a.resource) {
                ("", "secrets" | "configmaps") => return self.read_namespaced(node, a),
                ("", "persistentvolumeclaims") => {
                    if a.subresource == "status" {
                        if !matches!(a.verb, "update" | "patch") {
                            return no_opinion("can only get/update/patch this type");
                        }
                    } else if let Some(refused) = Self::only_get(a) {
                        return refused;
                    }
                    let related = self.related(node, a.namespace, |r| r.claims.contains(a.name));
                    return self.related_object(node, a, related);
                }
                ("", "persistentvolumes") => {
                    if let Some(refused) = Self::only_get(a) {
                        return refused;
                    }
                    let related = self.has_volume(node, a.name).await;
                    return self.related_object(node, a, related);
                }
                ("storage.k8s.io", "volumeattachments") => {
                    if let Some(refused) = Self::only_get(a) {
                        return refused;
                    }
                    let related = self
                        .names_node(&self.volume_attachments, a.name, node)
                        .await;
                    return self.related_object(node, a, related);
                }
                ("", "serviceaccounts") => {
                    if a.verb != "create" || a.name.is_empty() {
                        return no_opinion(
                            "can only create tokens for individual service accounts",
                        );
                    }
                    if a.subresource != "token" {
                        return no_opinion("can only create token subresource of serviceaccount");
                    }
                    let related = self.related(node, a.namespace, |r| r.service_account == a.name);
                    return self.related_object(node, a, related);
                }
                ("coordination.k8s.io", "leases") => {
                    return Self::own_named(node, a, "node lease");
                }
                ("storage.k8s.io", "csinodes") => return Self::own_named(node, a, "CSINode"),
                ("", "nodes") => return self.node(node, a),
                ("", "pods") => return self.pod(node, a),
                _ => {}
            }
        }
        if self.rules.iter().any(|r| allows(a, r)) {
            allow()
        } else {
            Authorization::of(Decision::NoOpinion)
        }
    }
}

/// Keeps `graph` the pods of `pods` by node: a list, then its watch, again after a failure.
async fn follow_pods(pods: Arc<Store>, graph: Arc<RwLock<Graph>>, synced: watch::Sender<bool>) {
    let apply = |graph: &mut Graph, kind: &str, obj: &Value| {
        let key = (
            meta_str(obj, "namespace").unwrap_or("").to_string(),
            meta_str(obj, "name").unwrap_or("").to_string(),
        );
        for on_node in graph.values_mut() {
            on_node.remove(&key);
        }
        if kind == "DELETED" {
            return;
        }
        let Ok(pod) = serde_json::from_value::<Pod>(obj.clone()) else {
            return;
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if !node.is_empty() {
            graph
                .entry(node)
                .or_default()
                .insert(key, pod_references(&pod));
        }
    };
    loop {
        let page = match pods.list(None, &ListParams::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "node authorizer: listing pods failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        {
            let mut g = graph.write().unwrap_or_else(|e| e.into_inner());
            g.clear();
            for obj in &page.items {
                apply(&mut g, "ADDED", obj);
            }
        }
        let _ = synced.send(true);
        let params = WatchParams {
            list: ListParams {
                resource_version: Some(page.resource_version.clone()),
                ..ListParams::default()
            },
            ..WatchParams::default()
        };
        match pods.watch(None, params).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    if matches!(ev.kind, "ADDED" | "MODIFIED" | "DELETED") {
                        let mut g = graph.write().unwrap_or_else(|e| e.into_inner());
                        apply(&mut g, ev.kind, &ev.object);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "node authorizer: watching pods failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
