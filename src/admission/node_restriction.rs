//! NodeRestriction, as upstream's `plugin/pkg/admission/noderestriction`: a kubelet
//! (`system:node:<name>` in `system:nodes`) may write only its own Node, only mirror pods bound
//! to itself, only the status of its own pods, and delete only its own pods.

use super::{Attributes, Operation, Result, Validating};
use crate::auth::authorizer::node::NODES_GROUP;
use crate::registry::RegistryError;
use crate::registry::store::meta_str;
use serde_json::Value;

/// The plugin.
pub struct NodeRestriction;

const MIRROR: &str = "kubernetes.io/config.mirror";

#[async_trait::async_trait]
impl Validating for NodeRestriction {
    fn handles(&self, _: Operation) -> bool {
        true
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let is_node = a.user.groups.iter().any(|g| g == NODES_GROUP);
        let Some(node) = a.user.name.strip_prefix("system:node:").filter(|_| is_node) else {
            return Ok(());
        };
        if !a.resource.group.is_empty() {
            return Ok(());
        }
        let forbidden = |message: String| RegistryError::Forbidden {
            resource: a.resource.group_resource(),
            name: a.name.to_string(),
            message,
            cause: None,
        };
        let bound = |pod: Option<&Value>| {
            pod.and_then(|p| p.pointer("/spec/nodeName"))
                .and_then(Value::as_str)
                == Some(node)
        };
        match a.resource.resource.as_ref() {
            "nodes" => {
                let requested = object
                    .and_then(|o| meta_str(o, "name"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or(a.name);
                if requested != node {
                    return Err(forbidden(format!(
                        "node {node:?} is not allowed to modify node {requested:?}"
                    )));
                }
            }
            "pods" => match (a.operation, a.subresource) {
                (Operation::Create, "") => {
                    let mirror = object
                        .and_then(|o| o.pointer("/metadata/annotations"))
                        .and_then(|m| m.get(MIRROR))
                        .is_some();
                    if !mirror {
                        return Err(forbidden(format!(
                            "pod does not have {MIRROR:?} annotation, node {node:?} can only create mirror pods"
                        )));
                    }
                    if !bound(object) {
                        return Err(forbidden(format!(
                            "node {node:?} can only create pods with spec.nodeName set to itself"
                        )));
                    }
                }
                (Operation::Update, "status") if !bound(a.old_object) => {
                    return Err(forbidden(format!(
                        "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                    )));
                }
                (Operation::Delete, "") if !bound(a.old_object) => {
                    return Err(forbidden(format!(
                        "node {node:?} can only delete pods with spec.nodeName set to itself"
                    )));
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }
}
