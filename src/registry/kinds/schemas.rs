//! The schemas of the built-in types: every registered kind's, derived from its registration,
//! plus the few types kubeboot knows without registering them here, each listed below with why.

use super::registered;
use crate::registry::managed_fields::TypeRef;
use crate::registry::schema::{SchemaRef, SchemaSet, Schemas};
use std::sync::OnceLock;

/// The schemas of every built-in type, generated on first use (a few milliseconds in release
/// builds).
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        use k8s_openapi::api::{
            authentication, authorization, autoscaling, core, flowcontrol, policy,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
        use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
        let mut set = SchemaSet::new();
        for kind in registered() {
            (kind.add_schema)(&mut set);
        }
        // Kinds the other links of the chain serve; their rules live there, which the
        // registry does not import.
        set.add_kind::<apiextensions::CustomResourceDefinition>();
        set.add_kind::<apiregistration::APIService>();
        // Create-only kinds the kube API server link serves (`auth::reviews`).
        set.add_kind::<authentication::v1::SelfSubjectReview>();
        set.add_kind::<authentication::v1::TokenReview>();
        set.add_kind::<authorization::v1::SubjectAccessReview>();
        set.add_kind::<authorization::v1::LocalSubjectAccessReview>();
        set.add_kind::<authorization::v1::SelfSubjectAccessReview>();
        set.add_kind::<authorization::v1::SelfSubjectRulesReview>();
        // The objects of subresources: scale, pods' binding and eviction, serviceaccounts' token.
        set.add_kind::<autoscaling::v1::Scale>();
        set.add_kind::<authentication::v1::TokenRequest>();
        set.add_kind::<core::v1::Binding>();
        set.add_kind::<policy::v1::Eviction>();
        // Kinds upstream serves and kubeboot does not yet; their patch metadata is tabled
        // (`schema::patch_meta`) and checked against these schemas.
        set.add_kind::<core::v1::ComponentStatus>();
        set.add_kind::<autoscaling::v1::HorizontalPodAutoscaler>();
        set.add_kind::<flowcontrol::v1::FlowSchema>();
        set.add_kind::<flowcontrol::v1::PriorityLevelConfiguration>();
        set.finish()
    })
}

/// The strategic-merge schema of a built-in kind (`""`, `"v1"`, `"Pod"`), or `None` for kinds
/// it does not know (custom resources among them).
pub fn schema_for_kind(group: &str, version: &str, kind: &str) -> Option<SchemaRef> {
    schemas().schema_for_kind(group, version, kind)
}

/// The structured-merge field types of a built-in kind, or `None` for kinds it does not know.
pub fn field_types_for_kind(group: &str, version: &str, kind: &str) -> Option<TypeRef> {
    schemas().field_types_for_kind(group, version, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::schema::patch_meta::entries;

    #[test]
    fn every_kind_and_subresource_has_a_schema() {
        for strategy in super::super::builtin() {
            let info = strategy.info();
            assert!(
                schema_for_kind(&info.group, &info.version, &info.kind).is_some(),
                "{}",
                info.qualified_kind()
            );
            for sub in info.subresources.iter().filter(|s| !s.connect) {
                assert!(
                    schema_for_kind(&sub.group, &sub.version, &sub.kind).is_some(),
                    "{}/{}",
                    info.resource,
                    sub.name
                );
            }
        }
    }

    #[test]
    fn every_entry_names_a_field_that_exists_in_k8s_openapi() {
        for e in entries() {
            let schema = schemas()
                .schema_for_definition(e.definition)
                .unwrap_or_else(|| panic!("{} is not a known definition", e.definition));
            let (field, _) = schema.ty().field(e.field);
            assert!(
                field.is_some(),
                "{}.{} does not exist",
                e.definition,
                e.field
            );
        }
    }

    #[test]
    fn unknown_kinds_and_custom_resources_have_no_schema() {
        assert!(schema_for_kind("example.com", "v1", "Widget").is_none());
        assert!(schema_for_kind("", "v1", "Widget").is_none());
    }
}
