//! Whether a request matches a FlowSchema's rules (upstream's `rule.go`): a subject naming the
//! user, and a resource rule (verb, group, resource/subresource, namespace or cluster scope)
//! or, for other paths, a non-resource rule.

use crate::auth::UserInfo;
use crate::endpoints::request_info::RequestInfo;
use k8s_openapi::api::flowcontrol::v1::{
    NonResourcePolicyRule, PolicyRulesWithSubjects, ResourcePolicyRule, Subject,
};

/// Whether any of `rules` matches the request.
pub fn matches(rules: &[PolicyRulesWithSubjects], user: &UserInfo, info: &RequestInfo) -> bool {
    rules.iter().any(|rule| {
        rule.subjects.iter().any(|s| matches_subject(s, user))
            && if info.is_resource_request {
                rule.resource_rules
                    .iter()
                    .flatten()
                    .any(|r| matches_resource(r, info))
            } else {
                rule.non_resource_rules
                    .iter()
                    .flatten()
                    .any(|r| matches_non_resource(r, info))
            }
    })
}

fn matches_subject(subject: &Subject, user: &UserInfo) -> bool {
    match subject.kind.as_str() {
        "User" => subject
            .user
            .as_ref()
            .is_some_and(|u| u.name == "*" || u.name == user.name),
        "Group" => subject
            .group
            .as_ref()
            .is_some_and(|g| g.name == "*" || user.groups.contains(&g.name)),
        "ServiceAccount" => subject.service_account.as_ref().is_some_and(|sa| {
            let Some(rest) = user.name.strip_prefix("system:serviceaccount:") else {
                return false;
            };
            match rest.split_once(':') {
                Some((ns, name)) => ns == sa.namespace && (sa.name == "*" || name == sa.name),
                None => false,
            }
        }),
        _ => false,
    }
}

/// Upstream's `containsString`: `x` is in the list, or the list is only the wildcard.
fn contains(list: &[String], x: &str, wildcard: &str) -> bool {
    (list.len() == 1 && list[0] == wildcard) || list.iter().any(|y| y == x)
}

fn matches_resource(rule: &ResourcePolicyRule, info: &RequestInfo) -> bool {
    let resource = if info.subresource.is_empty() {
        std::borrow::Cow::Borrowed(info.resource.as_str())
    } else {
        std::borrow::Cow::Owned(format!("{}/{}", info.resource, info.subresource))
    };
    if !contains(&rule.verbs, info.verb.as_str(), "*")
        || !contains(&rule.resources, &resource, "*")
        || !contains(&rule.api_groups, &info.api_group, "*")
    {
        return false;
    }
    if info.namespace.is_empty() {
        return rule.cluster_scope.unwrap_or(false);
    }
    contains(
        rule.namespaces.as_deref().unwrap_or_default(),
        &info.namespace,
        "*",
    )
}

fn matches_non_resource(rule: &NonResourcePolicyRule, info: &RequestInfo) -> bool {
    if !contains(&rule.verbs, info.verb.as_str(), "*") {
        return false;
    }
    rule.non_resource_urls.iter().any(|url| {
        if url == "*" || *url == info.path {
            return true;
        }
        // "/healthz" also matches "/healthz/etcd"; "/apis/*" matches under "/apis/".
        let prefix = url.strip_suffix('*').unwrap_or(url);
        let prefix = if prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        info.path.starts_with(&prefix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::request_info::Verb;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn rules(v: serde_json::Value) -> Vec<PolicyRulesWithSubjects> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resource_rules_match_verb_group_resource_and_scope() {
        let r = rules(json!([{
            "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}],
            "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"], "namespaces": ["*"]}],
        }]));
        let mut info = RequestInfo {
            is_resource_request: true,
            verb: Verb::Get,
            resource: "pods".into(),
            subresource: "log".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        let sa = user("system:serviceaccount:kube-system:gc", &[]);
        assert!(matches(&r, &sa, &info));
        assert!(!matches(
            &r,
            &user("system:serviceaccount:kube-systemx:gc", &[]),
            &info
        ));
        info.namespace.clear();
        assert!(!matches(&r, &sa, &info), "not cluster scoped");
    }

    #[test]
    fn non_resource_rules_match_paths_and_their_children() {
        let r = rules(json!([{
            "subjects": [{"kind": "Group", "group": {"name": "system:authenticated"}}],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}],
        }]));
        let u = user("alice", &["system:authenticated"]);
        let at = |path: &str| RequestInfo {
            path: path.into(),
            verb: Verb::Get,
            ..Default::default()
        };
        assert!(matches(&r, &u, &at("/healthz")));
        assert!(matches(&r, &u, &at("/healthz/etcd")));
        assert!(matches(&r, &u, &at("/apis/apps")));
        assert!(!matches(&r, &u, &at("/healthzz")));
        assert!(!matches(&r, &user("bob", &[]), &at("/healthz")));
    }
}
