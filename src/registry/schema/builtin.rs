//! The JSON schemas of the built-in types, generated once from k8s-openapi's `schemars` impls and
//! shared by the patch engine (field → type graph), the field types and the OpenAPI documents.

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// A group/version/kind.
pub type Gvk = (&'static str, &'static str, &'static str);

/// Every definition of the built-in types, keyed by upstream's definition name, with `$ref`s in
/// schemars' `#/$defs/` form, and the kinds (group/version/kind → definition name) among them.
pub struct BuiltinSchemas {
    /// Definitions by name.
    pub definitions: Map<String, Value>,
    /// The resource kinds and the definition of each.
    pub kinds: Vec<(Gvk, String)>,
}

/// Registers each type's schema and records its group/version/kind.
macro_rules! kinds {
    ($generator:ident, $kinds:ident, [$($ty:path),* $(,)?]) => {
        $(
            $generator.subschema_for::<$ty>();
            $kinds.push((
                (
                    <$ty as k8s_openapi::Resource>::GROUP,
                    <$ty as k8s_openapi::Resource>::VERSION,
                    <$ty as k8s_openapi::Resource>::KIND,
                ),
                <$ty as JsonSchema>::schema_name().into_owned(),
            ));
        )*
    };
}

/// The schemas, generated on first use (a few milliseconds in release builds).
pub fn builtin() -> &'static BuiltinSchemas {
    static SCHEMAS: OnceLock<BuiltinSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        use k8s_openapi::api::*;
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions_v1;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration_v1;
        let mut generator = SchemaGenerator::default();
        let mut kinds = Vec::new();
        // A superset of the kinds `registry::kinds::builtin()` serves, so that patches and
        // documents follow the registry as kinds are added.
        kinds!(
            generator,
            kinds,
            [
                core::v1::Binding,
                core::v1::ComponentStatus,
                core::v1::ConfigMap,
                core::v1::Endpoints,
                core::v1::Event,
                core::v1::LimitRange,
                core::v1::Namespace,
                core::v1::Node,
                core::v1::PersistentVolume,
                core::v1::PersistentVolumeClaim,
                core::v1::Pod,
                core::v1::PodTemplate,
                core::v1::ReplicationController,
                core::v1::ResourceQuota,
                core::v1::Secret,
                core::v1::Service,
                core::v1::ServiceAccount,
                apps::v1::ControllerRevision,
                apps::v1::DaemonSet,
                apps::v1::Deployment,
                apps::v1::ReplicaSet,
                apps::v1::StatefulSet,
                batch::v1::CronJob,
                batch::v1::Job,
                autoscaling::v1::HorizontalPodAutoscaler,
                autoscaling::v1::Scale,
                autoscaling::v2::HorizontalPodAutoscaler,
                networking::v1::Ingress,
                networking::v1::IngressClass,
                networking::v1::IPAddress,
                networking::v1::NetworkPolicy,
                networking::v1::ServiceCIDR,
                rbac::v1::ClusterRole,
                rbac::v1::ClusterRoleBinding,
                rbac::v1::Role,
                rbac::v1::RoleBinding,
                policy::v1::Eviction,
                policy::v1::PodDisruptionBudget,
                coordination::v1::Lease,
                discovery::v1::EndpointSlice,
                events::v1::Event,
                storage::v1::CSIDriver,
                storage::v1::CSINode,
                storage::v1::CSIStorageCapacity,
                storage::v1::StorageClass,
                storage::v1::VolumeAttachment,
                scheduling::v1::PriorityClass,
                node::v1::RuntimeClass,
                certificates::v1::CertificateSigningRequest,
                admissionregistration::v1::MutatingWebhookConfiguration,
                admissionregistration::v1::ValidatingWebhookConfiguration,
                admissionregistration::v1::ValidatingAdmissionPolicy,
                admissionregistration::v1::ValidatingAdmissionPolicyBinding,
                flowcontrol::v1::FlowSchema,
                flowcontrol::v1::PriorityLevelConfiguration,
                apiextensions_v1::CustomResourceDefinition,
                apiregistration_v1::APIService,
            ]
        );
        // The meta types every API document refers to.
        generator.subschema_for::<meta::Status>();
        generator.subschema_for::<meta::DeleteOptions>();
        generator.subschema_for::<meta::Patch>();
        generator.subschema_for::<meta::WatchEvent<Value>>();
        generator.subschema_for::<meta::APIResourceList>();
        generator.subschema_for::<meta::ListMeta>();
        let definitions = generator
            .definitions()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        BuiltinSchemas { definitions, kinds }
    })
}
