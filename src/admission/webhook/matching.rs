//! Whether a webhook is called for a request, as upstream's `generic.Webhook.ShouldCallHook`:
//! its rules, then its namespaceSelector, its objectSelector, and its matchConditions.

use super::hook::Hook;
use crate::admission::Attributes;
use crate::apiextensions::cel::CelValue;

/// Whether one of the webhook's rules matches the request.
pub(super) fn rules_match(hook: &Hook, a: &Attributes<'_>) -> bool {
    crate::admission::matching::rules_match(&hook.rules, a)
}

/// Whether every matchCondition holds: a false one skips the webhook whatever the others
/// give; otherwise the first error is the answer (upstream's `matchconditions.Matcher`).
pub(super) fn conditions_hold(hook: &Hook, variables: &[(&str, CelValue)]) -> Result<bool, String> {
    let conditions = hook.match_conditions.as_ref().map_err(Clone::clone)?;
    let mut error = None;
    for (name, expression) in conditions {
        match expression.evaluate_bool(variables) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                error.get_or_insert_with(|| format!("matchCondition {name:?}: {e}"));
            }
        }
    }
    error.map_or(Ok(true), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{Operation, Options, Warnings};
    use crate::auth::UserInfo;
    use crate::registry::ResourceInfo;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
    use serde_json::{Value, json};

    fn info(group: &str, resource: &str) -> ResourceInfo {
        crate::registry::kinds::builtin()
            .into_iter()
            .map(|s| s.info().clone())
            .find(|i| i.group == group && i.resource == resource)
            .unwrap()
    }

    fn hook(rules: Value) -> Hook {
        let w: MutatingWebhook = serde_json::from_value(json!({
            "name": "w", "rules": rules, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:1/"},
        }))
        .unwrap();
        Hook::compile("c", 0, w)
    }

    fn matches(rules: Value, info: &ResourceInfo, subresource: &str, ns: Option<&str>) -> bool {
        let (user, warnings) = (UserInfo::default(), Warnings::default());
        let a = Attributes {
            operation: Operation::Update,
            resource: info,
            subresource,
            namespace: ns,
            name: "x",
            old_object: None,
            user: &user,
            dry_run: false,
            options: Options::Update { field_manager: "" },
            warnings: &warnings,
            annotations: &Default::default(),
        };
        rules_match(&hook(rules), &a)
    }

    #[test]
    fn rules_match_resources_subresources_and_scopes_as_upstream() {
        let pods = info("", "pods");
        let rule = |resources: Value, scope: &str| {
            json!([{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["*"],
                "resources": resources, "scope": scope}])
        };
        // `*` is every resource but no subresource; `*/*` everything; `pods/*` pods' subresources.
        assert!(matches(rule(json!(["*"]), "*"), &pods, "", Some("d")));
        assert!(!matches(
            rule(json!(["*"]), "*"),
            &pods,
            "status",
            Some("d")
        ));
        assert!(matches(
            rule(json!(["*/*"]), "*"),
            &pods,
            "status",
            Some("d")
        ));
        assert!(matches(
            rule(json!(["pods/*"]), "*"),
            &pods,
            "status",
            Some("d")
        ));
        assert!(!matches(
            rule(json!(["pods"]), "*"),
            &pods,
            "status",
            Some("d")
        ));
        assert!(matches(
            rule(json!(["*/status"]), "*"),
            &pods,
            "status",
            Some("d")
        ));
        // Scope: a namespace object counts as cluster-scoped.
        let namespaces = info("", "namespaces");
        assert!(matches(
            rule(json!(["*"]), "Cluster"),
            &namespaces,
            "",
            None
        ));
        assert!(!matches(
            rule(json!(["*"]), "Namespaced"),
            &namespaces,
            "",
            None
        ));
        assert!(!matches(
            rule(json!(["*"]), "Cluster"),
            &pods,
            "",
            Some("d")
        ));
        // Operation and group must match too.
        assert!(!matches(
            json!([{"operations": ["CREATE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]),
            &pods,
            "",
            Some("d")
        ));
        assert!(!matches(
            json!([{"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["*"]}]),
            &pods,
            "",
            Some("d")
        ));
    }

    #[test]
    fn an_object_selector_matches_the_new_or_the_old_labels() {
        let w: MutatingWebhook = serde_json::from_value(json!({
            "name": "w", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:1/"},
            "objectSelector": {"matchLabels": {"a": "b"}},
        }))
        .unwrap();
        let h = Hook::compile("c", 0, w);
        let with = json!({"metadata": {"labels": {"a": "b"}}});
        let without = json!({"metadata": {}});
        let matches = |new, old| h.selectors.matches(new, old, None);
        assert_eq!(matches(Some(&without), Some(&with)), Ok(true));
        assert_eq!(matches(Some(&without), None), Ok(false));
        assert_eq!(matches(None, Some(&with)), Ok(true));
    }
}
