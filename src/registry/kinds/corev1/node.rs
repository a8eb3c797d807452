//! Nodes: allocatable defaults to capacity, the `kubectl get nodes` columns (status, roles,
//! addresses, system info) and the `spec.unschedulable` field selector.

use crate::registry::strategy::{Names, PROXY_VERBS, Rules, Sub};
use crate::registry::table::{Column, age_cell};
use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};
use std::collections::BTreeSet;

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const NODE_KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const NODE_OS_IMAGE: &str =
    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
const NODE_KERNEL: &str =
    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
const NODE_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";

/// Rules of core/v1 Node.
pub struct NodeRules;

const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

fn address(node: &Node, kind: &str) -> String {
    node.status
        .as_ref()
        .and_then(|st| st.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == kind))
        .map(|a| a.address.clone())
        .unwrap_or_else(|| "<none>".into())
}

impl Rules<Node> for NodeRules {
    const SHORT_NAMES: Names = &["no"];
    const SUBRESOURCES: &'static [Sub] = &[
        Sub::Connect {
            name: "proxy",
            kind: "NodeProxyOptions",
            verbs: PROXY_VERBS,
        },
        Sub::Status,
    ];
    const TRACKS_GENERATION: bool = false;

    fn default(&self, node: &mut Node) {
        if let Some(st) = &mut node.status
            && st.allocatable.is_none()
            && st.capacity.is_some()
        {
            st.allocatable = st.capacity.clone();
        }
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Status", "The status of the node"),
            Column::text("Roles", "The roles of the node"),
            Column::AGE,
            Column::text("Version", NODE_KUBELET_VERSION),
            Column::wide("Internal-IP", NODE_ADDRESSES),
            Column::wide("External-IP", NODE_ADDRESSES),
            Column::wide("OS-Image", NODE_OS_IMAGE),
            Column::wide("Kernel-Version", NODE_KERNEL),
            Column::wide("Container-Runtime", NODE_RUNTIME),
        ])
    }

    fn cells(&self, node: &Node, raw: &Value) -> Vec<Value> {
        let st = node.status.clone().unwrap_or_default();
        let mut status: Vec<String> = st
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.type_ == "Ready")
            .take(1)
            .map(|c| {
                if c.status == "True" {
                    "Ready".to_string()
                } else {
                    "NotReady".to_string()
                }
            })
            .collect();
        if status.is_empty() {
            status.push("Unknown".into());
        }
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            status.push("SchedulingDisabled".into());
        }
        let roles: BTreeSet<String> = node
            .metadata
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, v)| match k.strip_prefix(ROLE_PREFIX) {
                Some(role) if !role.is_empty() => Some(role.to_string()),
                Some(_) => None,
                None if k == ROLE_LABEL && !v.is_empty() => Some(v.clone()),
                None => None,
            })
            .collect();
        let roles = if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.into_iter().collect::<Vec<_>>().join(",")
        };
        let info = st.node_info.clone().unwrap_or_default();
        let unknown = |v: &str| {
            if v.is_empty() {
                "<unknown>".to_string()
            } else {
                v.to_string()
            }
        };
        vec![
            json!(node.metadata.name.as_deref().unwrap_or("")),
            json!(status.join(",")),
            json!(roles),
            age_cell(raw),
            json!(info.kubelet_version),
            json!(address(node, "InternalIP")),
            json!(address(node, "ExternalIP")),
            json!(unknown(&info.os_image)),
            json!(unknown(&info.kernel_version)),
            json!(unknown(&info.container_runtime_version)),
        ]
    }

    fn field(&self, node: &Node, field: &str) -> Option<String> {
        (field == "spec.unschedulable").then(|| {
            node.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
                .to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    #[test]
    fn node_cells_show_status_roles_and_system_info() {
        let s = Typed::new(super::super::tests::info("Node", "nodes"), NodeRules);
        let v = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian", "kernelVersion": "6.1",
                    "containerRuntimeVersion": "containerd://1.7", "architecture": "amd64", "bootID": "",
                    "machineID": "", "operatingSystem": "linux", "systemUUID": "", "kubeProxyVersion": ""}}});
        let cells = s.cells(&v);
        assert_eq!(cells[1], "Ready,SchedulingDisabled");
        assert_eq!(cells[2], "control-plane");
        assert_eq!(cells[4], "v1.33.0");
        assert_eq!(
            cells[5..],
            [
                json!("10.0.0.1"),
                json!("<none>"),
                json!("Debian"),
                json!("6.1"),
                json!("containerd://1.7")
            ]
        );
        assert_eq!(s.field(&v, "spec.unschedulable").as_deref(), Some("true"));
        assert_eq!(
            s.field(&json!({"metadata": {}}), "spec.unschedulable")
                .as_deref(),
            Some("false")
        );
    }
}
