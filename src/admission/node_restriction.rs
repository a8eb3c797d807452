//! NodeRestriction, as upstream's `plugin/pkg/admission/noderestriction`: a kubelet
//! (`system:node:<name>` in `system:nodes`) may write only its own Node (never its taints, its
//! config source, or labels outside the kubelet's own set), only mirror pods bound to and owned
//! by itself that reference nothing else, only the status of its own pods (never their labels),
//! evict and delete only its own pods, update only the status fields of PVCs a kubelet manages,
//! request tokens only bound to its own pods, and touch only its own Lease, CSINode and node
//! certificate requests. The Node authorizer lets these requests through; this plugin checks
//! what only the object shows.

use super::{Attributes, Operation, Result, Validating};
use crate::auth::authorizer::node::{NODES_GROUP, pod_references};
use crate::registry::store::meta_str;
use crate::registry::{RegistryError, Store};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const MIRROR: &str = "kubernetes.io/config.mirror";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Signers whose requests from a kubelet must name the kubelet itself.
const NODE_SIGNERS: &[&str] = &[
    "kubernetes.io/kubelet-serving",
    "kubernetes.io/kube-apiserver-client-kubelet",
];
/// Labels a kubelet sets on its Node (`k8s.io/kubelet/pkg/apis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// Label namespaces (and their subdomains) a kubelet may use freely.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// The plugin: pods and nodes are read to check evictions, tokens and mirror pods' owners.
pub struct NodeRestriction {
    pods: Arc<Store>,
    nodes: Arc<Store>,
}

impl NodeRestriction {
    /// The plugin, reading `pods` and `nodes`.
    pub fn new(pods: Arc<Store>, nodes: Arc<Store>) -> Self {
        Self { pods, nodes }
    }
}

/// `a`'s request refused with `message`, as upstream's `admission.NewForbidden`.
fn forbidden(a: &Attributes<'_>, name: &str, message: impl Into<String>) -> RegistryError {
    RegistryError::Forbidden {
        resource: a.resource.group_resource(),
        name: name.to_string(),
        message: message.into(),
        cause: None,
    }
}

fn node_name_of(obj: Option<&Value>) -> Option<&str> {
    obj?.pointer("/spec/nodeName")?.as_str()
}

fn labels(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

/// The namespace part of a label key (before `/`), empty when it has none.
fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.ends_with(&format!(".{domain}"))
}

