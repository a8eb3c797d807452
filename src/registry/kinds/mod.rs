//! The built-in kinds kubeboot serves: one line per kind here, and in the files beside this one
//! the rules that make each kind more than its schema, facts (names, subresources, verbs, name
//! rule, generation, delete response) and hooks alike.

mod admission_v1;
mod apps_v1;
mod autoscaling_v1;
mod autoscaling_v2;
mod batch_v1;
mod certificates_v1;
mod coordination_v1;
pub mod corev1;
mod discovery_v1;
mod events_v1;
mod flowcontrol_v1;
mod networking_v1;
mod node_v1;
mod policy_v1;
mod rbac_v1;
mod scheduling_v1;
mod schemas;
mod storage_v1;
mod workload;

pub use schemas::{field_types_for_kind, schema_for_kind, schemas};

use super::ResourceInfo;
use super::schema::SchemaSet;
use super::strategy::{Rules, Strategy, Sub, Typed};
use k8s_openapi::schemars::JsonSchema;
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

/// The facts of k8s-openapi type `T`'s kind: its names and scope from the type, the rest as
/// its rules `R` declare them.
fn info<T, R>() -> ResourceInfo
where
    T: k8s_openapi::Resource,
    T::Scope: Scope,
    R: Rules<T>,
{
    // go-restful lists a built-in kind's paths, subresources among them, sorted.
    let mut subresources: Vec<_> = R::SUBRESOURCES
        .iter()
        .map(|s| s.info(T::GROUP, T::VERSION, T::KIND))
        .collect();
    subresources.sort_by(|a, b| a.name.cmp(b.name));
    let scale = R::SUBRESOURCES.iter().find_map(|s| match s {
        Sub::Scale(paths) => Some(paths.clone()),
        _ => None,
    });
    ResourceInfo {
        group: T::GROUP.into(),
        version: T::VERSION.into(),
        kind: T::KIND.into(),
        resource: T::URL_PATH_SEGMENT.into(),
        singular: T::KIND.to_lowercase(),
        namespaced: <T::Scope as Scope>::NAMESPACED,
        short_names: R::SHORT_NAMES.iter().map(|s| Cow::Borrowed(*s)).collect(),
        categories: R::CATEGORIES.iter().map(|s| Cow::Borrowed(*s)).collect(),
        verbs: Cow::Borrowed(R::VERBS),
        subresources,
        name_rule: R::NAME_RULE,
        scale,
        tracks_generation: R::TRACKS_GENERATION,
        delete_returns_object: R::DELETE_RETURNS_OBJECT,
    }
}

/// The strategy of k8s-openapi type `T` with `rules`, which declare the kind's facts.
pub fn strategy<T, R>(rules: R) -> Arc<dyn Strategy>
where
    T: k8s_openapi::Resource + DeserializeOwned + Serialize + Send + Sync + 'static,
    T::Scope: Scope,
    R: Rules<T>,
{
    Arc::new(Typed::<T, R>::new(info::<T, R>(), rules))
}

/// A built-in kind as registered: the strategy its store runs, and its type, whose schema
/// patches, server-side apply and the OpenAPI documents follow.
pub struct Kind {
    strategy: Arc<dyn Strategy>,
    add_schema: fn(&mut SchemaSet),
}

impl Kind {
    /// The kind of k8s-openapi type `T`, served by `strategy`.
    pub fn new<T: k8s_openapi::Resource + JsonSchema>(strategy: Arc<dyn Strategy>) -> Self {
        Kind {
            strategy,
            add_schema: SchemaSet::add_kind::<T>,
        }
    }
}

/// The kind of k8s-openapi type `T` with `rules`.
fn kind<T, R>(rules: R) -> Kind
where
    T: k8s_openapi::Resource + JsonSchema + DeserializeOwned + Serialize + Send + Sync + 'static,
    T::Scope: Scope,
    R: Rules<T>,
{
    Kind::new::<T>(strategy(rules))
}

