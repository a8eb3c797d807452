//! ValidatingAdmissionPolicies and their bindings compiled once per change: match constraints
//! with parsed selectors, CEL expressions compiled (a compile error kept, to be reported as
//! upstream's failure policy decides at evaluation).

use crate::admission::Attributes;
use crate::admission::equivalent::Equivalent;
use crate::admission::matching::{Selectors, rule_matches};
use crate::apiextensions::cel::Expression;
use crate::registry::equivalence::EquivalentResources;
use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, NamedRuleWithOperations, ParamRef, RuleWithOperations,
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// An expression, or why it does not compile.
pub(super) type Compiled = Result<Expression, String>;

fn compile(source: &str) -> Compiled {
    Expression::compile(source).map_err(|e| format!("compilation failed: {e}"))
}

/// `matchConstraints` or a binding's `matchResources`.
pub(super) struct Constraints {
    rules: Vec<(RuleWithOperations, Vec<String>)>,
    exclude: Vec<(RuleWithOperations, Vec<String>)>,
    selectors: Selectors,
    /// `matchPolicy: Equivalent` (the default).
    equivalent: bool,
}

fn named(rules: Option<Vec<NamedRuleWithOperations>>) -> Vec<(RuleWithOperations, Vec<String>)> {
    rules
        .into_iter()
        .flatten()
        .map(|r| {
            let rule = RuleWithOperations {
                api_groups: r.api_groups,
                api_versions: r.api_versions,
                operations: r.operations,
                resources: r.resources,
                scope: r.scope,
            };
            (rule, r.resource_names.unwrap_or_default())
        })
        .collect()
}

impl Constraints {
    fn new(m: MatchResources) -> Self {
        Self {
            rules: named(m.resource_rules),
            exclude: named(m.exclude_resource_rules),
            selectors: Selectors::new(m.namespace_selector, m.object_selector),
            equivalent: m.match_policy.as_deref() != Some("Exact"),
        }
    }

    /// Whether the request's resource is matched as asked (`Some(None)`), or, under
    /// matchPolicy Equivalent, as an equivalent resource (`Some(Some(_))`).
    pub fn matched(
        &self,
        a: &Attributes<'_>,
        equivalents: &EquivalentResources,
    ) -> Option<Option<Equivalent>> {
        if self.matches_resource(a) {
            return Some(None);
        }
        if !self.equivalent {
            return None;
        }
        Equivalent::find(equivalents, a, |a| self.matches_resource(a)).map(Some)
    }

    /// Whether the request's resource is matched: a resource rule (with its resourceNames; none
    /// at all matches any) and no exclusion.
    pub fn matches_resource(&self, a: &Attributes<'_>) -> bool {
        let hit = |rules: &[(RuleWithOperations, Vec<String>)]| {
            rules.iter().any(|(rule, names)| {
                rule_matches(rule, a) && (names.is_empty() || names.iter().any(|n| n == a.name))
            })
        };
        // No resource rules match everything (a binding narrowing only by selector).
        (self.rules.is_empty() || hit(&self.rules)) && !hit(&self.exclude)
    }

    /// Whether the selectors match: the namespace's labels (`None`: not namespaced) and the
    /// object's or old object's labels.
    pub fn matches_selectors(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Result<bool, String> {
        self.selectors
            .matches(object, a.old_object, namespace_labels)
    }
}

/// One of a policy's validations.
pub(super) struct Validation {
    pub expression: Compiled,
    pub source: String,
    pub message: Option<String>,
    pub message_expression: Option<Compiled>,
    pub reason: Option<String>,
}

/// A compiled ValidatingAdmissionPolicy.
pub(super) struct Policy {
    pub name: String,
    /// `paramKind`: apiVersion and kind.
    pub param_kind: Option<(String, String)>,
    pub constraints: Constraints,
    pub match_conditions: Vec<(String, Compiled)>,
    pub variables: Vec<(String, Compiled)>,
    pub validations: Vec<Validation>,
    /// `auditAnnotations`: each key with its value's expression.
    pub audit_annotations: Vec<(String, Compiled)>,
    /// `failurePolicy: Fail` (the default).
    pub fail_closed: bool,
}

impl Policy {
    pub fn compile(p: ValidatingAdmissionPolicy) -> Option<Self> {
        let name = p.metadata.name?;
        let spec = p.spec?;
        Some(Self {
            name,
            param_kind: spec.param_kind.map(|k| {
                (
                    k.api_version.unwrap_or_default(),
                    k.kind.unwrap_or_default(),
                )
            }),
            constraints: Constraints::new(spec.match_constraints.unwrap_or_default()),
            match_conditions: spec
                .match_conditions
                .into_iter()
                .flatten()
                .map(|c| (c.name, compile(&c.expression)))
                .collect(),
            variables: spec
                .variables
                .into_iter()
                .flatten()
                .map(|v| (v.name, compile(&v.expression)))
                .collect(),
            validations: spec
                .validations
                .into_iter()
                .flatten()
                .map(|v| Validation {
                    expression: compile(&v.expression),
                    source: v.expression,
                    message: v.message.filter(|m| !m.is_empty()),
                    message_expression: v.message_expression.as_deref().map(compile),
                    reason: v.reason,
                })
                .collect(),
            audit_annotations: spec
                .audit_annotations
                .into_iter()
                .flatten()
                .map(|a| (a.key, compile(&a.value_expression)))
                .collect(),
            fail_closed: spec.failure_policy.as_deref() != Some("Ignore"),
        })
    }
}

/// A compiled ValidatingAdmissionPolicyBinding.
pub(super) struct Binding {
    pub name: String,
    pub policy: String,
    pub param_ref: Option<ParamRef>,
    pub match_resources: Option<Constraints>,
    pub deny: bool,
    pub warn: bool,
    /// `Audit`: failures go to the audit event.
    pub audit: bool,
}

impl Binding {
    /// The binding's validationActions, in upstream's order.
    pub fn actions(&self) -> Vec<&'static str> {
        [
            (self.deny, "Deny"),
            (self.warn, "Warn"),
            (self.audit, "Audit"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    pub fn compile(b: ValidatingAdmissionPolicyBinding) -> Option<Self> {
        let name = b.metadata.name?;
        let spec = b.spec?;
        let actions = spec.validation_actions.unwrap_or_default();
        Some(Self {
            name,
            policy: spec.policy_name.unwrap_or_default(),
            param_ref: spec.param_ref,
            match_resources: spec.match_resources.map(Constraints::new),
            deny: actions.iter().any(|a| a == "Deny"),
            warn: actions.iter().any(|a| a == "Warn"),
            audit: actions.iter().any(|a| a == "Audit"),
        })
    }
}
