//! Helpers the workload kinds share: label selectors, pod template defaults and checks, int-or-percent
//! values, and the cells upstream's printers build from them.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::selectors::{label_selector_matches, label_selector_string};
use crate::registry::table::Column;
use crate::registry::validation;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::BTreeMap;

/// Upstream's `validation.IsValidPercent` message.
const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
/// Upstream's `ValidateNonnegativeField` message.
/// [`Rules::EMBEDDED_METADATA`](crate::registry::strategy::Rules::EMBEDDED_METADATA) of a kind
/// whose pod template is `spec.template`.
pub const TEMPLATE_METADATA: &[&str] = &[
    "spec/template/metadata",
    "spec/template/spec/volumes/*/ephemeral/volumeClaimTemplate/metadata",
];

pub const NONNEGATIVE: &str = "must be greater than or equal to 0";

/// The Containers column of workload tables (`-o wide`).
pub const CONTAINERS: Column =
    Column::wide("Containers", "Names of each container in the template.");
/// The Images column of workload tables (`-o wide`).
pub const IMAGES: Column = Column::wide(
    "Images",
    "Images referenced by each container in the template.",
);

/// Pushes `must be greater than or equal to 0` when `v` is negative.
pub fn nonnegative(errs: &mut ErrorList, v: Option<i64>, field: &str) {
    if let Some(v) = v.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(field, v, NONNEGATIVE));
    }
}

