//! RBAC, as upstream's `plugin/pkg/auth/authorizer/rbac`: Roles, ClusterRoles and their
//! bindings, kept in memory from the stores by list-then-watch, indexed by subject (user name,
//! group, service-account user) so that a request looks up only the bindings naming its user or
//! groups, never scans them all. Also the bootstrap policy reconciled at start, ClusterRole
//! aggregation, and the escalation checks of writes to RBAC objects.

pub mod bootstrap;
pub mod escalation;
pub mod rules;

use super::{Attributes, Authorization, Authorize, Decision};
use crate::auth::UserInfo;
use crate::registry::store::{ListParams, WatchParams, meta_str};
use crate::registry::{Store, StoreFactory};
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How long a failed list or watch waits before it starts again.
const RETRY: Duration = Duration::from_millis(500);

/// The four RBAC stores.
#[derive(Clone)]
pub struct RbacStores {
    /// ClusterRoles.
    pub cluster_roles: Arc<Store>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Arc<Store>,
    /// Roles.
    pub roles: Arc<Store>,
    /// RoleBindings.
    pub role_bindings: Arc<Store>,
}

impl RbacStores {
    /// The stores of `storage`.
    pub fn new(storage: &dyn StoreFactory) -> Self {
        let store = |resource: &str| storage.builtin_store("rbac.authorization.k8s.io", resource);
        Self {
            cluster_roles: store("clusterroles"),
            cluster_role_bindings: store("clusterrolebindings"),
            roles: store("roles"),
            role_bindings: store("rolebindings"),
        }
    }
}

/// A binding as the index keeps it: what it grants and to whom.
#[derive(Debug, Clone)]
struct Binding {
    role_ref: RoleRef,
    keys: Vec<String>,
}

/// The in-memory policy.
#[derive(Default)]
struct Index {
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_bindings: HashMap<String, Binding>,
    role_bindings: HashMap<(String, String), Binding>,
    /// Subject key → names of the ClusterRoleBindings naming it.
    cluster_by_subject: HashMap<String, BTreeSet<String>>,
    /// (namespace, subject key) → names of that namespace's RoleBindings naming it.
    namespaced_by_subject: HashMap<(String, String), BTreeSet<String>>,
}

/// The index keys of a subject: users and service accounts by user name, groups by group.
fn subject_key(subject: &Subject, binding_namespace: &str) -> Option<String> {
    match subject.kind.as_str() {
        "User" => Some(format!("u:{}", subject.name)),
        "Group" => Some(format!("g:{}", subject.name)),
        "ServiceAccount" => {
            let ns = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            Some(format!(
                "u:{}",
                crate::auth::serviceaccount::username(ns, &subject.name)
            ))
        }
        _ => None,
    }
}

/// The index keys a user is found under.
fn user_keys(user: &UserInfo) -> Vec<String> {
    std::iter::once(format!("u:{}", user.name))
        .chain(user.groups.iter().map(|g| format!("g:{g}")))
        .collect()
}

fn binding_of(obj: &Value, namespace: &str) -> Option<Binding> {
    let role_ref: RoleRef = serde_json::from_value(obj.get("roleRef")?.clone()).ok()?;
    let subjects: Vec<Subject> = obj
        .get("subjects")
        .cloned()
        .map(serde_json::from_value)
        .and_then(Result::ok)
        .unwrap_or_default();
    let keys = subjects
        .iter()
        .filter_map(|s| subject_key(s, namespace))
        .collect();
    Some(Binding { role_ref, keys })
}

fn rules_of(obj: &Value) -> Arc<Vec<PolicyRule>> {
    Arc::new(
        obj.get("rules")
            .cloned()
            .map(serde_json::from_value)
            .and_then(Result::ok)
            .unwrap_or_default(),
    )
}

/// Which of the four kinds an informer feeds.
#[derive(Clone, Copy)]
enum Kind {
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
}

