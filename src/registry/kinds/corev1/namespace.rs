//! Namespaces: upstream's `PrepareForCreate` (phase Active, the `kubernetes` finalizer), the
//! `kubernetes.io/metadata.name` label, finalizer validation, columns and `status.phase`.

use super::s;
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell};
use crate::registry::validation::{NameRule, qualified_name};
use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};
use serde_json::{Value, json};

/// Rules of core/v1 Namespace.
pub struct NamespaceRules;

/// The finalizer of `spec.finalizers` that the namespace controller removes.
pub const KUBERNETES: &str = "kubernetes";
/// The label upstream puts on every namespace, holding its name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Rules<Namespace> for NamespaceRules {
    const SHORT_NAMES: Names = &["ns"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Finalize];
    // Namespaces are deleted one by one, by their controller.
    const VERBS: Names = &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    const NAME_RULE: NameRule = NameRule::Dns1123Label;
    const TRACKS_GENERATION: bool = false;
    const DELETE_RETURNS_OBJECT: bool = true;

    fn prepare_for_create(&self, ns: &mut Namespace) {
        ns.status = Some(NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        let spec = ns.spec.get_or_insert_with(NamespaceSpec::default);
        let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == KUBERNETES) {
            finalizers.push(KUBERNETES.into());
        }
    }

    fn prepare_for_update(&self, new: &mut Namespace, old: &Namespace) {
        // Finalizers change only through the finalize subresource, status only through status.
        let finalizers = old.spec.as_ref().and_then(|s| s.finalizers.clone());
        match (&mut new.spec, finalizers) {
            (Some(spec), f) => spec.finalizers = f,
            (None, Some(f)) => {
                new.spec = Some(NamespaceSpec {
                    finalizers: Some(f),
                })
            }
            (None, None) => {}
        }
        new.status = old.status.clone();
    }

    fn blocks_deletion(&self, ns: &Namespace) -> bool {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty())
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            let status = o.entry("status").or_insert_with(|| json!({}));
            if let Some(s) = status.as_object_mut() {
                s.insert("phase".into(), json!("Terminating"));
            }
        }
    }

    fn default(&self, ns: &mut Namespace) {
        if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
            ns.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(NAME_LABEL.into(), name);
        }
        let status = ns.status.get_or_insert_with(Default::default);
        if s(&status.phase).is_empty() {
            status.phase = Some("Active".into());
        }
    }

    fn validate(&self, ns: &Namespace) -> ErrorList {
        let mut errs = Vec::new();
        let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone());
        for (i, f) in finalizers.iter().flatten().enumerate() {
            let at = format!("spec.finalizers[{i}]");
            let msgs = qualified_name(f);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(at.clone(), f.as_str(), m));
                }
            } else if !f.contains('/') && f != KUBERNETES {
                errs.push(FieldError::invalid(
                    at,
                    f.as_str(),
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Status", "The status of the namespace"),
            Column::AGE,
        ])
    }

    fn cells(&self, ns: &Namespace, raw: &Value) -> Vec<Value> {
        let phase = ns.status.as_ref().map(|st| s(&st.phase)).unwrap_or("");
        vec![
            json!(ns.metadata.name.as_deref().unwrap_or("")),
            json!(phase),
            age_cell(raw),
        ]
    }

    fn field(&self, ns: &Namespace, field: &str) -> Option<String> {
        (field == "status.phase").then(|| {
            ns.status
                .as_ref()
                .map(|st| s(&st.phase))
                .unwrap_or("")
                .to_string()
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn spec_finalizers_block_deletion_and_deletion_marks_terminating() {
        let ns = crate::registry::kinds::builtin()
            .into_iter()
            .find(|k| k.info().resource == "namespaces")
            .unwrap();
        assert!(ns.blocks_deletion(&json!({"spec": {"finalizers": ["kubernetes"]}})));
        assert!(!ns.blocks_deletion(&json!({"spec": {"finalizers": []}})));
        let mut obj = json!({"metadata": {"name": "a"}});
        ns.prepare_for_delete(&mut obj);
        assert_eq!(obj["status"]["phase"], "Terminating");
    }
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    #[test]
    fn a_new_namespace_is_active_with_the_kubernetes_finalizer_and_name_label() {
        let s = Typed::new(
            super::super::tests::info("Namespace", "namespaces"),
            NamespaceRules,
        );
        let mut v = s
            .decode(json!({"metadata": {"name": "dev"}}))
            .unwrap()
            .object;
        s.prepare_for_create(&mut v);
        s.default(&mut v);
        assert_eq!(v["status"]["phase"], "Active");
        assert_eq!(v["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(v["metadata"]["labels"][NAME_LABEL], "dev");
        assert!(s.validate(&v).is_empty());
        assert_eq!(s.cells(&v)[..2], [json!("dev"), json!("Active")]);
        assert_eq!(s.field(&v, "status.phase").as_deref(), Some("Active"));
        let mut upd = json!({"metadata": {"name": "dev"}, "spec": {"finalizers": []}});
        s.prepare_for_update(&mut upd, &v);
        assert_eq!(upd["spec"]["finalizers"], json!(["kubernetes"]));
        let bad = json!({"metadata": {"name": "dev"}, "spec": {"finalizers": ["custom"]}});
        assert_eq!(
            s.validate(&bad)[0].to_string(),
            r#"spec.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified"#
        );
    }
}
