//! coordination.k8s.io/v1 rules: Lease duration and transitions, and upstream's `printLease`.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::Rules;
use crate::registry::table::{Column, age_cell, name_cell};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

/// Lease: upstream's `printLease`.
pub struct LeaseRules;

impl Rules<Lease> for LeaseRules {
    fn validate(&self, l: &Lease) -> ErrorList {
        let mut errs = Vec::new();
        let spec = l.spec.clone().unwrap_or_default();
        if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                t,
                "must be greater than or equal to 0",
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Holder",
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, l: &Lease, raw: &Value) -> Vec<Value> {
        let holder = l.spec.as_ref().and_then(|s| s.holder_identity.clone());
        vec![
            name_cell(raw),
            holder.unwrap_or_default().into(),
            age_cell(raw),
        ]
    }
}
