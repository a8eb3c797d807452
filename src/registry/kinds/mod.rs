//! The built-in kinds kubeboot serves: one entry per resource (scope, names, subresources) and,
//! in the files beside this one, the rules that make a kind more than its schema.

mod admission_v1;
mod apps_v1;
mod autoscaling_v2;
mod batch_v1;
mod certificates_v1;
mod coordination_v1;
pub mod corev1;
mod discovery_v1;
mod events_v1;
mod networking_v1;
mod node_v1;
mod policy_v1;
mod rbac_v1;
mod scheduling_v1;
mod storage_v1;
pub(crate) mod workload;

use super::ResourceInfo;

use super::strategy::{ALL_VERBS, Rules, ScalePaths, Strategy, SubresourceInfo, Typed};
use super::validation::NameRule;
use k8s_openapi::api::{
    admissionregistration::v1 as admreg, apps::v1 as apps, autoscaling::v2 as autoscaling,
    batch::v1 as batch, certificates::v1 as certificates, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::sync::Arc;

/// Whether a k8s-openapi scope type is namespaced.
pub trait Scope {
    const NAMESPACED: bool;
}
impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// A subresource of a kind.
#[derive(Clone)]
pub enum Sub {
    /// `status`: the spec/status split.
    Status,
    /// `scale`, reading and writing replicas at these paths.
    Scale(ScalePaths),
    /// `approval` (CertificateSigningRequests).
    Approval,
    /// `finalize` (namespaces).
    Finalize,
}

const REPLICAS: ScalePaths = ScalePaths {
    spec_replicas: Cow::Borrowed("/spec/replicas"),
    status_replicas: Cow::Borrowed("/status/replicas"),
    selector: Cow::Borrowed("/spec/selector"),
};
const SUB_VERBS: &[&str] = &["get", "patch", "update"];
const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];

/// No typed rules: kinds whose strategy does its work on the JSON form.
pub struct NoRules;
impl<T> Rules<T> for NoRules {}