impl Index {
    fn apply(&mut self, kind: Kind, event: &str, obj: &Value) {
        let name = meta_str(obj, "name").unwrap_or("").to_string();
        let ns = meta_str(obj, "namespace").unwrap_or("").to_string();
        let deleted = event == "DELETED";
        match kind {
            Kind::ClusterRole => {
                if deleted {
                    self.cluster_roles.remove(&name);
                } else {
                    self.cluster_roles.insert(name, rules_of(obj));
                }
            }
            Kind::Role => {
                if deleted {
                    self.roles.remove(&(ns, name));
                } else {
                    self.roles.insert((ns, name), rules_of(obj));
                }
            }
            Kind::ClusterRoleBinding => {
                if let Some(old) = self.cluster_bindings.remove(&name) {
                    for key in old.keys {
                        if let Some(set) = self.cluster_by_subject.get_mut(&key) {
                            set.remove(&name);
                        }
                    }
                }
                if let Some(binding) = binding_of(obj, "").filter(|_| !deleted) {
                    for key in &binding.keys {
                        self.cluster_by_subject
                            .entry(key.clone())
                            .or_default()
                            .insert(name.clone());
                    }
                    self.cluster_bindings.insert(name, binding);
                }
            }
            Kind::RoleBinding => {
                let id = (ns.clone(), name.clone());
                if let Some(old) = self.role_bindings.remove(&id) {
                    for key in old.keys {
                        if let Some(set) = self.namespaced_by_subject.get_mut(&(ns.clone(), key)) {
                            set.remove(&name);
                        }
                    }
                }
                if let Some(binding) = binding_of(obj, &ns).filter(|_| !deleted) {
                    for key in &binding.keys {
                        self.namespaced_by_subject
                            .entry((ns.clone(), key.clone()))
                            .or_default()
                            .insert(name.clone());
                    }
                    self.role_bindings.insert(id, binding);
                }
            }
        }
    }

