//! Which group versions and resources are served: `--runtime-config` parsed and checked as
//! upstream's `APIEnablementOptions` (ConvertLegacyGroup, then Validate), and merged over the
//! served resources as upstream's `resourceconfig.MergeAPIResourceConfigs`.
//!
//! kubeboot serves only stable versions, all on by default, so the default configuration is
//! "everything kubeboot has"; a key that turns on something kubeboot does not have is not an
//! error (upstream has it) but a warning, since the flag cannot do what it says.

use std::collections::BTreeMap;

/// Keys that address every version matching a pattern, applied before the specific keys.
const MATCHERS: [&str; 4] = ["api/all", "api/ga", "api/beta", "api/alpha"];

/// Every API group kube-apiserver 1.33 registers (its `legacyscheme` plus apiextensions and
/// apiregistration): a key naming any other group is an unknown group, as upstream.
const UPSTREAM_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "imagepolicy.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// A `--runtime-config` problem, in upstream's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeConfigError {
    /// `api/all=false` alone would serve nothing.
    #[error("--runtime-config: invalid key with only api/all=false")]
    OnlyAllFalse,
    /// A key that is neither a matcher nor group/version(/resource).
    #[error("--runtime-config: runtime-config invalid key {0}")]
    InvalidKey(String),
    /// Keys naming groups upstream does not have.
    #[error("--runtime-config: unknown api groups {0}")]
    UnknownGroups(String),
    /// A matcher's value that is not exactly true or false.
    #[error("--runtime-config: invalid value {key}={value}")]
    InvalidMatcherValue {
        /// The matcher.
        key: String,
        /// Its value.
        value: String,
    },
    /// A value that is not a boolean as Go's `strconv.ParseBool` reads one.
    #[error(
        "--runtime-config: invalid value of {key}: {value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax"
    )]
    InvalidValue {
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A resource key whose resource is not lowercase.
    #[error(
        "--runtime-config: invalid key {key}: group/version/resource and resource is always lowercase plural, not {resource:?}"
    )]
    ResourceCase {
        /// The key.
        key: String,
        /// The resource as given.
        resource: String,
    },
    /// A version of a served group that upstream does not register either.
    #[error("--runtime-config: group version {0} that has not been registered")]
    UnregisteredVersion(String),
}

/// `--runtime-config` once parsed and checked: keys (legacy core keys converted to `/v1`) with
/// their boolean values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    matchers: Vec<(&'static str, bool)>,
    versions: BTreeMap<(String, String), bool>,
    resources: BTreeMap<(String, String, String), bool>,
}

/// Go's `strconv.ParseBool`, with "" meaning true as upstream's `getRuntimeConfigValue` reads it.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `schema.ParseGroupVersion` of `group/version`, without its error (two tokens always parse).
fn group_version(key: &str) -> (String, String) {
    match key.split_once('/') {
        Some((group, version)) => (group.to_string(), version.to_string()),
        None => (String::new(), key.to_string()),
    }
}

impl RuntimeConfig {
    /// Parses the flag's `key[=value]` entries (later keys win, as in upstream's ConfigurationMap).
    pub fn parse(entries: &[String]) -> Result<Self, RuntimeConfigError> {
        let mut map = BTreeMap::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            map.insert(key.trim().to_string(), value.trim().to_string());
        }
        // ConvertLegacyGroup: api/legacy means nothing; v1, v1/<r>, api/v1, api/v1/<r> are core.
        map.remove("api/legacy");
        let map: BTreeMap<String, String> = map
            .into_iter()
            .map(|(key, value)| {
                let key = if key == "v1" || key.starts_with("v1/") {
                    format!("/{key}")
                } else if key == "api/v1" {
                    "/v1".to_string()
                } else if key.starts_with("api/v1/") && key.split('/').count() == 3 {
                    format!("/v1/{}", &key["api/v1/".len()..])
                } else {
                    key
                };
                (key, value)
            })
            .collect();

