//! scheduling.k8s.io/v1 rules: PriorityClass reserved names, value bound and immutability,
//! and upstream's printer.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules};
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::immutable;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::{Value, json};

/// Upstream's `HighestUserDefinablePriority`.
const HIGHEST_USER_PRIORITY: i32 = 1_000_000_000;

/// PriorityClass: reserved names, value bound and immutability; upstream's printer.
pub struct PriorityClassRules;

impl Rules<PriorityClass> for PriorityClassRules {
    const SHORT_NAMES: Names = &["pc"];

    fn default(&self, pc: &mut PriorityClass) {
        pc.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    }

    fn validate(&self, pc: &PriorityClass) -> ErrorList {
        let mut errs = Vec::new();
        let name = pc.metadata.name.as_deref().unwrap_or("");
        let system = matches!(name, "system-cluster-critical" | "system-node-critical");
        if name.starts_with("system-") && !system {
            errs.push(FieldError::forbidden(
                "metadata.name",
                "priority class names with 'system-' prefix are reserved",
            ));
        }
        if !system && pc.value > HIGHEST_USER_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            ));
        }
        if let Some(p) = pc.preemption_policy.as_deref()
            && !matches!(p, "PreemptLowerPriority" | "Never")
        {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
        errs
    }

    fn validate_update(&self, new: &PriorityClass, old: &PriorityClass) -> ErrorList {
        let mut errs = self.validate(new);
        if new.value != old.value {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        errs.extend(immutable(
            Some(&json!(new.preemption_policy)),
            Some(&json!(old.preemption_policy)),
            "preemptionPolicy",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer(
                "Value",
                "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
            ),
            Column {
                type_: std::borrow::Cow::Borrowed("boolean"),
                ..Column::text(
                    "Global-Default",
                    "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
                )
            },
            Column::AGE,
            Column::text(
                "PreemptionPolicy",
                "preemptionPolicy is the Policy for preempting pods with lower priority.",
            ),
        ])
    }

    fn cells(&self, pc: &PriorityClass, raw: &Value) -> Vec<Value> {
        vec![
            name_cell(raw),
            json!(pc.value),
            json!(pc.global_default.unwrap_or(false)),
            age_cell(raw),
            pc.preemption_policy.clone().unwrap_or_default().into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("scheduling.k8s.io", "Thing", rules)
    }

    #[test]
    fn priority_classes_reserve_system_names_and_keep_their_value() {
        let s = strategy::<PriorityClass, _>(PriorityClassRules);
        let mut obj = json!({"metadata": {"name": "system-mine"}, "value": 10});
        s.default(&mut obj);
        assert_eq!(obj["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(
            s.validate(&obj)[0].to_string(),
            "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"
        );
        let cells = s.cells(&obj);
        assert_eq!(cells[1], 10);
        assert_eq!(cells[2], false);
    }
}