    /// The rules of `role_ref` as bound in `namespace`, or upstream's not-found error.
    fn role_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Arc<Vec<PolicyRule>>, String> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    )
                }),
            "Role" => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "role.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    )
                }),
            other => Err(format!("unknown role kind {other:?}")),
        }
    }

    /// Upstream's `VisitRulesFor`: the rules of every binding naming `user`, cluster-wide
    /// first, then in `namespace`; `visit` returns true to stop.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        visit: &mut dyn FnMut(&PolicyRule) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let keys = user_keys(user);
        let mut cluster: BTreeSet<&String> = BTreeSet::new();
        for key in &keys {
            cluster.extend(self.cluster_by_subject.get(key).into_iter().flatten());
        }
        let cluster = cluster
            .into_iter()
            .filter_map(|name| self.cluster_bindings.get(name))
            .map(|b| (b, ""));
        let mut local: BTreeSet<&String> = BTreeSet::new();
        if !namespace.is_empty() {
            for key in keys {
                local.extend(
                    self.namespaced_by_subject
                        .get(&(namespace.to_string(), key))
                        .into_iter()
                        .flatten(),
                );
            }
        }
        let local = local
            .into_iter()
            .filter_map(|name| {
                self.role_bindings
                    .get(&(namespace.to_string(), name.clone()))
            })
            .map(|b| (b, namespace));
        for (binding, ns) in cluster.chain(local) {
            match self.role_rules(&binding.role_ref, ns) {
                Ok(rules) => {
                    if rules.iter().any(&mut *visit) {
                        return errors;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}

/// The RBAC authorizer.
pub struct Rbac {
    index: Arc<RwLock<Index>>,
    synced: watch::Receiver<bool>,
}

/// Upstream's aggregate error text: one message alone, several in brackets.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

impl Rbac {
    /// Starts feeding the index from `stores`; decisions wait until it has synced.
    /// (Aggregation is a controller's job, kube-controller-manager's upstream: see
    /// [`bootstrap::aggregate_forever`].)
    pub fn start(stores: RbacStores) -> Self {
        let index: Arc<RwLock<Index>> = Arc::default();
        let (synced_tx, synced) = watch::channel(false);
        let feeds = [
            (stores.cluster_roles.clone(), Kind::ClusterRole),
            (
                stores.cluster_role_bindings.clone(),
                Kind::ClusterRoleBinding,
            ),
            (stores.roles.clone(), Kind::Role),
            (stores.role_bindings.clone(), Kind::RoleBinding),
        ];
        let (count_tx, mut count_rx) = tokio::sync::mpsc::channel::<()>(4);
        for (store, kind) in feeds {
            tokio::spawn(inform(store, kind, index.clone(), count_tx.clone()));
        }
        tokio::spawn(async move {
            for _ in 0..4 {
                if count_rx.recv().await.is_none() {
                    return;
                }
            }
            let _ = synced_tx.send(true);
            // Keep the sender, so waiters see a synced index and never a closed channel.
            std::future::pending::<()>().await;
        });
        Self { index, synced }
    }

    /// Waits until the index holds everything stored when it started.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Every rule that applies to `user` in `namespace` (cluster-wide rules included), and
    /// the errors of bindings whose role is missing: upstream's `RulesFor`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut rules = Vec::new();
        let errors = index.visit(user, namespace, &mut |r| {
            rules.push(r.clone());
            false
        });
        (rules, errors)
    }
}

#[async_trait::async_trait]
impl Authorize for Rbac {
    async fn authorize(&self, a: &Attributes<'_>) -> Authorization {
        if !*self.synced.borrow() {
            self.wait_synced().await;
        }
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut allowed = false;
        let errors = index.visit(a.user, a.namespace, &mut |rule| {
            allowed = rules::allows(a, rule);
            allowed
        });
        if allowed {
            Authorization::of(Decision::Allow)
        } else if errors.is_empty() {
            Authorization::of(Decision::NoOpinion)
        } else {
            Authorization::because(Decision::NoOpinion, format!("RBAC: {}", aggregate(&errors)))
        }
    }
}

/// Lists `store` into the index, says so on `synced`, then follows its watch; lists again
/// when the watch ends (an expired resourceVersion, a restarted backend).
async fn inform(
    store: Arc<Store>,
    kind: Kind,
    index: Arc<RwLock<Index>>,
    synced: tokio::sync::mpsc::Sender<()>,
) {
    let mut first = true;
    loop {
        let page = match store.list(None, &ListParams::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, resource = %store.info().resource, "RBAC: listing failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        {
            let mut index = index.write().unwrap_or_else(|e| e.into_inner());
            // A re-list replaces what this kind held.
            let stale: Vec<Value> = match kind {
                Kind::ClusterRole => index
                    .cluster_roles
                    .keys()
                    .map(|n| serde_json::json!({"metadata": {"name": n}}))
                    .collect(),
                Kind::Role => index
                    .roles
                    .keys()
                    .map(|(ns, n)| serde_json::json!({"metadata": {"name": n, "namespace": ns}}))
                    .collect(),
                Kind::ClusterRoleBinding => index
                    .cluster_bindings
                    .keys()
                    .map(|n| serde_json::json!({"metadata": {"name": n}}))
                    .collect(),
                Kind::RoleBinding => index
                    .role_bindings
                    .keys()
                    .map(|(ns, n)| serde_json::json!({"metadata": {"name": n, "namespace": ns}}))
                    .collect(),
            };
            for obj in &stale {
                index.apply(kind, "DELETED", obj);
            }
            for obj in &page.items {
                index.apply(kind, "ADDED", obj);
            }
        }
        if std::mem::take(&mut first) {
            let _ = synced.send(()).await;
        }
        let params = WatchParams {
            list: ListParams {
                resource_version: Some(page.resource_version.clone()),
                ..ListParams::default()
            },
            ..WatchParams::default()
        };
        match store.watch(None, params).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    if matches!(ev.kind, "ADDED" | "MODIFIED" | "DELETED") {
                        let mut index = index.write().unwrap_or_else(|e| e.into_inner());
                        index.apply(kind, ev.kind, &ev.object);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, resource = %store.info().resource, "RBAC: watch failed")
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}