        if map.len() == 1 && map.get("api/all").map(String::as_str) == Some("false") {
            return Err(RuntimeConfigError::OnlyAllFalse);
        }
        let mut config = Self::default();
        let mut unknown = Vec::new();
        for matcher in MATCHERS {
            if let Some(value) = map.get(matcher) {
                let enabled = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(RuntimeConfigError::InvalidMatcherValue {
                            key: matcher.into(),
                            value: value.clone(),
                        });
                    }
                };
                config.matchers.push((matcher, enabled));
            }
        }
        for (key, value) in map.iter().filter(|(k, _)| !MATCHERS.contains(&k.as_str())) {
            let tokens: Vec<&str> = key.split('/').collect();
            if !(2..=3).contains(&tokens.len()) {
                return Err(RuntimeConfigError::InvalidKey(key.clone()));
            }
            let (group, version) = group_version(&format!("{}/{}", tokens[0], tokens[1]));
            if !UPSTREAM_GROUPS.contains(&group.as_str()) {
                if !unknown.contains(&group) {
                    unknown.push(group);
                }
                continue;
            }
            let enabled = parse_bool(value).ok_or_else(|| RuntimeConfigError::InvalidValue {
                key: key.clone(),
                value: value.clone(),
            })?;
            match tokens.get(2) {
                None => {
                    config.versions.insert((group, version), enabled);
                }
                Some(resource) if resource.to_lowercase() != *resource => {
                    return Err(RuntimeConfigError::ResourceCase {
                        key: key.clone(),
                        resource: resource.to_string(),
                    });
                }
                Some(resource) => {
                    config
                        .resources
                        .insert((group, version, resource.to_string()), enabled);
                }
            }
        }
        if !unknown.is_empty() {
            return Err(RuntimeConfigError::UnknownGroups(unknown.join(",")));
        }
        Ok(config)
    }
}

/// One served resource: group, version and resource name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupVersionResource {
    /// The group; "" is core.
    pub group: String,
    /// The version.
    pub version: String,
    /// The resource (plural, lowercase).
    pub resource: String,
}

impl GroupVersionResource {
    /// `group/version/resource`.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }
}

/// What is served after `--runtime-config`: upstream's merged `ResourceConfig`.
#[derive(Debug, Clone, Default)]
pub struct ResourceConfig {
    versions: BTreeMap<(String, String), bool>,
    resources: BTreeMap<(String, String, String), bool>,
}

/// Whether a version matches a matcher key (upstream's `groupVersionMatchers`).
fn matches(matcher: &str, version: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let stage = |stage: &str| {
        version
            .strip_prefix('v')
            .and_then(|rest| rest.split_once(stage))
            .is_some_and(|(major, minor)| digits(major) && digits(minor))
    };
    match matcher {
        "api/all" => true,
        "api/ga" => version.strip_prefix('v').is_some_and(digits),
        "api/beta" => stage("beta"),
        "api/alpha" => stage("alpha"),
        _ => false,
    }
}

/// Whether `version` is spelled as Kubernetes versions are (`v1`, `v2beta1`, `v1alpha3`).
fn is_kube_version(version: &str) -> bool {
    ["api/ga", "api/beta", "api/alpha"]
        .iter()
        .any(|m| matches(m, version))
}

impl ResourceConfig {
    /// Merges `config` over `served` (every resource kubeboot has, all on by default). Returns the
    /// merged configuration and one warning per key that turns on something kubeboot lacks.
    pub fn merge(
        config: &RuntimeConfig,
        served: &[GroupVersionResource],
    ) -> Result<(Self, Vec<String>), RuntimeConfigError> {
        let mut merged = Self::default();
        for gvr in served {
            merged
                .versions
                .insert((gvr.group.clone(), gvr.version.clone()), true);
        }
        for (matcher, enabled) in &config.matchers {
            for ((_, version), on) in merged.versions.iter_mut() {
                if matches(matcher, version) {
                    *on = *enabled;
                }
            }
        }
        let mut warnings = Vec::new();
        let served_group = |group: &str| served.iter().any(|s| s.group == group);
        let served_version = |group: &str, version: &str| {
            served
                .iter()
                .any(|s| s.group == group && s.version == version)
        };
        let mut unserved = |what: String, enabled: bool, version: &str| {
            if !is_kube_version(version) {
                return Err(RuntimeConfigError::UnregisteredVersion(what));
            }
            if enabled {
                warnings.push(format!(
                    "--runtime-config: kubeboot does not serve {what}; the key has no effect"
                ));
            }
            Ok(())
        };
        for ((group, version), enabled) in &config.versions {
            if !served_version(group, version) {
                let gv = if group.is_empty() {
                    version.clone()
                } else {
                    format!("{group}/{version}")
                };
                if served_group(group) || *enabled {
                    unserved(gv, *enabled, version)?;
                }
                continue;
            }
            merged
                .resources
                .retain(|(g, v, _), _| !(g == group && v == version));
            merged
                .versions
                .insert((group.clone(), version.clone()), *enabled);
        }
        for ((group, version, resource), enabled) in &config.resources {
            let known = served
                .iter()
                .any(|s| s.group == *group && s.version == *version && s.resource == *resource);
            if !known {
                let gvr = format!("{group}/{version}/{resource}");
                if served_group(group) || *enabled {
                    unserved(gvr, *enabled, version)?;
                }
                continue;
            }
            merged
                .resources
                .insert((group.clone(), version.clone(), resource.clone()), *enabled);
        }
        Ok((merged, warnings))
    }

