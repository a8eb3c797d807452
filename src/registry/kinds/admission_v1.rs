//! admissionregistration.k8s.io/v1 rules: webhook configuration defaults and checks,
//! ValidatingAdmissionPolicy(Binding) defaults, and upstream's printer columns.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};
use std::collections::HashSet;

/// The fields both webhook kinds share, so one set of defaults and checks serves both.
struct Hook<'a> {
    name: &'a str,
    failure_policy: &'a mut Option<String>,
    match_policy: &'a mut Option<String>,
    namespace_selector: &'a mut Option<LabelSelector>,
    object_selector: &'a mut Option<LabelSelector>,
    side_effects: &'a str,
    timeout_seconds: &'a mut Option<i32>,
    rules: &'a mut Option<Vec<RuleWithOperations>>,
    client_config: &'a mut WebhookClientConfig,
    admission_review_versions: &'a [String],
}

fn validating(w: &mut ValidatingWebhook) -> Hook<'_> {
    Hook {
        name: &w.name,
        failure_policy: &mut w.failure_policy,
        match_policy: &mut w.match_policy,
        namespace_selector: &mut w.namespace_selector,
        object_selector: &mut w.object_selector,
        side_effects: &w.side_effects,
        timeout_seconds: &mut w.timeout_seconds,
        rules: &mut w.rules,
        client_config: &mut w.client_config,
        admission_review_versions: &w.admission_review_versions,
    }
}

fn mutating(w: &mut MutatingWebhook) -> Hook<'_> {
    Hook {
        name: &w.name,
        failure_policy: &mut w.failure_policy,
        match_policy: &mut w.match_policy,
        namespace_selector: &mut w.namespace_selector,
        object_selector: &mut w.object_selector,
        side_effects: &w.side_effects,
        timeout_seconds: &mut w.timeout_seconds,
        rules: &mut w.rules,
        client_config: &mut w.client_config,
        admission_review_versions: &w.admission_review_versions,
    }
}

/// Upstream's `SetDefaults_ValidatingWebhook`/`MutatingWebhook`, `Rule` and `ServiceReference`.
fn default_hook(h: Hook<'_>) {
    h.failure_policy.get_or_insert_with(|| "Fail".into());
    h.match_policy.get_or_insert_with(|| "Equivalent".into());
    h.namespace_selector.get_or_insert_with(Default::default);
    h.object_selector.get_or_insert_with(Default::default);
    h.timeout_seconds.get_or_insert(10);
    for r in h.rules.iter_mut().flatten() {
        r.scope.get_or_insert_with(|| "*".into());
    }
    if let Some(svc) = h.client_config.service.as_mut() {
        svc.port.get_or_insert(443);
    }
}

