//! The audit policy (`--audit-policy-file`, audit.k8s.io/v1 `Policy`) and its evaluation, as
//! upstream's `policy.Checker`: the first rule matching a request's authorization attributes
//! gives its level and the stages left out.

use crate::auth::authorizer::Attributes;
use serde::Deserialize;
use std::path::Path;

/// How much of a request is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    /// Nothing.
    None,
    /// Who did what to which object, and the answer's code.
    Metadata,
    /// Metadata and the request's body.
    Request,
    /// Metadata, the request's body and the response's.
    RequestResponse,
}

/// A point in a request's life an event is recorded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Stage {
    /// As soon as the request is received.
    RequestReceived,
    /// When a long-running request's response headers are sent.
    ResponseStarted,
    /// When the response is complete.
    ResponseComplete,
    /// When the handler panicked.
    Panic,
}

impl Stage {
    /// The stage's name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

/// A group's resources a rule names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupResources {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

/// One rule of the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    level: Level,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<GroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default)]
    omit_stages: Vec<Stage>,
    omit_managed_fields: Option<bool>,
}

/// An audit.k8s.io/v1 Policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    omit_stages: Vec<Stage>,
    #[serde(default)]
    omit_managed_fields: bool,
}

/// What the policy says of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The level recorded.
    pub level: Level,
    /// The stages not recorded.
    pub omit_stages: Vec<Stage>,
    /// Whether managedFields are left out of recorded objects.
    pub omit_managed_fields: bool,
}

impl Policy {
    /// Reads and checks the policy file, with upstream's words for what is wrong.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read file path {:?}: {e}", path.display()))?;
        let policy: Policy = serde_saphyr::from_str(&text)
            .map_err(|e| format!("failed decoding file {:?}: {e}", path.display()))?;
        if policy.kind != "Policy" || !policy.api_version.starts_with("audit.k8s.io/") {
            return Err(format!(
                "failed decoding file {:?}: expected an audit.k8s.io Policy, got {}/{}",
                path.display(),
                policy.api_version,
                policy.kind
            ));
        }
        if policy.rules.is_empty() {
            return Err(format!(
                "loaded illegal policy with 0 rules from file {}",
                path.display()
            ));
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            if !rule.non_resource_urls.is_empty()
                && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
            {
                return Err(format!(
                    "invalid audit policy: rules[{i}].nonResourceURLs: Invalid value: {:?}: rules cannot apply to both regular resources and non-resource URLs",
                    rule.non_resource_urls
                ));
            }
        }
        Ok(policy)
    }

    /// The decision for a request: the first matching rule's, else level None.
    pub fn evaluate(&self, r: &Attributes<'_>) -> Decision {
        match self.rules.iter().find(|rule| rule.matches(r)) {
            Some(rule) => {
                let mut omit_stages = self.omit_stages.clone();
                omit_stages.extend(rule.omit_stages.iter().copied());
                Decision {
                    level: rule.level,
                    omit_stages,
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                }
            }
            None => Decision {
                level: Level::None,
                omit_stages: Vec::new(),
                omit_managed_fields: false,
            },
        }
    }
}

impl Rule {
    fn matches(&self, r: &Attributes<'_>) -> bool {
        if !self.users.is_empty() && !self.users.contains(&r.user.name) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !self.user_groups.iter().any(|g| r.user.groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|v| v == r.verb) {
            return false;
        }
        if r.resource_request {
            self.non_resource_urls.is_empty()
                && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == r.namespace))
                && (self.resources.is_empty() || self.resources.iter().any(|g| g.matches(r)))
        } else {
            self.resources.is_empty()
                && self.namespaces.is_empty()
                && (self.non_resource_urls.is_empty()
                    || self
                        .non_resource_urls
                        .iter()
                        .any(|u| match u.strip_suffix('*') {
                            Some(prefix) => r.path.starts_with(prefix),
                            None => u == r.path,
                        }))
        }
    }
}

impl GroupResources {
    /// Upstream's `ruleMatchesResource`: the group, then `resource`, `resource/subresource`,
    /// `*/subresource` or `resource/*`, then resourceNames.
    fn matches(&self, r: &Attributes<'_>) -> bool {
        if self.group != r.api_group {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if r.subresource.is_empty() {
            r.resource.to_string()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let named =
            || self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == r.name);
        self.resources.iter().any(|res| {
            (res == &combined
                || res == "*"
                || (res == &format!("*/{}", r.subresource) && !r.subresource.is_empty())
                || (res == &format!("{}/*", r.resource) && !r.subresource.is_empty()))
                && named()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ALICE: std::sync::LazyLock<crate::auth::UserInfo> =
        std::sync::LazyLock::new(|| crate::auth::UserInfo {
            name: "alice".into(),
            ..Default::default()
        });

    fn facts<'a>(verb: &'a str, group: &'a str, resource: &'a str, sub: &'a str) -> Attributes<'a> {
        Attributes {
            user: &ALICE,
            verb,
            resource_request: true,
            path: "",
            namespace: "default",
            api_group: group,
            api_version: "v1",
            resource,
            subresource: sub,
            name: "x",
            field_selector: "",
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let policy: Policy = serde_saphyr::from_str(
            r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [watch]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
  resources: [{group: "", resources: [configmaps, "pods/*"]}]
  omitStages: [ResponseStarted]
- level: Request
  nonResourceURLs: ["/healthz*"]
"#,
        )
        .unwrap();
        let level = |f: Attributes<'_>| policy.evaluate(&f).level;
        assert_eq!(level(facts("get", "", "secrets", "")), Level::Metadata);
        assert_eq!(level(facts("watch", "", "secrets", "")), Level::None);
        assert_eq!(
            level(facts("create", "", "configmaps", "")),
            Level::RequestResponse
        );
        assert_eq!(
            level(facts("get", "", "pods", "log")),
            Level::RequestResponse
        );
        assert_eq!(level(facts("get", "", "pods", "")), Level::None);
        assert_eq!(level(facts("get", "apps", "configmaps", "")), Level::None);
        let d = policy.evaluate(&facts("create", "", "configmaps", ""));
        assert_eq!(
            d.omit_stages,
            vec![Stage::RequestReceived, Stage::ResponseStarted]
        );
        let health = Attributes {
            resource_request: false,
            path: "/healthz/etcd",
            ..facts("get", "", "", "")
        };
        assert_eq!(level(health), Level::Request);
    }
}