    /// Whether `resource` of `group/version` is served (upstream's `ResourceEnabled`: an explicit
    /// resource preference first, then its version's).
    pub fn resource_enabled(&self, group: &str, version: &str, resource: &str) -> bool {
        let key = (group.to_string(), version.to_string());
        match self
            .resources
            .get(&(key.0.clone(), key.1.clone(), resource.to_string()))
        {
            Some(enabled) => *enabled,
            None => self.versions.get(&key).copied().unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<RuntimeConfig, RuntimeConfigError> {
        RuntimeConfig::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    fn served() -> Vec<GroupVersionResource> {
        vec![
            GroupVersionResource::new("", "v1", "pods"),
            GroupVersionResource::new("", "v1", "configmaps"),
            GroupVersionResource::new("batch", "v1", "jobs"),
            GroupVersionResource::new("batch", "v1", "cronjobs"),
            GroupVersionResource::new("apps", "v1", "deployments"),
        ]
    }

    fn merge(entries: &[&str]) -> Result<(ResourceConfig, Vec<String>), RuntimeConfigError> {
        ResourceConfig::merge(&parse(entries)?, &served())
    }

    #[test]
    fn versions_and_resources_turn_off_and_resources_win_over_versions() {
        let (c, warnings) =
            merge(&["batch/v1=false", "batch/v1/jobs=true", "v1/pods=false"]).expect("valid");
        assert!(warnings.is_empty());
        assert!(c.resource_enabled("batch", "v1", "jobs"));
        assert!(!c.resource_enabled("batch", "v1", "cronjobs"));
        assert!(!c.resource_enabled("", "v1", "pods"));
        assert!(c.resource_enabled("", "v1", "configmaps"));
        assert!(c.resource_enabled("apps", "v1", "deployments"));
    }

    #[test]
    fn matchers_apply_first_and_specific_keys_override_them() {
        let (c, _) = merge(&["api/all=false", "apps/v1", "api/v1=true"]).expect("valid");
        assert!(c.resource_enabled("apps", "v1", "deployments"));
        assert!(c.resource_enabled("", "v1", "pods"));
        assert!(!c.resource_enabled("batch", "v1", "jobs"));
        let (c, _) = merge(&["api/ga=false", "api/beta=true"]).expect("valid");
        assert!(!c.resource_enabled("batch", "v1", "jobs"));
    }

    #[test]
    fn upstream_errors() {
        assert_eq!(
            parse(&["api/all=false"]),
            Err(RuntimeConfigError::OnlyAllFalse)
        );
        assert_eq!(
            parse(&["foo"]),
            Err(RuntimeConfigError::InvalidKey("foo".into()))
        );
        assert_eq!(
            parse(&["foo.example.com/v1=true", "bar/v1"]),
            Err(RuntimeConfigError::UnknownGroups(
                "bar,foo.example.com".into()
            ))
        );
        assert_eq!(
            parse(&["api/all=yes"]).unwrap_err().to_string(),
            "--runtime-config: invalid value api/all=yes"
        );
        assert_eq!(
            parse(&["batch/v1=maybe"]).unwrap_err().to_string(),
            r#"--runtime-config: invalid value of batch/v1: maybe, err: strconv.ParseBool: parsing "maybe": invalid syntax"#
        );
        assert!(matches!(
            parse(&["apps/v1/Deployments=false"]),
            Err(RuntimeConfigError::ResourceCase { .. })
        ));
        assert_eq!(
            merge(&["batch/vNext=true"]).unwrap_err(),
            RuntimeConfigError::UnregisteredVersion("batch/vNext".into())
        );
        // Go's ParseBool spellings, and a bare key meaning true.
        assert!(parse(&["batch/v1=F", "apps/v1=1", "api/legacy=nonsense", "v1"]).is_ok());
    }

    #[test]
    fn turning_on_what_kubeboot_lacks_warns_and_turning_it_off_is_silent() {
        let (c, warnings) = merge(&[
            "resource.k8s.io/v1beta1=true",
            "batch/v1beta1=false",
            "flowcontrol.apiserver.k8s.io/v1=false",
        ])
        .expect("valid");
        assert_eq!(
            warnings,
            [
                "--runtime-config: kubeboot does not serve resource.k8s.io/v1beta1; the key has no effect"
            ]
        );
        assert!(c.resource_enabled("batch", "v1", "jobs"));
    }
}
