//! policy/v1 rules: PodDisruptionBudget validation (minAvailable xor maxUnavailable) and
//! upstream's `printPodDisruptionBudget`.

use super::workload::{
    intstr_string, label_selector, not_more_than_100_percent, positive_int_or_percent,
};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

/// PodDisruptionBudget: minAvailable xor maxUnavailable; upstream's `printPodDisruptionBudget`.
pub struct PodDisruptionBudgetRules;

impl Rules<PodDisruptionBudget> for PodDisruptionBudgetRules {
    const SHORT_NAMES: Names = &["pdb"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn validate(&self, pdb: &PodDisruptionBudget) -> ErrorList {
        let mut errs = Vec::new();
        let spec = pdb.spec.clone().unwrap_or_default();
        if spec.min_available.is_some() && spec.max_unavailable.is_some() {
            errs.push(FieldError::invalid(
                "spec",
                serde_json::to_value(&spec).unwrap_or(Value::Null),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        for (name, v) in [
            ("minAvailable", &spec.min_available),
            ("maxUnavailable", &spec.max_unavailable),
        ] {
            if let Some(v) = v {
                let f = format!("spec.{name}");
                errs.extend(positive_int_or_percent(v, &f));
                errs.extend(not_more_than_100_percent(v, &f));
            }
        }
        if let Some(sel) = &spec.selector {
            errs.extend(label_selector(sel, "spec.selector"));
        }
        if let Some(p) = spec.unhealthy_pod_eviction_policy.as_deref()
            && !matches!(p, "IfHealthyBudget" | "AlwaysAllow")
        {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Min Available",
                "The minimum number of pods that must be available.",
            ),
            Column::text(
                "Max Unavailable",
                "The maximum number of pods that may be unavailable.",
            ),
            Column::integer(
                "Allowed Disruptions",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, pdb: &PodDisruptionBudget, raw: &Value) -> Vec<Value> {
        let spec = pdb.spec.clone().unwrap_or_default();
        let show =
            |v: Option<IntOrString>| v.as_ref().map_or_else(|| "N/A".to_string(), intstr_string);
        vec![
            name_cell(raw),
            show(spec.min_available).into(),
            show(spec.max_unavailable).into(),
            json!(pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed)),
            age_cell(raw),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("policy", "Thing", rules)
    }

    #[test]
    fn pdbs_take_min_available_or_max_unavailable_but_not_both() {
        let s = strategy::<PodDisruptionBudget, _>(PodDisruptionBudgetRules);
        let obj = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "x"}}}});
        let errs = s.validate(&obj);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .ends_with("minAvailable and maxUnavailable cannot be both set")
        );
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "1");
        assert_eq!(cells[2], "50%");
        assert_eq!(cells[3], 0);
    }
}
