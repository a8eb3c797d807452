//! Policy rules as upstream's `rbac/v1/helpers` read them: whether a rule allows a request
//! (`RuleAllows`), whether rules cover others (`validation.Covers`, for escalation checks), and
//! a rule's compact text (`CompactString`) for the messages that list missing permissions.

use crate::auth::authorizer::Attributes;
use k8s_openapi::api::rbac::v1::PolicyRule;

const ALL: &str = "*";

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == ALL || v == value)
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or(&[])
}

/// Upstream's `ResourceMatches`: `*`, the combined `resource/subresource`, or `*/subresource`.
fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// Upstream's `NonResourceURLMatches`: `*`, the path, or a prefix ending in `*`.
fn url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == ALL
        || rule_url == path
        || rule_url
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Upstream's `RuleAllows`.
pub fn allows(a: &Attributes<'_>, rule: &PolicyRule) -> bool {
    if !has(&rule.verbs, a.verb) {
        return false;
    }
    if !a.resource_request {
        return list(&rule.non_resource_urls)
            .iter()
            .any(|u| url_matches(u, a.path));
    }
    let combined;
    let resource = if a.subresource.is_empty() {
        a.resource
    } else {
        combined = format!("{}/{}", a.resource, a.subresource);
        &combined
    };
    has(list(&rule.api_groups), a.api_group)
        && resource_matches(rule, resource, a.subresource)
        && (list(&rule.resource_names).is_empty()
            || list(&rule.resource_names).iter().any(|n| n == a.name))
}

/// One permission atom of a rule, as upstream's `BreakdownRule` splits it.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut atoms = Vec::new();
    let one = |s: &String| Some(vec![s.clone()]);
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let names = list(&rule.resource_names);
                if names.is_empty() {
                    atoms.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        ..PolicyRule::default()
                    });
                }
                for name in names {
                    atoms.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        resource_names: one(name),
                        verbs: vec![verb.clone()],
                        ..PolicyRule::default()
                    });
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            atoms.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    atoms
}

/// Upstream's `ruleCovers`: whether `owner` grants everything `atom` does.
fn covers(owner: &PolicyRule, atom: &PolicyRule) -> bool {
    let all_in = |owned: &[String], wanted: &[String], matches: &dyn Fn(&str, &str) -> bool| {
        wanted.iter().all(|w| owned.iter().any(|o| matches(o, w)))
    };
    let exact_or_all = |o: &str, w: &str| o == ALL || o == w;
    let resource = |o: &str, w: &str| {
        o == ALL
            || o == w
            || (o.starts_with("*/") && w.split_once('/').is_some_and(|(_, sub)| sub == &o[2..]))
    };
    let url = |o: &str, w: &str| {
        o == w
            || o.strip_suffix('*')
                .is_some_and(|p| w.starts_with(p.trim_end_matches('*')))
    };
    all_in(&owner.verbs, &atom.verbs, &exact_or_all)
        && all_in(
            list(&owner.api_groups),
            list(&atom.api_groups),
            &exact_or_all,
        )
        && all_in(list(&owner.resources), list(&atom.resources), &resource)
        && all_in(
            list(&owner.non_resource_urls),
            list(&atom.non_resource_urls),
            &url,
        )
        && (list(&owner.resource_names).is_empty()
            || all_in(
                list(&owner.resource_names),
                list(&atom.resource_names),
                &|o, w| o == w,
            ))
}

/// Upstream's `Covers`: the atoms of `wanted` none of `owned` covers.
pub fn uncovered(owned: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted
        .iter()
        .flat_map(breakdown)
        .filter(|atom| !owned.iter().any(|o| covers(o, atom)))
        .collect()
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quoted(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream's `CompactString`.
pub fn compact(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    let mut part = |name: &str, values: &[String]| {
        if !values.is_empty() {
            parts.push(format!("{name}:{}", go_quoted(values)));
        }
    };
    part("APIGroups", list(&rule.api_groups));
    part("Resources", list(&rule.resources));
    part("NonResourceURLs", list(&rule.non_resource_urls));
    part("ResourceNames", list(&rule.resource_names));
    part("Verbs", &rule.verbs);
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use crate::endpoints::request_info::RequestInfo;
    use http::Method;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            verbs: v(verbs),
            ..PolicyRule::default()
        }
    }

    fn allowed(method: Method, path: &str, r: &PolicyRule) -> bool {
        let user = UserInfo::default();
        let info = RequestInfo::parse(&method, path, None);
        allows(&Attributes::of_request(&user, &info), r)
    }

    #[test]
    fn rules_match_as_upstream() {
        let pods = rule(&[""], &["pods"], &["get", "list"]);
        assert!(allowed(Method::GET, "/api/v1/namespaces/x/pods", &pods));
        assert!(allowed(Method::GET, "/api/v1/namespaces/x/pods/p", &pods));
        assert!(!allowed(
            Method::GET,
            "/api/v1/namespaces/x/pods/p/log",
            &pods
        ));
        assert!(!allowed(
            Method::DELETE,
            "/api/v1/namespaces/x/pods/p",
            &pods
        ));
        assert!(!allowed(
            Method::GET,
            "/apis/apps/v1/namespaces/x/deployments",
            &pods
        ));
        let scale = rule(&["*"], &["*/scale"], &["*"]);
        assert!(allowed(
            Method::PUT,
            "/apis/apps/v1/namespaces/x/deployments/d/scale",
            &scale
        ));
        assert!(!allowed(
            Method::PUT,
            "/apis/apps/v1/namespaces/x/deployments/d",
            &scale
        ));
        let mut named = rule(&[""], &["configmaps"], &["get"]);
        named.resource_names = Some(vec!["one".into()]);
        assert!(allowed(
            Method::GET,
            "/api/v1/namespaces/x/configmaps/one",
            &named
        ));
        assert!(!allowed(
            Method::GET,
            "/api/v1/namespaces/x/configmaps/two",
            &named
        ));
        assert!(!allowed(
            Method::GET,
            "/api/v1/namespaces/x/configmaps",
            &named
        ));
        let urls = PolicyRule {
            non_resource_urls: Some(vec!["/healthz".into(), "/apis/*".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        };
        assert!(allowed(Method::GET, "/healthz", &urls));
        assert!(allowed(Method::GET, "/apis/apps", &urls));
        assert!(!allowed(Method::GET, "/apis", &urls));
        assert!(!allowed(Method::GET, "/api/v1/namespaces/x/pods", &urls));
    }

    #[test]
    fn coverage_lists_the_atoms_missing_in_upstreams_words() {
        let owned = [rule(&[""], &["pods"], &["get", "list"])];
        assert!(uncovered(&owned, &[rule(&[""], &["pods"], &["get"])]).is_empty());
        let missing = uncovered(
            &owned,
            &[rule(&["", "apps"], &["pods"], &["get", "delete"])],
        );
        let texts: Vec<String> = missing.iter().map(compact).collect();
        assert_eq!(
            texts,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:["apps"], Resources:["pods"], Verbs:["get"]}"#,
                r#"{APIGroups:["apps"], Resources:["pods"], Verbs:["delete"]}"#,
            ]
        );
        let admin = [rule(&["*"], &["*"], &["*"])];
        assert!(
            uncovered(
                &admin,
                &[rule(&["apps"], &["deployments/scale"], &["update"])]
            )
            .is_empty()
        );
    }
}
