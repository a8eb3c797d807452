//! What admission webhooks and policies match a request by, as upstream's
//! `admission/plugin/webhook/predicates` and `rules`: resource rules, the namespace's labels for
//! a namespaceSelector, and the exemption of the resources that configure them.

use super::{Attributes, Operation};
use crate::registry::store::labels_of;
use crate::registry::{RegistryError, Store};
use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde_json::Value;
use std::collections::BTreeMap;

/// The resources no webhook or policy is ever applied to, so that a broken webhook cannot lock out the
/// configuration that would fix it (upstream's `IsExemptAdmissionConfigurationResource`).
pub(super) fn exempt(a: &Attributes<'_>) -> bool {
    a.resource.group == "admissionregistration.k8s.io"
        && matches!(
            &*a.resource.resource,
            "validatingwebhookconfigurations"
                | "mutatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

/// Whether one of `rules` matches the request's operation, group, version, resource and
/// subresource, and scope (upstream's `rules.Matcher`).
pub(super) fn rules_match(rules: &[RuleWithOperations], a: &Attributes<'_>) -> bool {
    rules.iter().any(|rule| rule_matches(rule, a))
}

/// Whether `rule` matches the request (upstream's `rules.Matcher.Matches`).
pub(super) fn rule_matches(rule: &RuleWithOperations, a: &Attributes<'_>) -> bool {
    let info = a.resource;
    let is_namespace = info.group.is_empty() && info.resource == "namespaces";
    let any = |list: &Option<Vec<String>>, value: &str| {
        list.iter().flatten().any(|v| v == "*" || v == value)
    };
    let scope = match rule.scope.as_deref() {
        Some("Namespaced") => !is_namespace && a.namespace.is_some(),
        Some("Cluster") => is_namespace || a.namespace.is_none(),
        _ => true,
    };
    let resource = rule.resources.iter().flatten().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == info.resource) && (sub == "*" || sub == a.subresource)
    });
    any(&rule.operations, a.operation.as_str())
        && any(&rule.api_groups, &info.group)
        && any(&rule.api_versions, &info.version)
        && resource
        && scope
}

/// The labels a namespaceSelector is matched against: `None` for a cluster-scoped request
/// that is not about a namespace (never exempted); a namespace's own labels when it is written;
/// else the namespace's as stored. A store failure is upstream's internal error.
pub(super) async fn namespace_labels(
    namespaces: &Store,
    a: &Attributes<'_>,
    object: Option<&Value>,
) -> Result<Option<BTreeMap<String, String>>, RegistryError> {
    let is_namespace = a.writes("", "namespaces");
    if is_namespace && matches!(a.operation, Operation::Create | Operation::Update) {
        return Ok(object.map(labels_of));
    }
    let name = match a.namespace {
        Some(ns) => ns,
        None if is_namespace => a.name,
        None => return Ok(None),
    };
    match namespaces.get(None, name).await {
        Ok(ns) => Ok(Some(labels_of(&ns))),
        Err(RegistryError::NotFound { .. }) => Ok(Some(BTreeMap::new())),
        Err(e) => Err(RegistryError::Internal(e.to_string())),
    }
}

/// A webhook's or policy's namespaceSelector and objectSelector, parsed (or why not).
pub(super) struct Selectors {
    namespace: Result<Selector, String>,
    object: Result<Selector, String>,
}

impl Selectors {
    /// The selectors as given; absent ones select everything.
    pub fn new(namespace: Option<LabelSelector>, object: Option<LabelSelector>) -> Self {
        let parse = |s: Option<LabelSelector>| {
            Selector::try_from(s.unwrap_or_default()).map_err(|e| e.to_string())
        };
        Self {
            namespace: parse(namespace),
            object: parse(object),
        }
    }

    /// Whether the namespace's labels (`None`: a request nothing exempts) and then the object's
    /// or the old object's labels match, as upstream's namespace and object matchers; `Err`
    /// is why a selector does not parse.
    pub fn matches(
        &self,
        object: Option<&Value>,
        old: Option<&Value>,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Result<bool, String> {
        let namespace = self.namespace.as_ref().map_err(Clone::clone)?;
        if namespace_labels.is_some_and(|labels| !namespace.matches(labels)) {
            return Ok(false);
        }
        let selector = self.object.as_ref().map_err(Clone::clone)?;
        Ok(selector.selects_all()
            || [object, old]
                .into_iter()
                .flatten()
                .any(|o| selector.matches(&labels_of(o))))
    }
}
