//! rbac.authorization.k8s.io/v1 rules: policy rule and roleRef validation, subject defaults, and
//! the tables upstream serves (roles: Name and Created At; bindings: Role, Age and subjects).

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::Rules;
use crate::registry::table::{Column, age_cell, created_at_cells, name_cell};
use crate::registry::validation::NameRule;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde_json::Value;

const GROUP: &str = "rbac.authorization.k8s.io";

fn to_json<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Upstream's `ValidatePolicyRule`.
fn validate_rules(rules: Option<&Vec<PolicyRule>>, namespaced: bool) -> ErrorList {
    let mut errs = Vec::new();
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let path = format!("rules[{i}]");
        if rule.verbs.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = rule.non_resource_urls.clone().unwrap_or_default();
        let len = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len);
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    format!("{path}.nonResourceURLs"),
                    to_json(&urls),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if len(&rule.api_groups) + len(&rule.resources) + len(&rule.resource_names) > 0 {
                errs.push(FieldError::invalid(
                    format!("{path}.nonResourceURLs"),
                    to_json(&urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if len(&rule.api_groups) == 0 {
            errs.push(FieldError::required(
                format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if len(&rule.resources) == 0 {
            errs.push(FieldError::required(
                format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

/// Upstream's roleRef and subject checks for a binding; `namespaced` is false for cluster bindings.
fn validate_binding(
    role_ref: &RoleRef,
    subjects: Option<&Vec<Subject>>,
    namespaced: bool,
) -> ErrorList {
    let mut errs = Vec::new();
    if role_ref.api_group != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            role_ref.api_group.as_str(),
            &[GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in NameRule::PathSegment.check(&role_ref.name) {
            errs.push(FieldError::invalid(
                "roleRef.name",
                role_ref.name.as_str(),
                msg,
            ));
        }
    }
    for (i, s) in subjects.into_iter().flatten().enumerate() {
        let path = format!("subjects[{i}]");
        if s.name.is_empty() {
            errs.push(FieldError::required(format!("{path}.name"), ""));
        }
        let api_group = s.api_group.as_deref().unwrap_or("");
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !api_group.is_empty() {
                    errs.push(FieldError::not_supported(
                        format!("{path}.apiGroup"),
                        api_group,
                        &[""],
                    ));
                }
                if !namespaced && s.namespace.as_deref().is_none_or(str::is_empty) {
                    errs.push(FieldError::required(format!("{path}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if api_group != GROUP {
                    errs.push(FieldError::not_supported(
                        format!("{path}.apiGroup"),
                        api_group,
                        &[GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                format!("{path}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

/// Upstream's `SetDefaults_Subject` and roleRef apiGroup defaulting.
fn default_binding(role_ref: &mut RoleRef, subjects: Option<&mut Vec<Subject>>) {
    if role_ref.api_group.is_empty() {
        role_ref.api_group = GROUP.into();
    }
    for s in subjects.into_iter().flatten() {
        // ServiceAccount subjects default to the empty group, which Go's omitempty never
        // writes out; leaving it unset keeps the JSON identical to upstream's.
        if s.api_group.is_none() && matches!(s.kind.as_str(), "User" | "Group") {
            s.api_group = Some(GROUP.into());
        }
    }
}

fn binding_columns() -> Vec<Column> {
    vec![
        Column::NAME,
        Column::text(
            "Role",
            "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.",
        ),
        Column::AGE,
        Column::wide("Users", "Users in the roleBinding"),
        Column::wide("Groups", "Groups in the roleBinding"),
        Column::wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
    ]
}

/// Upstream's `printRoleBinding` cells, with `rbac.SubjectsStrings`.
fn binding_cells(role_ref: &RoleRef, subjects: Option<&Vec<Subject>>, raw: &Value) -> Vec<Value> {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects.into_iter().flatten() {
        match s.kind.as_str() {
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            "ServiceAccount" => sas.push(match s.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            }),
            _ => {}
        }
    }
    vec![
        name_cell(raw),
        format!("{}/{}", role_ref.kind, role_ref.name).into(),
        age_cell(raw),
        users.join(", ").into(),
        groups.join(", ").into(),
        sas.join(", ").into(),
    ]
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> ErrorList {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            "roleRef",
            to_json(new),
            "cannot change roleRef",
        )]
    }
}

/// Role: namespaced policy rules.
pub struct RoleRules;

impl Rules<Role> for RoleRules {
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn validate(&self, r: &Role) -> ErrorList {
        validate_rules(r.rules.as_ref(), true)
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![Column::NAME, Column::CREATED_AT])
    }
    fn cells(&self, _r: &Role, raw: &Value) -> Vec<Value> {
        created_at_cells(raw)
    }
}

/// ClusterRole: cluster-wide policy rules (non-resource URLs allowed).
pub struct ClusterRoleRules;

impl Rules<ClusterRole> for ClusterRoleRules {
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn validate(&self, r: &ClusterRole) -> ErrorList {
        let mut errs = validate_rules(r.rules.as_ref(), false);
        if let Some(agg) = &r.aggregation_rule
            && agg
                .cluster_role_selectors
                .as_ref()
                .is_none_or(Vec::is_empty)
        {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![Column::NAME, Column::CREATED_AT])
    }
    fn cells(&self, _r: &ClusterRole, raw: &Value) -> Vec<Value> {
        created_at_cells(raw)
    }
}

/// RoleBinding: roleRef (Role or ClusterRole) required and immutable.
pub struct RoleBindingRules;

impl Rules<RoleBinding> for RoleBindingRules {
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn default(&self, b: &mut RoleBinding) {
        default_binding(&mut b.role_ref, b.subjects.as_mut());
    }
    fn validate(&self, b: &RoleBinding) -> ErrorList {
        validate_binding(&b.role_ref, b.subjects.as_ref(), true)
    }
    fn validate_update(&self, new: &RoleBinding, old: &RoleBinding) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(binding_columns())
    }
    fn cells(&self, b: &RoleBinding, raw: &Value) -> Vec<Value> {
        binding_cells(&b.role_ref, b.subjects.as_ref(), raw)
    }
}

/// ClusterRoleBinding: roleRef (ClusterRole) required and immutable.
pub struct ClusterRoleBindingRules;

impl Rules<ClusterRoleBinding> for ClusterRoleBindingRules {
    const NAME_RULE: NameRule = NameRule::PathSegment;

    fn default(&self, b: &mut ClusterRoleBinding) {
        default_binding(&mut b.role_ref, b.subjects.as_mut());
    }
    fn validate(&self, b: &ClusterRoleBinding) -> ErrorList {
        validate_binding(&b.role_ref, b.subjects.as_ref(), false)
    }
    fn validate_update(&self, new: &ClusterRoleBinding, old: &ClusterRoleBinding) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }
    fn columns(&self) -> Option<Vec<Column>> {
        Some(binding_columns())
    }
    fn cells(&self, b: &ClusterRoleBinding, raw: &Value) -> Vec<Value> {
        binding_cells(&b.role_ref, b.subjects.as_ref(), raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};
    use serde_json::json;

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy(GROUP, "Thing", rules)
    }

    use super::super::test_support::messages;

    #[test]
    fn role_rules_need_verbs_groups_and_resources() {
        let s = strategy::<Role, _>(RoleRules);
        let obj = json!({"metadata": {"name": "r"}, "rules": [{"resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert_eq!(
            messages(&s.validate(&obj)),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                r#"rules[1].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs"#,
            ]
        );
        let cols: Vec<String> = s.columns().iter().map(|c| c.name.to_string()).collect();
        assert_eq!(cols, ["Name", "Created At"]);
    }

    #[test]
    fn bindings_default_api_groups_and_keep_their_role_ref() {
        let s = strategy::<RoleBinding, _>(RoleBindingRules);
        let mut obj = s
            .decode(json!({
                "metadata": {"name": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}]
            }))
            .unwrap()
            .object;
        s.default(&mut obj);
        assert_eq!(obj["roleRef"]["apiGroup"], GROUP);
        assert_eq!(obj["subjects"][0]["apiGroup"], GROUP);
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "ClusterRole/view");
        assert_eq!(cells[3], "alice");
        assert_eq!(cells[5], "ns/default");
        let mut new = obj.clone();
        new["roleRef"]["name"] = json!("edit");
        let msgs = messages(&s.validate_update(&new, &obj));
        assert!(
            msgs[0].starts_with("roleRef: Invalid value:")
                && msgs[0].ends_with("cannot change roleRef")
        );
    }
}
