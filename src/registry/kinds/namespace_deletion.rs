//! Namespace deletion as upstream's namespace REST storage does it: `spec.finalizers` (the
//! "kubernetes" finalizer the namespace controller removes once the namespace is empty) keep a
//! namespace in phase Terminating until they are gone.

use crate::registry::errors::ErrorList;
use crate::registry::strategy::{Decoded, ResourceInfo, Strategy};
use crate::registry::table::Column;
use serde_json::{Value, json};
use std::sync::Arc;

pub use super::corev1::NAMESPACE_FINALIZER as FINALIZER;

/// Wraps the namespace strategy with the deletion rules.
pub struct NamespaceDeletion(pub Arc<dyn Strategy>);

impl Strategy for NamespaceDeletion {
    fn info(&self) -> &ResourceInfo {
        self.0.info()
    }
    fn decode(&self, obj: Value) -> Result<Decoded, String> {
        self.0.decode(obj)
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        self.0.prepare_for_create(obj)
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        self.0.prepare_for_update(new, old)
    }
    fn default(&self, obj: &mut Value) {
        self.0.default(obj)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        self.0.validate(obj)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        self.0.validate_update(new, old)
    }
    fn allow_unconditional_update(&self) -> bool {
        self.0.allow_unconditional_update()
    }
    fn blocks_deletion(&self, obj: &Value) -> bool {
        obj.pointer("/spec/finalizers")
            .and_then(Value::as_array)
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
    fn columns(&self) -> Vec<Column> {
        self.0.columns()
    }
    fn cells(&self, obj: &Value) -> Vec<Value> {
        self.0.cells(obj)
    }
    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        self.0.field(obj, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_finalizers_block_deletion_and_deletion_marks_terminating() {
        let ns = NamespaceDeletion(
            crate::registry::kinds::builtin()
                .into_iter()
                .find(|k| k.info().resource == "namespaces")
                .unwrap(),
        );
        assert!(ns.blocks_deletion(&json!({"spec": {"finalizers": ["kubernetes"]}})));
        assert!(!ns.blocks_deletion(&json!({"spec": {"finalizers": []}})));
        let mut obj = json!({"metadata": {"name": "a"}});
        ns.prepare_for_delete(&mut obj);
        assert_eq!(obj["status"]["phase"], "Terminating");
    }
}
