//! The strategic-merge-patch metadata of the built-in types: which field of which OpenAPI
//! definition has which `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
//!
//! k8s-openapi drops these extensions, so they are listed here from upstream's
//! `// +patchStrategy` / `// +patchMergeKey` tags (staging/src/k8s.io/api/**/types.go and
//! apimachinery's ObjectMeta). The OpenAPI documents read the same table.

/// One field with a patch strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    /// OpenAPI definition name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub definition: &'static str,
    /// JSON field name.
    pub field: &'static str,
    /// `x-kubernetes-patch-strategy` as upstream spells it: `merge`, `retainKeys`,
    /// `merge,retainKeys` or `replace`.
    pub strategy: &'static str,
    /// `x-kubernetes-patch-merge-key`, for lists of objects merged by key.
    pub merge_key: Option<&'static str>,
}

const fn m(
    definition: &'static str,
    field: &'static str,
    strategy: &'static str,
    merge_key: Option<&'static str>,
) -> PatchMeta {
    PatchMeta {
        definition,
        field,
        strategy,
        merge_key,
    }
}

const MERGE: &str = "merge";
const MERGE_RETAIN: &str = "merge,retainKeys";
const NAME: Option<&str> = Some("name");
const TYPE: Option<&str> = Some("type");

static ENTRIES: &[PatchMeta] = &[
    // meta/v1
    m(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        MERGE,
        None,
    ),
    m(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        MERGE,
        Some("uid"),
    ),
    // core/v1: pods and containers
    m("io.k8s.api.core.v1.PodSpec", "volumes", MERGE_RETAIN, NAME),
    m("io.k8s.api.core.v1.PodSpec", "initContainers", MERGE, NAME),
    m("io.k8s.api.core.v1.PodSpec", "containers", MERGE, NAME),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        MERGE,
        NAME,
    ),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        MERGE,
        NAME,
    ),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        MERGE,
        Some("ip"),
    ),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        MERGE,
        Some("topologyKey"),
    ),
    m("io.k8s.api.core.v1.PodSpec", "schedulingGates", MERGE, NAME),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        MERGE_RETAIN,
        NAME,
    ),
    m(
        "io.k8s.api.core.v1.Container",
        "ports",
        MERGE,
        Some("containerPort"),
    ),
    m("io.k8s.api.core.v1.Container", "env", MERGE, NAME),
    m(
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        MERGE,
        Some("mountPath"),
    ),
    m(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        MERGE,
        Some("devicePath"),
    ),
    m(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        MERGE,
        Some("containerPort"),
    ),
    m("io.k8s.api.core.v1.EphemeralContainer", "env", MERGE, NAME),
    m(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        MERGE,
        Some("mountPath"),
    ),
    m(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        MERGE,
        Some("devicePath"),
    ),
    m(
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        MERGE,
        Some("mountPath"),
    ),
    m("io.k8s.api.core.v1.PodStatus", "conditions", MERGE, TYPE),
    m("io.k8s.api.core.v1.PodStatus", "podIPs", MERGE, Some("ip")),
    m("io.k8s.api.core.v1.PodStatus", "hostIPs", MERGE, Some("ip")),
    m(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        MERGE_RETAIN,
        NAME,
    ),
    // core/v1: other kinds
    m(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        MERGE,
        Some("port"),
    ),
    m(
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m("io.k8s.api.core.v1.ServiceAccount", "secrets", MERGE, NAME),
    m("io.k8s.api.core.v1.NodeSpec", "podCIDRs", MERGE, None),
    m("io.k8s.api.core.v1.NodeStatus", "conditions", MERGE, TYPE),
    m("io.k8s.api.core.v1.NodeStatus", "addresses", MERGE, TYPE),
    m(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.core.v1.ComponentStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    // apps/v1
    m(
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    m(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    // batch/v1
    m("io.k8s.api.batch.v1.JobStatus", "conditions", MERGE, TYPE),
    // autoscaling/v2
    m(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    // networking/v1
    m(
        "io.k8s.api.networking.v1.ServiceCIDRStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    // policy/v1
    m(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    // flowcontrol/v1
    m(
        "io.k8s.api.flowcontrol.v1.FlowSchemaStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
    m(
        "io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus",
        "conditions",
        MERGE,
        TYPE,
    ),
];

/// The patch strategy and merge key of `field` in `definition`, if it has one.
pub fn patch_meta(definition: &str, field: &str) -> Option<(&'static str, Option<&'static str>)> {
    ENTRIES
        .iter()
        .find(|e| e.definition == definition && e.field == field)
        .map(|e| (e.strategy, e.merge_key))
}

/// Every field with a patch strategy, in table order.
pub fn entries() -> impl Iterator<Item = &'static PatchMeta> {
    ENTRIES.iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_entry_is_listed_once() {
        let mut seen = HashSet::new();
        for e in entries() {
            assert!(seen.insert((e.definition, e.field)), "{e:?} twice");
        }
    }

    #[test]
    fn merge_keys_only_go_with_the_merge_strategy() {
        for e in entries() {
            if e.merge_key.is_some() {
                assert!(e.strategy.split(',').any(|s| s == "merge"), "{e:?}");
            }
        }
    }
}