/// Every built-in kind's strategy, grouped by group/version in upstream's discovery order.
pub fn builtin() -> Vec<Arc<dyn Strategy>> {
    registered().into_iter().map(|k| k.strategy).collect()
}

/// Every built-in kind, one line each, grouped by group/version in upstream's discovery order.
fn registered() -> Vec<Kind> {
    vec![
        // core/v1
        kind(corev1::ConfigMapRules),
        kind(corev1::EndpointsRules),
        kind(corev1::EventRules),
        kind(corev1::LimitRangeRules),
        kind(corev1::NamespaceRules),
        kind(corev1::NodeRules),
        kind(corev1::PersistentVolumeClaimRules),
        kind(corev1::PersistentVolumeRules),
        kind(corev1::PodRules),
        kind(corev1::PodTemplateRules),
        kind(corev1::ReplicationControllerRules),
        kind(corev1::ResourceQuotaRules),
        kind(corev1::SecretRules),
        kind(corev1::ServiceAccountRules),
        kind(corev1::ServiceRules),
        // admissionregistration.k8s.io/v1
        kind(admission_v1::MutatingWebhookConfigurationRules),
        kind(admission_v1::ValidatingAdmissionPolicyRules),
        kind(admission_v1::ValidatingAdmissionPolicyBindingRules),
        kind(admission_v1::ValidatingWebhookConfigurationRules),
        // apps/v1
        kind(apps_v1::ControllerRevisionRules),
        kind(apps_v1::DaemonSetRules),
        kind(apps_v1::DeploymentRules),
        kind(apps_v1::ReplicaSetRules),
        kind(apps_v1::StatefulSetRules),
        // autoscaling/v2, then v1 (stored as v2)
        kind(autoscaling_v2::HorizontalPodAutoscalerRules),
        autoscaling_v1::kind(),
        // batch/v1
        kind(batch_v1::CronJobRules),
        kind(batch_v1::JobRules),
        // certificates.k8s.io/v1
        kind(certificates_v1::CertificateSigningRequestRules),
        // coordination.k8s.io/v1
        kind(coordination_v1::LeaseRules),
        // discovery.k8s.io/v1
        kind(discovery_v1::EndpointSliceRules),
        // events.k8s.io/v1
        events_v1::kind(),
        // flowcontrol.apiserver.k8s.io/v1
        kind(flowcontrol_v1::FlowSchemaRules),
        kind(flowcontrol_v1::PriorityLevelConfigurationRules),
        // networking.k8s.io/v1
        kind(networking_v1::IngressClassRules),
        kind(networking_v1::IngressRules),
        kind(networking_v1::IPAddressRules),
        kind(networking_v1::NetworkPolicyRules),
        kind(networking_v1::ServiceCIDRRules),
        // node.k8s.io/v1
        kind(node_v1::RuntimeClassRules),
        // policy/v1
        kind(policy_v1::PodDisruptionBudgetRules),
        // rbac.authorization.k8s.io/v1
        kind(rbac_v1::ClusterRoleBindingRules),
        kind(rbac_v1::ClusterRoleRules),
        kind(rbac_v1::RoleBindingRules),
        kind(rbac_v1::RoleRules),
        // scheduling.k8s.io/v1
        kind(scheduling_v1::PriorityClassRules),
        // storage.k8s.io/v1
        kind(storage_v1::CSIDriverRules),
        kind(storage_v1::CSINodeRules),
        kind(storage_v1::CSIStorageCapacityRules),
        kind(storage_v1::StorageClassRules),
        kind(storage_v1::VolumeAttachmentRules),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_group_version_resource() {
        let kinds = builtin();
        let mut seen = std::collections::HashSet::new();
        for k in &kinds {
            let i = k.info();
            assert!(
                seen.insert((&i.group, &i.version, &i.resource)),
                "{} twice",
                i.resource
            );
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
            verbs: std::borrow::Cow::Borrowed(crate::registry::strategy::ALL_VERBS),
            subresources: Vec::new(),
            name_rule: NameRule::Dns1123Subdomain,
            scale: None,
            tracks_generation: false,
            delete_returns_object: false,
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