/// The webhook checks users meet most, under `webhooks[i]`.
fn validate_hook(h: Hook<'_>, i: usize, names: &mut HashSet<String>, errs: &mut ErrorList) {
    let path = format!("webhooks[{i}]");
    if h.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if h.name.split('.').count() < 3 {
        errs.push(FieldError::invalid(
            format!("{path}.name"),
            h.name,
            "should be a domain with at least three segments separated by dots",
        ));
    } else if !names.insert(h.name.to_string()) {
        errs.push(FieldError::duplicate(format!("{path}.name"), h.name));
    }
    match h.side_effects {
        "None" | "NoneOnDryRun" => {}
        "" => errs.push(FieldError::required(
            format!("{path}.sideEffects"),
            r#"must specify one of "None", "NoneOnDryRun""#,
        )),
        other => errs.push(FieldError::not_supported(
            format!("{path}.sideEffects"),
            other,
            &["None", "NoneOnDryRun"],
        )),
    }
    if h.admission_review_versions.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.admissionReviewVersions"),
            r#"must specify one of "v1", "v1beta1""#,
        ));
    }
    let cc = &h.client_config;
    match (&cc.url, &cc.service) {
        (None, None) | (Some(_), Some(_)) => errs.push(FieldError::required(
            format!("{path}.clientConfig"),
            "exactly one of url or service is required",
        )),
        _ => {}
    }
    if let Some(t) = h.timeout_seconds.filter(|t| !(1..=30).contains(t)) {
        errs.push(FieldError::invalid(
            format!("{path}.timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    if let Some(p) = h.failure_policy.as_deref()
        && !matches!(p, "Ignore" | "Fail")
    {
        errs.push(FieldError::not_supported(
            format!("{path}.failurePolicy"),
            p,
            &["Fail", "Ignore"],
        ));
    }
}

fn webhook_columns() -> Vec<Column> {
    vec![
        Column::NAME,
        Column::integer(
            "Webhooks",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        Column::AGE,
    ]
}

/// ValidatingWebhookConfiguration.
pub struct ValidatingWebhookConfigurationRules;

impl Rules<ValidatingWebhookConfiguration> for ValidatingWebhookConfigurationRules {
    const CATEGORIES: Names = &["api-extensions"];

    fn default(&self, c: &mut ValidatingWebhookConfiguration) {
        for w in c.webhooks.iter_mut().flatten() {
            default_hook(validating(w));
        }
    }
    fn validate(&self, c: &ValidatingWebhookConfiguration) -> ErrorList {
        let (mut errs, mut names) = (Vec::new(), HashSet::new());
        for (i, w) in c.webhooks.clone().iter_mut().flatten().enumerate() {
            validate_hook(validating(w), i, &mut names, &mut errs);
        }
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(webhook_columns())
    }
    fn cells(&self, c: &ValidatingWebhookConfiguration, raw: &Value) -> Vec<Value> {
        let n = c.webhooks.as_ref().map_or(0, Vec::len);
        vec![name_cell(raw), json!(n), age_cell(raw)]
    }
}

/// MutatingWebhookConfiguration (reinvocationPolicy defaults to Never).
pub struct MutatingWebhookConfigurationRules;

impl Rules<MutatingWebhookConfiguration> for MutatingWebhookConfigurationRules {
    const CATEGORIES: Names = &["api-extensions"];

    fn default(&self, c: &mut MutatingWebhookConfiguration) {
        for w in c.webhooks.iter_mut().flatten() {
            w.reinvocation_policy.get_or_insert_with(|| "Never".into());
            default_hook(mutating(w));
        }
    }
    fn validate(&self, c: &MutatingWebhookConfiguration) -> ErrorList {
        let (mut errs, mut names) = (Vec::new(), HashSet::new());
        for (i, w) in c.webhooks.clone().iter_mut().flatten().enumerate() {
            validate_hook(mutating(w), i, &mut names, &mut errs);
        }
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(webhook_columns())
    }
    fn cells(&self, c: &MutatingWebhookConfiguration, raw: &Value) -> Vec<Value> {
        let n = c.webhooks.as_ref().map_or(0, Vec::len);
        vec![name_cell(raw), json!(n), age_cell(raw)]
    }
}

fn default_match_resources(m: &mut MatchResources) {
    m.match_policy.get_or_insert_with(|| "Equivalent".into());
    m.namespace_selector.get_or_insert_with(Default::default);
    m.object_selector.get_or_insert_with(Default::default);
    for r in m
        .resource_rules
        .iter_mut()
        .flatten()
        .chain(m.exclude_resource_rules.iter_mut().flatten())
    {
        r.scope.get_or_insert_with(|| "*".into());
    }
}

/// ValidatingAdmissionPolicy: upstream's defaults and `printValidatingAdmissionPolicy`.
pub struct ValidatingAdmissionPolicyRules;

impl Rules<ValidatingAdmissionPolicy> for ValidatingAdmissionPolicyRules {
    const CATEGORIES: Names = &["api-extensions"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn default(&self, p: &mut ValidatingAdmissionPolicy) {
        let spec = p.spec.get_or_insert_with(Default::default);
        spec.failure_policy.get_or_insert_with(|| "Fail".into());
        if let Some(m) = spec.match_constraints.as_mut() {
            default_match_resources(m);
        }
    }
    fn validate(&self, p: &ValidatingAdmissionPolicy) -> ErrorList {
        let mut errs = Vec::new();
        let spec = p.spec.clone().unwrap_or_default();
        if spec.match_constraints.is_none() {
            errs.push(FieldError::required(
                "spec.matchConstraints",
                "must be specified",
            ));
        }
        let n = spec.validations.as_ref().map_or(0, Vec::len)
            + spec.audit_annotations.as_ref().map_or(0, Vec::len);
        if n == 0 {
            errs.push(FieldError::required(
                "spec.validations",
                "validations or auditAnnotations must contain at least one item",
            ));
        }
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer(
                "Validations",
                "Validations indicates the number of validation rules defined in this configuration",
            ),
            Column::text(
                "ParamKind",
                "ParamKind specifies the kind of resources used to parameterize this policy",
            ),
            Column::AGE,
        ])
    }
    fn cells(&self, p: &ValidatingAdmissionPolicy, raw: &Value) -> Vec<Value> {
        let spec = p.spec.clone().unwrap_or_default();
        let param_kind = spec.param_kind.map_or_else(
            || "<unset>".to_string(),
            |k| {
                format!(
                    "{}/{}",
                    k.api_version.unwrap_or_default(),
                    k.kind.unwrap_or_default()
                )
            },
        );
        vec![
            name_cell(raw),
            json!(spec.validations.map_or(0, |v| v.len())),
            param_kind.into(),
            age_cell(raw),
        ]
    }
}

/// ValidatingAdmissionPolicyBinding: policyName and validationActions required; printer.
pub struct ValidatingAdmissionPolicyBindingRules;

impl Rules<ValidatingAdmissionPolicyBinding> for ValidatingAdmissionPolicyBindingRules {
    const CATEGORIES: Names = &["api-extensions"];

    fn default(&self, b: &mut ValidatingAdmissionPolicyBinding) {
        let spec = b.spec.get_or_insert_with(Default::default);
        if let Some(m) = spec.match_resources.as_mut() {
            default_match_resources(m);
        }
    }
    fn validate(&self, b: &ValidatingAdmissionPolicyBinding) -> ErrorList {
        let mut errs = Vec::new();
        let spec = b.spec.clone().unwrap_or_default();
        if spec.policy_name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required("spec.policyName", ""));
        }
        let actions = spec.validation_actions.unwrap_or_default();
        if actions.is_empty() {
            errs.push(FieldError::required(
                "spec.validationActions",
                "at least one validation action is required",
            ));
        }
        for (i, a) in actions.iter().enumerate() {
            if !matches!(a.as_str(), "Deny" | "Warn" | "Audit") {
                errs.push(FieldError::not_supported(
                    format!("spec.validationActions[{i}]"),
                    a.as_str(),
                    &["Audit", "Deny", "Warn"],
                ));
            }
        }
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "PolicyName",
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
            Column::text(
                "ParamRef",
                "ParamRef indicates the param resource which sets the configration param",
            ),
            Column::AGE,
        ])
    }
    fn cells(&self, b: &ValidatingAdmissionPolicyBinding, raw: &Value) -> Vec<Value> {
        let spec = b.spec.clone().unwrap_or_default();
        let param = match spec.param_ref {
            None => "<unset>".to_string(),
            Some(p) => match (p.name.filter(|n| !n.is_empty()), p.selector) {
                (Some(name), _) => match p.namespace.filter(|n| !n.is_empty()) {
                    Some(ns) => format!("{ns}/{name}"),
                    None => format!("*/{name}"),
                },
                (None, Some(sel)) => crate::registry::selectors::label_selector_string(&sel),
                (None, None) => "<unset>".to_string(),
            },
        };
        vec![
            name_cell(raw),
            spec.policy_name.unwrap_or_default().into(),
            param.into(),
            age_cell(raw),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};
    use crate::registry::validation::NameRule;

    #[test]
    fn webhooks_get_upstreams_defaults_and_need_side_effects() {
        let info = crate::registry::ResourceInfo {
            group: "admissionregistration.k8s.io".into(),
            version: "v1".into(),
            kind: "ValidatingWebhookConfiguration".into(),
            resource: "validatingwebhookconfigurations".into(),
            singular: "validatingwebhookconfiguration".into(),
            namespaced: false,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: std::borrow::Cow::Borrowed(&[]),
            subresources: Vec::new(),
            name_rule: NameRule::Dns1123Subdomain,
            scale: None,
            tracks_generation: false,
            delete_returns_object: false,
        };
        let s = Typed::<ValidatingWebhookConfiguration, _>::new(
            info,
            ValidatingWebhookConfigurationRules,
        );
        let mut obj = s
            .decode(json!({
                "metadata": {"name": "v"},
                "webhooks": [{"name": "check.example.com", "admissionReviewVersions": ["v1"],
                    "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
                    "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]
            }))
            .unwrap()
            .object;
        s.default(&mut obj);
        let w = &obj["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["rules"][0]["scope"], "*");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        let errs: Vec<String> = s.validate(&obj).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            vec![
                r#"webhooks[0].sideEffects: Required value: must specify one of "None", "NoneOnDryRun""#
            ]
        );
        assert_eq!(s.cells(&obj)[1], 1);
    }
}
