//! The PodSecurity admission plugin, as upstream's `pod-security-admission`: a pod created (or
//! changed where it matters: images, ephemeral containers) in a namespace is checked against the
//! Pod Security Standards level its `pod-security.kubernetes.io/*` labels (over the configured
//! defaults) name — refused with upstream's `violates PodSecurity` 403 at the enforce level,
//! warned of (`would violate PodSecurity`) at the warn level — and the pod templates of workload
//! resources are warned of only. Exempt users, runtime classes and namespaces pass.

mod checks;
mod policy;

pub use policy::{Level, LevelVersion, Policy};

use super::{Attributes, Operation, Result, Validating};
use crate::registry::Store;
use crate::registry::store::labels_of;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::sync::Arc;

/// The plugin's configuration (upstream's PodSecurityConfiguration): defaults and exemptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSecurityConfig {
    /// The policy of namespaces without labels.
    pub defaults: Policy,
    /// Users whose requests are not checked.
    pub exempt_usernames: Vec<String>,
    /// Runtime classes whose pods are not checked.
    pub exempt_runtime_classes: Vec<String>,
    /// Namespaces whose pods are not checked.
    pub exempt_namespaces: Vec<String>,
}

impl PodSecurityConfig {
    /// Reads a PodSecurityConfiguration (pod-security.admission.config.k8s.io/v1 or v1beta1).
    pub fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let kind = v["kind"].as_str().unwrap_or("");
        if kind != "PodSecurityConfiguration" {
            return Err(format!(
                "expected kind PodSecurityConfiguration, got {kind:?}"
            ));
        }
        let defaults = &v["defaults"];
        let mut labels = std::collections::BTreeMap::new();
        for key in [
            "enforce",
            "enforce-version",
            "audit",
            "audit-version",
            "warn",
            "warn-version",
        ] {
            if let Some(s) = defaults[key].as_str() {
                labels.insert(format!("pod-security.kubernetes.io/{key}"), s.to_string());
            }
        }
        let defaults = Policy::of(&labels, Policy::default());
        // An invalid default is an error here rather than the strictest policy.
        for (key, value) in &labels {
            let valid = if key.ends_with("-version") {
                value == "latest"
                    || value
                        .strip_prefix("v1.")
                        .is_some_and(|m| m.parse::<u32>().is_ok())
            } else {
                matches!(value.as_str(), "privileged" | "baseline" | "restricted")
            };
            if !valid {
                return Err(format!(
                    "defaults.{}: invalid value {value:?}",
                    key.trim_start_matches("pod-security.kubernetes.io/")
                ));
            }
        }
        let list = |field: &str| -> Vec<String> {
            v["exemptions"][field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        Ok(Self {
            defaults,
            exempt_usernames: list("usernames"),
            exempt_runtime_classes: list("runtimeClasses"),
            exempt_namespaces: list("namespaces"),
        })
    }
}

/// Checks pods and pod templates against their namespace's policy.
pub struct PodSecurity {
    namespaces: Arc<Store>,
    config: PodSecurityConfig,
}

impl PodSecurity {
    /// Reads namespaces from `namespaces`, with `config`'s defaults and exemptions.
    pub fn new(namespaces: Arc<Store>, config: PodSecurityConfig) -> Self {
        Self { namespaces, config }
    }
}

/// What is checked of an object: a pod (enforced), or a workload's pod template (warned of).
enum Subject {
    Pod,
    Template(&'static str),
}

/// Where a kind keeps what PodSecurity checks.
fn subject(group: &str, resource: &str, subresource: &str) -> Option<Subject> {
    match (group, resource, subresource) {
        ("", "pods", "" | "ephemeralcontainers") => Some(Subject::Pod),
        ("", "replicationcontrollers", "")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets", "")
        | ("batch", "jobs", "") => Some(Subject::Template("/spec/template")),
        ("batch", "cronjobs", "") => Some(Subject::Template("/spec/jobTemplate/spec/template")),
        ("", "podtemplates", "") => Some(Subject::Template("/template")),
        _ => None,
    }
}

/// Whether an update of a pod changes what the policy looks at (upstream's
/// `isSignificantPodUpdate`: container images and seccomp annotations; metadata or status
/// changes of a running pod are not checked again).
fn significant_update(new: &Value, old: &Value) -> bool {
    let images = |p: &Value, k: &str| -> Vec<Value> {
        p["spec"][k]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["image"].clone())
            .collect()
    };
    let seccomp = |p: &Value| -> Vec<(String, Value)> {
        p["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.contains("seccomp.security.alpha.kubernetes.io"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    ["containers", "initContainers"]
        .iter()
        .any(|k| images(new, k) != images(old, k))
        || seccomp(new) != seccomp(old)
}

#[async_trait::async_trait]
impl Validating for PodSecurity {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let (Some(namespace), Some(object)) = (a.namespace, object) else {
            return Ok(());
        };
        let Some(subject) = subject(&a.resource.group, &a.resource.resource, a.subresource) else {
            return Ok(());
        };
        if self.config.exempt_namespaces.iter().any(|n| n == namespace)
            || self.config.exempt_usernames.contains(&a.user.name)
        {
            return Ok(());
        }
        if let (Subject::Pod, Some(old), "") = (&subject, a.old_object, a.subresource)
            && !significant_update(object, old)
        {
            return Ok(());
        }
        let labels = match self.namespaces.get(None, namespace).await {
            Ok(ns) => labels_of(&ns),
            Err(_) => Default::default(),
        };
        let policy = Policy::of(&labels, self.config.defaults);
        if policy.enforce.level == Level::Privileged && policy.warn.level == Level::Privileged {
            return Ok(());
        }
        let (meta, spec): (ObjectMeta, PodSpec) = match subject {
            Subject::Pod => (
                serde_json::from_value(object["metadata"].clone()).unwrap_or_default(),
                serde_json::from_value(object["spec"].clone()).unwrap_or_default(),
            ),
            Subject::Template(at) => {
                let template: PodTemplateSpec = object
                    .pointer(at)
                    .and_then(|t| serde_json::from_value(t.clone()).ok())
                    .unwrap_or_default();
                (
                    template.metadata.unwrap_or_default(),
                    template.spec.unwrap_or_default(),
                )
            }
        };
        if spec
            .runtime_class_name
            .as_ref()
            .is_some_and(|rc| self.config.exempt_runtime_classes.contains(rc))
        {
            return Ok(());
        }
        let enforced = policy::evaluate(policy.enforce, &meta, &spec);
        match subject {
            Subject::Pod if !enforced.is_empty() => {
                return Err(a.forbidden(format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    policy::reasons(&enforced)
                )));
            }
            // A workload is only warned of what its pods would be refused.
            Subject::Template(_) if !enforced.is_empty() => {
                a.warnings.add(format!(
                    "would violate PodSecurity \"{}\": {}",
                    policy.enforce,
                    policy::reasons(&enforced)
                ));
            }
            _ => {}
        }
        if policy.warn != policy.enforce || enforced.is_empty() {
            let warned = policy::evaluate(policy.warn, &meta, &spec);
            if !warned.is_empty() {
                a.warnings.add(format!(
                    "would violate PodSecurity \"{}\": {}",
                    policy.warn,
                    policy::reasons(&warned)
                ));
            }
        }
        Ok(())
    }
}