/// Builds the strategy of k8s-openapi type `T` with its discovery facts.
pub fn kind<T, R>(
    rules: R,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subs: &[Sub],
) -> Arc<dyn Strategy>
where
    T: k8s_openapi::Resource + DeserializeOwned + Serialize + Send + Sync + 'static,
    T::Scope: Scope,
    R: Rules<T>,
{
    let mut scale = None;
    let subresources = subs
        .iter()
        .map(|s| match s {
            Sub::Status => SubresourceInfo {
                name: "status",
                group: T::GROUP.into(),
                version: T::VERSION.into(),
                kind: T::KIND.into(),
                verbs: Cow::Borrowed(SUB_VERBS),
            },
            Sub::Scale(paths) => {
                scale = Some(paths.clone());
                SubresourceInfo {
                    name: "scale",
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: Cow::Borrowed(SUB_VERBS),
                }
            }
            Sub::Approval => SubresourceInfo {
                name: "approval",
                group: T::GROUP.into(),
                version: T::VERSION.into(),
                kind: T::KIND.into(),
                verbs: Cow::Borrowed(SUB_VERBS),
            },
            Sub::Finalize => SubresourceInfo {
                name: "finalize",
                group: T::GROUP.into(),
                version: T::VERSION.into(),
                kind: T::KIND.into(),
                verbs: Cow::Borrowed(&["update"]),
            },
        })
        .collect();
    let resource = T::URL_PATH_SEGMENT;
    let name_rule = match (T::GROUP, resource) {
        ("", "namespaces") => NameRule::Dns1123Label,
        ("", "services") => NameRule::Dns1035Label,
        ("rbac.authorization.k8s.io" | "apiregistration.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    };
    let verbs: &'static [&'static str] = match (T::GROUP, resource) {
        ("", "namespaces") => &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        _ => ALL_VERBS,
    };
    let info = ResourceInfo {
        group: T::GROUP.into(),
        version: T::VERSION.into(),
        kind: T::KIND.into(),
        resource: resource.into(),
        singular: T::KIND.to_lowercase(),
        namespaced: <T::Scope as Scope>::NAMESPACED,
        short_names: short_names.iter().map(|s| Cow::Borrowed(*s)).collect(),
        categories: categories.iter().map(|s| Cow::Borrowed(*s)).collect(),
        verbs: Cow::Borrowed(verbs),
        subresources,
        name_rule,
        scale,
    };
    Arc::new(Typed::<T, R>::new(info, rules))
}

/// Every built-in kind, grouped by group/version in upstream's discovery order.
pub fn builtin() -> Vec<Arc<dyn Strategy>> {
    use Sub::*;
    let rc_scale = ScalePaths {
        selector: "/spec/selector".into(),
        ..REPLICAS
    };
    vec![
        // core/v1
        kind::<core::ConfigMap, _>(corev1::ConfigMapRules, &["cm"], &[], &[]),
        kind::<core::Endpoints, _>(corev1::EndpointsRules, &["ep"], &[], &[]),
        kind::<core::Event, _>(corev1::EventRules, &["ev"], &[], &[]),
        kind::<core::LimitRange, _>(corev1::LimitRangeRules, &["limits"], &[], &[]),
        kind::<core::Namespace, _>(corev1::NamespaceRules, &["ns"], &[], &[Status, Finalize]),
        kind::<core::Node, _>(corev1::NodeRules, &["no"], &[], &[Status]),
        kind::<core::PersistentVolumeClaim, _>(
            corev1::PersistentVolumeClaimRules,
            &["pvc"],
            &[],
            &[Status],
        ),
        kind::<core::PersistentVolume, _>(corev1::PersistentVolumeRules, &["pv"], &[], &[Status]),
        kind::<core::Pod, _>(corev1::PodRules, &["po"], ALL, &[Status]),
        kind::<core::PodTemplate, _>(corev1::PodTemplateRules, &[], &[], &[]),
        kind::<core::ReplicationController, _>(
            corev1::ReplicationControllerRules,
            &["rc"],
            ALL,
            &[Status, Scale(rc_scale)],
        ),
        kind::<core::ResourceQuota, _>(corev1::ResourceQuotaRules, &["quota"], &[], &[Status]),
        kind::<core::Secret, _>(corev1::SecretRules, &[], &[], &[]),
        kind::<core::ServiceAccount, _>(corev1::ServiceAccountRules, &["sa"], &[], &[]),
        kind::<core::Service, _>(corev1::ServiceRules, &["svc"], ALL, &[Status]),
        // admissionregistration.k8s.io/v1
        kind::<admreg::MutatingWebhookConfiguration, _>(
            admission_v1::MutatingWebhookConfigurationRules,
            &[],
            API_EXTENSIONS,
            &[],
        ),
        kind::<admreg::ValidatingAdmissionPolicy, _>(
            admission_v1::ValidatingAdmissionPolicyRules,
            &[],
            API_EXTENSIONS,
            &[Status],
        ),
        kind::<admreg::ValidatingAdmissionPolicyBinding, _>(
            admission_v1::ValidatingAdmissionPolicyBindingRules,
            &[],
            API_EXTENSIONS,
            &[],
        ),
        kind::<admreg::ValidatingWebhookConfiguration, _>(
            admission_v1::ValidatingWebhookConfigurationRules,
            &[],
            API_EXTENSIONS,
            &[],
        ),
        // apps/v1
        kind::<apps::ControllerRevision, _>(apps_v1::ControllerRevisionRules, &[], &[], &[]),
        kind::<apps::DaemonSet, _>(apps_v1::DaemonSetRules, &["ds"], ALL, &[Status]),
        kind::<apps::Deployment, _>(
            apps_v1::DeploymentRules,
            &["deploy"],
            ALL,
            &[Status, Scale(REPLICAS)],
        ),
        kind::<apps::ReplicaSet, _>(
            apps_v1::ReplicaSetRules,
            &["rs"],
            ALL,
            &[Status, Scale(REPLICAS)],
        ),
        kind::<apps::StatefulSet, _>(
            apps_v1::StatefulSetRules,
            &["sts"],
            ALL,
            &[Status, Scale(REPLICAS)],
        ),
        // autoscaling/v2
        kind::<autoscaling::HorizontalPodAutoscaler, _>(
            autoscaling_v2::HorizontalPodAutoscalerRules,
            &["hpa"],
            ALL,
            &[Status],
        ),
        // batch/v1
        kind::<batch::CronJob, _>(batch_v1::CronJobRules, &["cj"], ALL, &[Status]),
        kind::<batch::Job, _>(batch_v1::JobRules, &[], ALL, &[Status]),
        // certificates.k8s.io/v1
        kind::<certificates::CertificateSigningRequest, _>(
            certificates_v1::CertificateSigningRequestRules,
            &["csr"],
            &[],
            &[Status, Approval],
        ),
        // coordination.k8s.io/v1
        kind::<coordination::Lease, _>(coordination_v1::LeaseRules, &[], &[], &[]),
        // discovery.k8s.io/v1
        kind::<discovery::EndpointSlice, _>(discovery_v1::EndpointSliceRules, &[], &[], &[]),
        // events.k8s.io/v1
        Arc::new(events_v1::EventsV1::new(
            kind::<events::Event, _>(NoRules, &["ev"], &[], &[]),
            // The core Event, which prints and selects the converted objects.
            kind::<core::Event, _>(corev1::EventRules, &[], &[], &[]),
        )),
        // networking.k8s.io/v1
        kind::<networking::IngressClass, _>(networking_v1::IngressClassRules, &[], &[], &[]),
        kind::<networking::Ingress, _>(networking_v1::IngressRules, &["ing"], &[], &[Status]),
        kind::<networking::IPAddress, _>(networking_v1::IPAddressRules, &["ip"], &[], &[]),
        kind::<networking::NetworkPolicy, _>(
            networking_v1::NetworkPolicyRules,
            &["netpol"],
            &[],
            &[],
        ),
        kind::<networking::ServiceCIDR, _>(networking_v1::ServiceCIDRRules, &[], &[], &[Status]),
        // node.k8s.io/v1
        kind::<node::RuntimeClass, _>(node_v1::RuntimeClassRules, &[], &[], &[]),
        // policy/v1
        kind::<policy::PodDisruptionBudget, _>(
            policy_v1::PodDisruptionBudgetRules,
            &["pdb"],
            &[],
            &[Status],
        ),
        // rbac.authorization.k8s.io/v1
        kind::<rbac::ClusterRoleBinding, _>(rbac_v1::ClusterRoleBindingRules, &[], &[], &[]),
        kind::<rbac::ClusterRole, _>(rbac_v1::ClusterRoleRules, &[], &[], &[]),
        kind::<rbac::RoleBinding, _>(rbac_v1::RoleBindingRules, &[], &[], &[]),
        kind::<rbac::Role, _>(rbac_v1::RoleRules, &[], &[], &[]),
        // scheduling.k8s.io/v1
        kind::<scheduling::PriorityClass, _>(scheduling_v1::PriorityClassRules, &["pc"], &[], &[]),
        // storage.k8s.io/v1
        kind::<storage::CSIDriver, _>(storage_v1::CSIDriverRules, &[], &[], &[]),
        kind::<storage::CSINode, _>(storage_v1::CSINodeRules, &[], &[], &[]),
        kind::<storage::CSIStorageCapacity, _>(storage_v1::CSIStorageCapacityRules, &[], &[], &[]),
        kind::<storage::StorageClass, _>(storage_v1::StorageClassRules, &["sc"], &[], &[]),
        kind::<storage::VolumeAttachment, _>(
            storage_v1::VolumeAttachmentRules,
            &[],
            &[],
            &[Status],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_group_resource() {
        let kinds = builtin();
        let mut seen = std::collections::HashSet::new();
        for k in &kinds {
            let i = k.info();
            assert!(seen.insert((&i.group, &i.resource)), "{} twice", i.resource);
        }
        let deploy = kinds
            .iter()
            .find(|k| k.info().resource == "deployments")
            .unwrap();
        assert!(deploy.info().namespaced && deploy.info().scale.is_some());
        assert!(
            !kinds
                .iter()
                .find(|k| k.info().resource == "namespaces")
                .unwrap()
                .info()
                .namespaced
        );
    }
}

/// Helpers for the rules' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::super::errors::ErrorList;
    use super::super::strategy::Typed;
    use super::super::validation::NameRule;

    /// The facts of a test kind `kind` (plural `resource`) in `group`.
    pub fn info(
        group: &'static str,
        kind: &'static str,
        resource: &'static str,
    ) -> super::ResourceInfo {
        super::ResourceInfo {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            resource: resource.into(),
            singular: kind.to_lowercase(),
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: std::borrow::Cow::Borrowed(super::ALL_VERBS),
            subresources: Vec::new(),
            name_rule: NameRule::Dns1123Subdomain,
            scale: None,
        }
    }

    /// A strategy of `kind` in `group` with `rules`, as the catalog would build it.
    pub fn strategy<T, R>(group: &'static str, kind: &'static str, rules: R) -> Typed<T, R> {
        Typed::new(info(group, kind, "things"), rules)
    }

    /// An object as the store would hold it after create: decoded, prepared and defaulted.
    pub fn created<S: super::Strategy>(s: &S, obj: serde_json::Value) -> serde_json::Value {
        let mut obj = s.decode(obj).expect("decodes").object;
        s.prepare_for_create(&mut obj);
        s.default(&mut obj);
        obj
    }

    /// The errors as upstream renders them.
    pub fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }
}