/// Whether a selector has neither matchLabels nor matchExpressions.
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Upstream's `ValidateLabelSelector`: label keys and values, operators and their values.
pub fn label_selector(sel: &LabelSelector, field: &str) -> ErrorList {
    let mut errs = Vec::new();
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let path = format!("{field}.matchExpressions[{i}]");
        let n_values = req.values.as_ref().map_or(0, Vec::len);
        match req.operator.as_str() {
            "In" | "NotIn" if n_values == 0 => errs.push(FieldError::required(
                format!("{path}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if n_values > 0 => errs.push(FieldError::forbidden(
                format!("{path}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                format!("{path}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        for msg in validation::qualified_name(&req.key) {
            errs.push(FieldError::invalid(
                format!("{path}.key"),
                req.key.as_str(),
                msg,
            ));
        }
    }
    if let Some(labels) = &sel.match_labels {
        let map = serde_json::to_value(labels).unwrap_or(Value::Null);
        errs.extend(validation::labels(
            Some(&map),
            &format!("{field}.matchLabels"),
        ));
    }
    errs
}

/// Upstream's `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects nothing.
pub fn format_selector(sel: Option<&LabelSelector>) -> String {
    match sel.map(label_selector_string) {
        Some(s) if !s.is_empty() => s,
        _ => "<none>".into(),
    }
}

/// Upstream's `labels.FormatLabels`: `k=v` sorted by key, `<none>` when empty.
pub fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let s = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if s.is_empty() { "<none>".into() } else { s }
}

/// The labels of a pod template (empty when unset).
pub fn template_labels(t: &PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// Upstream's `layoutContainerCells`: container names and images, comma-separated.
pub fn container_cells(t: Option<&PodTemplateSpec>) -> (Value, Value) {
    let containers = t
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect();
    (names.join(",").into(), images.join(",").into())
}

/// Upstream's pod defaults inside a workload's template.
pub fn default_template(t: &mut PodTemplateSpec) {
    super::corev1::podspec::default_pod_spec(t.spec.get_or_insert_with(PodSpec::default));
}

/// The pod template checks users meet most (a subset of upstream's `ValidatePodTemplateSpec`).
pub fn validate_template(t: &PodTemplateSpec, field: &str) -> ErrorList {
    let mut errs = validate_template_metadata(t, field);
    let empty = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&empty);
    let spec_path = format!("{field}.spec");
    errs.extend(super::corev1::podspec::validate_pod_spec(
        spec, &spec_path, false,
    ));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            format!("{spec_path}.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The labels and annotations of a pod template (all StatefulSet validation checks of it).
pub fn validate_template_metadata(t: &PodTemplateSpec, field: &str) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(meta) = &t.metadata {
        let labels = meta
            .labels
            .as_ref()
            .and_then(|l| serde_json::to_value(l).ok());
        errs.extend(validation::labels(
            labels.as_ref(),
            &format!("{field}.labels"),
        ));
        let annotations = meta
            .annotations
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok());
        errs.extend(validation::annotations(
            annotations.as_ref(),
            &format!("{field}.annotations"),
        ));
    }
    errs
}

/// The selector/template checks shared by Deployments, ReplicaSets and DaemonSets: selector present
/// and valid, matching the template labels, and a valid always-restarting template.
pub fn selector_and_template(
    kind: &str,
    sel: &LabelSelector,
    template: Option<&PodTemplateSpec>,
    errs: &mut ErrorList,
) {
    // k8s-openapi decodes a missing selector as an empty one, so both read as "missing" here.
    let empty = selector_is_empty(sel);
    if empty {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        errs.extend(label_selector(sel, "spec.selector"));
    }
    let default_template = PodTemplateSpec::default();
    let t = template.unwrap_or(&default_template);
    let labels = template_labels(t);
    if empty || !label_selector_matches(sel, &labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            serde_json::to_value(&labels).unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_template(t, "spec.template"));
    runs_forever(t, kind, errs);
}

/// The template checks of a controller whose pods run until deleted (ReplicaSet, Deployment,
/// StatefulSet, DaemonSet): restartPolicy Always and no activeDeadlineSeconds.
pub fn runs_forever(t: &PodTemplateSpec, kind: &str, errs: &mut ErrorList) {
    let spec = t.spec.as_ref();
    let restart = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if spec.is_some_and(|s| s.active_deadline_seconds.is_some()) {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// The value of an int-or-percent: the percentage or the integer, and whether it is a percentage.
pub fn int_or_percent(v: &IntOrString) -> (i64, bool) {
    match v {
        IntOrString::Int(i) => (i64::from(*i), false),
        IntOrString::String(s) => match s.strip_suffix('%').map(str::parse::<i64>) {
            Some(Ok(p)) if !s.starts_with('-') && !s.starts_with('+') => (p, true),
            _ => (s.parse().unwrap_or(0), false),
        },
    }
}

fn is_valid_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The JSON form of an int-or-string, for error values.
pub fn intstr_value(v: &IntOrString) -> Value {
    match v {
        IntOrString::Int(i) => Value::from(*i),
        IntOrString::String(s) => Value::from(s.as_str()),
    }
}

/// Upstream's `intstr.String()`: the integer or the string as is.
pub fn intstr_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Upstream's `ValidatePositiveIntOrPercent`.
pub fn positive_int_or_percent(v: &IntOrString, field: &str) -> ErrorList {
    match v {
        IntOrString::String(s) if !is_valid_percent(s) => {
            vec![FieldError::invalid(field, s.as_str(), PERCENT_MSG)]
        }
        IntOrString::Int(i) if *i < 0 => vec![FieldError::invalid(field, *i, NONNEGATIVE)],
        _ => Vec::new(),
    }
}

/// Upstream's `IsNotMoreThan100Percent`.
pub fn not_more_than_100_percent(v: &IntOrString, field: &str) -> ErrorList {
    match v {
        IntOrString::String(s) if is_valid_percent(s) && int_or_percent(v).0 > 100 => {
            vec![FieldError::invalid(
                field,
                s.as_str(),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_selectors_format_as_none() {
        assert_eq!(format_selector(Some(&LabelSelector::default())), "<none>");
    }

    #[test]
    fn percent_values_are_checked_like_upstream() {
        let bad = IntOrString::String("25".into());
        assert_eq!(
            positive_int_or_percent(&bad, "f")[0].to_string(),
            format!("f: Invalid value: \"25\": {PERCENT_MSG}")
        );
        let big = IntOrString::String("150%".into());
        assert_eq!(not_more_than_100_percent(&big, "f").len(), 1);
        assert_eq!(
            int_or_percent(&IntOrString::String("25%".into())),
            (25, true)
        );
    }
}
