//! Levels, versions and a namespace's policy, as upstream's `pod-security-admission/api`: the
//! `pod-security.kubernetes.io/<mode>[-version]` labels over the configured defaults, warn
//! following an explicitly stricter enforce, and an invalid label evaluated as
//! `restricted:latest` (failing closed).

use super::checks::{BASELINE, BASELINE_ONLY, Failure, RESTRICTED};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Anything goes.
    Privileged,
    /// Known privilege escalations refused.
    Baseline,
    /// Hardened.
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "privileged" => Some(Self::Privileged),
            "baseline" => Some(Self::Baseline),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// A level at a policy version (`None`: latest; else the minor of 1.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version.
    pub version: Option<u32>,
}

impl LevelVersion {
    /// `restricted:latest`, where invalid labels lead.
    pub const STRICTEST: Self = Self {
        level: Level::Restricted,
        version: None,
    };
    /// `privileged:latest`, upstream's default for every mode.
    pub const PRIVILEGED: Self = Self {
        level: Level::Privileged,
        version: None,
    };
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            None => write!(f, "{}:latest", self.level.as_str()),
            Some(v) => write!(f, "{}:v1.{v}", self.level.as_str()),
        }
    }
}

/// `latest` or `v1.<minor>`.
fn parse_version(s: &str) -> Option<Option<u32>> {
    if s == "latest" {
        return Some(None);
    }
    s.strip_prefix("v1.")?.parse().ok().map(Some)
}

/// The three modes' levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Violations refuse pods.
    pub enforce: LevelVersion,
    /// Violations are recorded in the request's audit event.
    pub audit: LevelVersion,
    /// Violations warn.
    pub warn: LevelVersion,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enforce: LevelVersion::PRIVILEGED,
            audit: LevelVersion::PRIVILEGED,
            warn: LevelVersion::PRIVILEGED,
        }
    }
}

/// The label prefix.
const PREFIX: &str = "pod-security.kubernetes.io/";

/// A label that does not parse: its key, its value, and what it must be.
pub type LabelError = (String, String, &'static str);

impl Policy {
    /// The labels among `labels` that do not parse, as upstream reports them.
    pub fn label_errors(labels: &BTreeMap<String, String>) -> Vec<LabelError> {
        let mut errors = Vec::new();
        for mode in ["enforce", "audit", "warn"] {
            let key = format!("{PREFIX}{mode}");
            if let Some(v) = labels.get(&key)
                && Level::parse(v).is_none()
            {
                errors.push((
                    key,
                    v.clone(),
                    "must be one of privileged, baseline, restricted",
                ));
            }
            let key = format!("{PREFIX}{mode}-version");
            if let Some(v) = labels.get(&key)
                && parse_version(v).is_none()
            {
                errors.push((key, v.clone(), "must be 'latest' or of the form 'v1.x'"));
            }
        }
        errors
    }

    /// A namespace's policy from its `labels` over `defaults`, as upstream's `PolicyToEvaluate`.
    pub fn of(labels: &BTreeMap<String, String>, defaults: Policy) -> Policy {
        let mut p = defaults;
        let mut explicit_enforce = false;
        let mut explicit_warn = (false, false);
        for (mode, slot) in [("enforce", 0), ("audit", 1), ("warn", 2)] {
            let lv = match slot {
                0 => &mut p.enforce,
                1 => &mut p.audit,
                _ => &mut p.warn,
            };
            let mut invalid = false;
            if let Some(level) = labels.get(&format!("{PREFIX}{mode}")) {
                match Level::parse(level) {
                    Some(l) => {
                        lv.level = l;
                        explicit_enforce |= slot == 0;
                        explicit_warn.0 |= slot == 2;
                    }
                    None => invalid = true,
                }
            }
            if let Some(version) = labels.get(&format!("{PREFIX}{mode}-version")) {
                match parse_version(version) {
                    Some(v) => {
                        lv.version = v;
                        explicit_warn.1 |= slot == 2;
                    }
                    None => invalid = true,
                }
            }
            if invalid {
                *lv = LevelVersion::STRICTEST;
            }
        }
        if !explicit_warn.0 && explicit_enforce && p.enforce.level > p.warn.level {
            p.warn.level = p.enforce.level;
            if !explicit_warn.1 {
                p.warn.version = p.enforce.version;
            }
        }
        p
    }
}

/// The checks a pod fails at `lv`, in upstream's order.
pub fn evaluate(lv: LevelVersion, meta: &ObjectMeta, spec: &PodSpec) -> Vec<Failure> {
    let applies = |since: u32| lv.version.is_none_or(|v| v >= since);
    let extra = match lv.level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => BASELINE_ONLY,
        Level::Restricted => RESTRICTED,
    };
    BASELINE
        .iter()
        .chain(extra)
        .filter(|c| applies(c.since))
        .filter_map(|c| (c.run)(meta, spec))
        .collect()
}

/// Failures as upstream's aggregate reason: `reason (detail), …`.
pub fn reasons(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                f.reason.clone()
            } else {
                format!("{} ({})", f.reason, f.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_over_defaults_warn_follows_a_stricter_enforce_and_invalid_fails_closed() {
        let p = Policy::of(
            &labels(&[("enforce", "baseline"), ("enforce-version", "v1.29")]),
            Policy::default(),
        );
        let baseline_29 = LevelVersion {
            level: Level::Baseline,
            version: Some(29),
        };
        assert_eq!(
            (p.enforce, p.warn, p.audit),
            (baseline_29, baseline_29, LevelVersion::PRIVILEGED)
        );
        assert_eq!(p.enforce.to_string(), "baseline:v1.29");
        let p = Policy::of(
            &labels(&[("enforce", "baseline"), ("warn", "restricted")]),
            Policy::default(),
        );
        assert_eq!(p.warn.to_string(), "restricted:latest");
        let p = Policy::of(&labels(&[("enforce", "strict")]), Policy::default());
        assert_eq!(p.enforce, LevelVersion::STRICTEST);
    }

    fn pod(spec: serde_json::Value) -> (ObjectMeta, PodSpec) {
        (ObjectMeta::default(), serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn a_privileged_pod_fails_in_upstreams_order_and_words() {
        let (meta, spec) = pod(json!({"hostNetwork": true, "containers": [
            {"name": "app", "image": "x", "securityContext": {"privileged": true}}]}));
        let restricted = reasons(&evaluate(LevelVersion::STRICTEST, &meta, &spec));
        assert_eq!(
            restricted,
            "host namespaces (hostNetwork=true), privileged (container \"app\" must not set securityContext.privileged=true), \
             allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        let baseline = LevelVersion {
            level: Level::Baseline,
            version: None,
        };
        assert_eq!(evaluate(baseline, &meta, &spec).len(), 2);
        let (meta, spec) = pod(
            json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "x", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/"}}]}),
        );
        assert_eq!(
            reasons(&evaluate(LevelVersion::STRICTEST, &meta, &spec)),
            "hostPath volumes (volume \"host\"), restricted volume types (volumes [\"host\"] have restricted types)"
        );
    }
}
