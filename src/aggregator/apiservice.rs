//! The APIService kind (apiregistration.k8s.io/v1), as upstream's kube-aggregator registry:
//! validation, the SERVICE / AVAILABLE / AGE table, and the helpers its controllers share.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::kinds;
use crate::registry::strategy::{Names, Sub};
use crate::registry::table::{Column, age};
use crate::registry::validation::NameRule;
use crate::registry::{Rules, Strategy};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// The APIService kind's rules.
pub struct ApiServiceRules;

/// The strategy of `apiservices`.
pub fn strategy() -> Arc<dyn Strategy> {
    kinds::strategy(ApiServiceRules)
}

/// `v1.apps`, the name upstream gives the APIService of a group/version (`v1.` for core).
pub fn name_of(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// The Available condition of an APIService object, if any: (status, reason).
pub fn available(obj: &Value) -> Option<(String, String)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"))
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("status"), s("reason"))
        })
}

impl Rules<APIService> for ApiServiceRules {
    const CATEGORIES: Names = &["api-extensions"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn prepare_for_create(&self, obj: &mut APIService) {
        obj.status = None;
    }

    fn prepare_for_update(&self, new: &mut APIService, old: &APIService) {
        new.status = old.status.clone();
    }

    fn validate(&self, a: &APIService) -> ErrorList {
        let mut errs = Vec::new();
        let spec = a.spec.as_ref();
        let group = spec.and_then(|s| s.group.as_deref()).unwrap_or("");
        let version = spec.and_then(|s| s.version.as_deref()).unwrap_or("");
        let name = a.metadata.name.as_deref().unwrap_or("");
        if name != name_of(group, version) {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be `spec.version+\".\"+spec.group`",
            ));
        }
        if version.is_empty() {
            errs.push(FieldError::required("spec.version", ""));
        }
        let Some(spec) = spec else {
            return errs;
        };
        if !(1..=20000).contains(&spec.group_priority_minimum) {
            errs.push(FieldError::invalid(
                "spec.groupPriorityMinimum",
                spec.group_priority_minimum,
                "must be positive and less than 20000",
            ));
        }
        if !(1..=1000).contains(&spec.version_priority) {
            errs.push(FieldError::invalid(
                "spec.versionPriority",
                spec.version_priority,
                "must be positive and less than 1000",
            ));
        }
        let ca = spec.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty());
        let insecure = spec.insecure_skip_tls_verify.unwrap_or(false);
        match &spec.service {
            None => {
                if ca {
                    errs.push(FieldError::invalid(
                        "spec.caBundle",
                        "",
                        "local APIServices may not have a caBundle",
                    ));
                }
                if insecure {
                    errs.push(FieldError::invalid(
                        "spec.insecureSkipTLSVerify",
                        insecure,
                        "local APIServices may not have insecureSkipTLSVerify",
                    ));
                }
            }
            Some(svc) => {
                if svc.namespace.as_deref().unwrap_or("").is_empty() {
                    errs.push(FieldError::required("spec.service.namespace", ""));
                }
                if svc.name.as_deref().unwrap_or("").is_empty() {
                    errs.push(FieldError::required("spec.service.name", ""));
                }
                if let Some(port) = svc.port
                    && !(1..=65535).contains(&port)
                {
                    errs.push(FieldError::invalid(
                        "spec.service.port",
                        port,
                        "port is not valid: must be between 1 and 65535, inclusive",
                    ));
                }
                if insecure && ca {
                    errs.push(FieldError::invalid(
                        "spec.insecureSkipTLSVerify",
                        insecure,
                        "may not be true if caBundle is present",
                    ));
                }
            }
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        let described = |name: &'static str, description: &'static str| Column {
            description: Cow::Borrowed(description),
            ..Column::text(name, description)
        };
        Some(vec![
            Column {
                description: Cow::Borrowed("The name of the resource."),
                ..Column::NAME
            },
            described(
                "Service",
                "The reference to the service that hosts this API endpoint.",
            ),
            described("Available", "Whether this service is available."),
            described("Age", "The age of this resource."),
        ])
    }

    fn cells(&self, a: &APIService, raw: &Value) -> Vec<Value> {
        let service = match a.spec.as_ref().and_then(|s| s.service.as_ref()) {
            Some(svc) => format!(
                "{}/{}",
                svc.namespace.as_deref().unwrap_or(""),
                svc.name.as_deref().unwrap_or("")
            ),
            None => "Local".into(),
        };
        let status = match available(raw) {
            Some((status, _)) if status == "True" => status,
            Some((status, reason)) if !reason.is_empty() => format!("{status} ({reason})"),
            Some((status, _)) => status,
            None => "Unknown".into(),
        };
        vec![
            Value::String(a.metadata.name.clone().unwrap_or_default()),
            Value::String(service),
            Value::String(status),
            Value::String(age(raw
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str))),
        ]
    }
}
