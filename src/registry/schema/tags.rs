//! Upstream's merge tags of the built-in types that k8s-openapi drops (`+listType`,
//! `+listMapKey`, `+mapType`, `+structType`): how lists, maps and structs merge under
//! server-side apply, and the list types the OpenAPI documents publish.
//!
//! A list's type is derived from its patch metadata: a merge key makes a map list keyed by it,
//! a merging list of scalars is a set, any other list is atomic; the few lists whose tags say
//! otherwise, and the structs and maps tagged atomic, are listed here.

use super::patch_meta;
use crate::registry::managed_fields::ListType;
use serde_json::json;

/// The list type of `field` of `definition`, a list.
pub fn list_type(definition: &str, field: &str) -> ListType {
    list_override(definition, field).unwrap_or_else(|| {
        match patch_meta::patch_meta(definition, field) {
            Some((strategy, key)) if strategy.split(',').any(|s| s == "merge") => match key {
                Some(k) => ListType::Map(vec![(k.to_string(), None)]),
                None => ListType::Set,
            },
            _ => ListType::Atomic,
        }
    })
}

/// Lists whose `+listMapKey`s differ from their patch merge key, or that are atomic despite one.
fn list_override(definition: &str, field: &str) -> Option<ListType> {
    let tcp = || Some(json!("TCP"));
    Some(match (definition, field) {
        ("io.k8s.api.core.v1.Container" | "io.k8s.api.core.v1.EphemeralContainer", "ports") => {
            ListType::Map(vec![
                ("containerPort".into(), None),
                ("protocol".into(), tcp()),
            ])
        }
        ("io.k8s.api.core.v1.ServiceSpec", "ports") => {
            ListType::Map(vec![("port".into(), None), ("protocol".into(), tcp())])
        }
        ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints") => ListType::Map(vec![
            ("topologyKey".into(), None),
            ("whenUnsatisfiable".into(), None),
        ]),
        ("io.k8s.api.core.v1.PodStatus", "hostIPs") => ListType::Atomic,
        _ => return None,
    })
}

/// Types upstream tags `+structType=atomic`: replaced as a whole by apply.
pub(super) const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
];

/// Map fields upstream tags `+mapType=atomic`.
pub(super) const ATOMIC_MAPS: &[(&str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
    ("io.k8s.api.core.v1.ServiceSpec", "selector"),
    ("io.k8s.api.core.v1.ReplicationControllerSpec", "selector"),
];
