//! node.k8s.io/v1 rules: RuntimeClass handler (a DNS label, immutable) and upstream's printer.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::Rules;
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::{dns1123_label, immutable};
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::{Value, json};

/// RuntimeClass: handler a DNS label, immutable; upstream's printer.
pub struct RuntimeClassRules;

impl Rules<RuntimeClass> for RuntimeClassRules {
    fn validate(&self, rc: &RuntimeClass) -> ErrorList {
        dns1123_label(&rc.handler)
            .into_iter()
            .map(|msg| FieldError::invalid("handler", rc.handler.as_str(), msg))
            .collect()
    }

    fn validate_update(&self, new: &RuntimeClass, old: &RuntimeClass) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(immutable(
            Some(&json!(new.handler)),
            Some(&json!(old.handler)),
            "handler",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Handler",
                "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, rc: &RuntimeClass, raw: &Value) -> Vec<Value> {
        vec![name_cell(raw), rc.handler.clone().into(), age_cell(raw)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("node.k8s.io", "Thing", rules)
    }

    #[test]
    fn runtime_class_handlers_are_dns_labels() {
        let s = strategy::<RuntimeClass, _>(RuntimeClassRules);
        let obj = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        assert!(s.validate(&obj).is_empty());
        let bad = json!({"metadata": {"name": "gvisor"}, "handler": ""});
        assert!(
            s.validate(&bad)[0]
                .to_string()
                .starts_with("handler: Invalid value: \"\"")
        );
    }
}