/// The keys whose values differ between `a` and `b` (added, removed or changed).
fn modified_labels(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> BTreeSet<String> {
    let differs = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.iter()
            .filter(|(k, v)| y.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect::<BTreeSet<_>>()
    };
    let mut keys = differs(a, b);
    keys.extend(differs(b, a));
    keys
}

/// The labels of `modified` a kubelet may not set: node-restriction ones, and kubernetes.io or
/// k8s.io ones outside the kubelet's own set.
fn forbidden_labels(modified: BTreeSet<String>) -> Vec<String> {
    modified
        .into_iter()
        .filter(|key| {
            let ns = label_namespace(key);
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            let kubelet = KUBELET_LABELS.contains(&key.as_str())
                || KUBELET_LABEL_NAMESPACES.iter().any(|d| in_namespace(ns, d));
            in_namespace(ns, "node-restriction.kubernetes.io") || (kubernetes && !kubelet)
        })
        .collect()
}

#[async_trait::async_trait]
impl Validating for NodeRestriction {
    fn handles(&self, op: Operation) -> bool {
        matches!(
            op,
            Operation::Create | Operation::Update | Operation::Delete
        )
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let is_node = a.user.groups.iter().any(|g| g == NODES_GROUP);
        let Some(node) = a.user.name.strip_prefix("system:node:").filter(|_| is_node) else {
            return Ok(());
        };
        if node.is_empty() {
            return Err(forbidden(
                a,
                a.name,
                format!("could not determine node from user {:?}", a.user.name),
            ));
        }
        match (&*a.resource.group, &*a.resource.resource) {
            ("", "pods") => match a.subresource {
                "" => self.pod(a, object, node).await,
                "status" => pod_status(a, object, node),
                "eviction" => self.eviction(a, object, node).await,
                other => Err(forbidden(
                    a,
                    a.name,
                    format!(
                        "unexpected pod subresource {other:?}, only 'status' and 'eviction' are allowed"
                    ),
                )),
            },
            ("", "nodes") => node_write(a, object, node),
            ("", "persistentvolumeclaims") => match a.subresource {
                "status" => pvc_status(a, object, node),
                _ => Err(forbidden(a, a.name, "may only update PVC status")),
            },
            ("", "serviceaccounts")
                if a.operation == Operation::Create && a.subresource == "token" =>
            {
                self.token(a, object, node).await
            }
            ("coordination.k8s.io", "leases") => {
                if a.namespace != Some(NODE_LEASE_NAMESPACE) {
                    return Err(forbidden(
                        a,
                        a.name,
                        format!(
                            "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
                        ),
                    ));
                }
                own_named(a, object, node, "node lease")
            }
            ("storage.k8s.io", "csinodes") => own_named(a, object, node, "CSINode"),
            ("certificates.k8s.io", "certificatesigningrequests")
                if a.operation == Operation::Create =>
            {
                node_csr(a, object, node)
            }
            _ => Ok(()),
        }
    }
}

impl NodeRestriction {
    /// Mirror pods only: created bound to and owned by the node, referencing nothing else;
    /// deleted only when bound to it.
    async fn pod(&self, a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
        match a.operation {
            Operation::Create => {
                let pod = object.unwrap_or(&Value::Null);
                let refuse = |m: String| Err(forbidden(a, a.name, m));
                if pod
                    .pointer("/metadata/annotations")
                    .and_then(|m| m.get(MIRROR))
                    .is_none()
                {
                    return refuse(format!(
                        "pod does not have {MIRROR:?} annotation, node {node:?} can only create mirror pods"
                    ));
                }
                if node_name_of(object) != Some(node) {
                    return refuse(format!(
                        "node {node:?} can only create pods with spec.nodeName set to itself"
                    ));
                }
                let owners = pod
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                match owners.as_slice() {
                    [] => {
                        return refuse(format!(
                            "node {node:?} can only create pods with an owner reference set to itself"
                        ));
                    }
                    [owner] => self.check_owner(a, owner, node).await?,
                    _ => {
                        return refuse(format!(
                            "node {node:?} can only create pods with a single owner reference set to itself"
                        ));
                    }
                }
                if pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                {
                    return refuse(format!(
                        "node {node:?} can not create pods that reference a service account"
                    ));
                }
                let typed: Option<k8s_openapi::api::core::v1::Pod> =
                    serde_json::from_value(pod.clone()).ok();
                if let Some(typed) = &typed {
                    let refs = pod_references(typed);
                    if !refs.secrets.is_empty() {
                        return refuse(format!(
                            "node {node:?} can not create pods that reference secrets"
                        ));
                    }
                    if !refs.configmaps.is_empty() {
                        return refuse(format!(
                            "node {node:?} can not create pods that reference configmaps"
                        ));
                    }
                }
                let volumes = pod
                    .pointer("/spec/volumes")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let trust_bundle = volumes.iter().any(|v| {
                    v.pointer("/projected/sources")
                        .and_then(Value::as_array)
                        .is_some_and(|s| s.iter().any(|s| s.get("clusterTrustBundle").is_some()))
                });
                if trust_bundle {
                    return refuse(format!(
                        "node {node:?} can not create pods that reference clustertrustbundles"
                    ));
                }
                if volumes
                    .iter()
                    .any(|v| v.get("persistentVolumeClaim").is_some())
                {
                    return refuse(format!(
                        "node {node:?} can not create pods that reference persistentvolumeclaims"
                    ));
                }
                Ok(())
            }
            Operation::Delete if node_name_of(a.old_object) != Some(node) => Err(forbidden(
                a,
                a.name,
                format!("node {node:?} can only delete pods with spec.nodeName set to itself"),
            )),
            Operation::Delete => Ok(()),
            op => Err(forbidden(
                a,
                a.name,
                format!(
                    "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                    op.as_str()
                ),
            )),
        }
    }

    /// A mirror pod's one owner: the node itself, as controller, not blocking deletion, with
    /// the node's uid.
    async fn check_owner(&self, a: &Attributes<'_>, owner: &Value, node: &str) -> Result {
        let refuse = |m: String| Err(forbidden(a, a.name, m));
        if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
            return refuse(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ));
        }
        if owner["controller"] != true {
            return refuse(format!(
                "node {node:?} can only create pods with a controller owner reference set to itself"
            ));
        }
        if owner["blockOwnerDeletion"] == true {
            return refuse(format!(
                "node {node:?} must not set blockOwnerDeletion on an owner reference"
            ));
        }
        let stored = self.nodes.get(None, node).await?;
        let uid = meta_str(&stored, "uid").unwrap_or_default();
        let owner_uid = owner["uid"].as_str().unwrap_or_default();
        if owner_uid != uid {
            return refuse(format!(
                "node {node} UID mismatch: expected {owner_uid} got {uid}"
            ));
        }
        Ok(())
    }

    /// Evictions of its own pods only.
    async fn eviction(&self, a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
        if a.operation != Operation::Create {
            return Err(forbidden(
                a,
                a.name,
                format!("unexpected operation {}", a.operation.as_str()),
            ));
        }
        let name = if a.name.is_empty() {
            object.and_then(|o| meta_str(o, "name")).unwrap_or_default()
        } else {
            a.name
        };
        if name.is_empty() {
            return Err(forbidden(
                a,
                a.name,
                "could not determine pod from request data",
            ));
        }
        let pod = self.pods.get(a.namespace, name).await?;
        if node_name_of(Some(&pod)) != Some(node) {
            return Err(forbidden(
                a,
                a.name,
                format!("node {node} can only evict pods with spec.nodeName set to itself"),
            ));
        }
        Ok(())
    }

    /// Tokens bound to one of its own pods, by uid.
    async fn token(&self, a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
        let bound = object
            .and_then(|o| o.pointer("/spec/boundObjectRef"))
            .filter(|r| {
                r["apiVersion"] == "v1"
                    && r["kind"] == "Pod"
                    && r["name"].as_str().is_some_and(|n| !n.is_empty())
            });
        let Some(bound) = bound else {
            return Err(forbidden(
                a,
                a.name,
                "node requested token not bound to a pod",
            ));
        };
        let uid = bound["uid"].as_str().unwrap_or_default();
        if uid.is_empty() {
            return Err(forbidden(
                a,
                a.name,
                "node requested token with a pod binding without a uid",
            ));
        }
        let pod = self
            .pods
            .get(a.namespace, bound["name"].as_str().unwrap_or_default())
            .await?;
        if meta_str(&pod, "uid") != Some(uid) {
            return Err(forbidden(
                a,
                a.name,
                format!(
                    "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        if node_name_of(Some(&pod)) != Some(node) {
            return Err(forbidden(
                a,
                a.name,
                "node requested token bound to a pod scheduled on a different node",
            ));
        }
        Ok(())
    }
}

/// Its own pods' status, never their labels or resource claim statuses.
fn pod_status(a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
    if a.operation != Operation::Update {
        return Err(forbidden(
            a,
            a.name,
            format!("unexpected operation {:?}", a.operation.as_str()),
        ));
    }
    if node_name_of(a.old_object) != Some(node) {
        return Err(forbidden(
            a,
            a.name,
            format!(
                "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
            ),
        ));
    }
    if labels(a.old_object) != labels(object) {
        return Err(forbidden(
            a,
            a.name,
            format!("node {node:?} cannot update labels through pod status"),
        ));
    }
    let claims = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/status/resourceClaimStatuses"))
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .map(|c| (c["name"].clone(), c["resourceClaimName"].clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    if claims(a.old_object) != claims(object) {
        return Err(forbidden(
            a,
            a.name,
            format!("node {node:?} cannot update resource claim statues"),
        ));
    }
    Ok(())
}

/// Its own Node: not created with a config source or foreign labels; not updated to a new
/// config source, other taints, or foreign labels.
fn node_write(a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
    let requested = if a.name.is_empty() {
        object.and_then(|o| meta_str(o, "name")).unwrap_or_default()
    } else {
        a.name
    };
    if requested != node {
        return Err(forbidden(
            a,
            requested,
            format!("node {node:?} is not allowed to modify node {requested:?}"),
        ));
    }
    let config_source = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/spec/configSource"))
            .filter(|v| !v.is_null())
            .cloned()
    };
    match a.operation {
        Operation::Create => {
            if config_source(object).is_some() {
                return Err(forbidden(
                    a,
                    requested,
                    format!(
                        "node {node:?} is not allowed to create pods with a non-nil configSource"
                    ),
                ));
            }
            let refused = forbidden_labels(modified_labels(&labels(object), &BTreeMap::new()));
            if !refused.is_empty() {
                return Err(forbidden(
                    a,
                    requested,
                    format!(
                        "node {node:?} is not allowed to set the following labels: {}",
                        refused.join(", ")
                    ),
                ));
            }
        }
        Operation::Update => {
            let new_source = config_source(object);
            if new_source.is_some() && new_source != config_source(a.old_object) {
                return Err(forbidden(
                    a,
                    requested,
                    format!(
                        "node {node:?} is not allowed to update configSource to a new non-nil configSource"
                    ),
                ));
            }
            let taints = |o: Option<&Value>| {
                o.and_then(|o| o.pointer("/spec/taints"))
                    .filter(|t| t.as_array().is_some_and(|t| !t.is_empty()))
                    .cloned()
            };
            if taints(object) != taints(a.old_object) {
                return Err(forbidden(
                    a,
                    requested,
                    format!("node {node:?} is not allowed to modify taints"),
                ));
            }
            let refused = forbidden_labels(modified_labels(&labels(object), &labels(a.old_object)));
            if !refused.is_empty() {
                return Err(forbidden(
                    a,
                    requested,
                    format!("is not allowed to modify labels: {}", refused.join(", ")),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// PVC status: only the capacity, conditions and allocated resources (what a kubelet's volume
/// expansion reports) may change.
fn pvc_status(a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
    if a.operation != Operation::Update {
        return Err(forbidden(
            a,
            a.name,
            format!("unexpected operation {:?}", a.operation.as_str()),
        ));
    }
    let comparable = |o: Option<&Value>| {
        let mut o = o.cloned().unwrap_or(Value::Null);
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
            for field in [
                "capacity",
                "conditions",
                "allocatedResourceStatuses",
                "allocatedResources",
            ] {
                status.remove(field);
            }
        }
        o
    };
    let (old, new) = (comparable(a.old_object), comparable(object));
    if old != new {
        let changed: Vec<String> = ["metadata", "spec", "status"]
            .into_iter()
            .filter(|k| old.get(*k) != new.get(*k))
            .map(String::from)
            .collect();
        return Err(forbidden(
            a,
            a.name,
            format!(
                "node {node:?} is not allowed to update fields other than status.quantity and status.conditions: {} changed",
                changed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Its own Lease or CSINode, named after it.
fn own_named(a: &Attributes<'_>, object: Option<&Value>, node: &str, kind: &str) -> Result {
    let name = if a.operation == Operation::Create {
        object.and_then(|o| meta_str(o, "name")).unwrap_or_default()
    } else {
        a.name
    };
    if name != node {
        return Err(forbidden(
            a,
            a.name,
            format!("can only access {kind} with the same name as the requesting node"),
        ));
    }
    Ok(())
}

/// A certificate request to a kubelet signer must be for the kubelet's own name.
fn node_csr(a: &Attributes<'_>, object: Option<&Value>, node: &str) -> Result {
    let spec = object.and_then(|o| o.get("spec"));
    let signer = spec
        .and_then(|s| s["signerName"].as_str())
        .unwrap_or_default();
    if !NODE_SIGNERS.contains(&signer) {
        return Ok(());
    }
    let request = spec.and_then(|s| s["request"].as_str()).unwrap_or_default();
    let common_name = common_name_of_request(request)
        .map_err(|e| forbidden(a, a.name, format!("unable to parse csr: {e}")))?;
    if common_name != format!("system:node:{node}") {
        return Err(forbidden(
            a,
            a.name,
            format!("can only create a node CSR with CN=system:node:{node}"),
        ));
    }
    Ok(())
}

/// The subject CommonName of the base64 PEM certificate request `request`.
fn common_name_of_request(request: &str) -> std::result::Result<String, String> {
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request)
        .map_err(|e| e.to_string())?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| e.to_string())?;
    let (_, csr) =
        <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(&pem.contents)
            .map_err(|e| e.to_string())?;
    Ok(csr
        .certification_request_info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string())
}
