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
use crate::registry::errors::FieldError;
use crate::registry::store::{ListParams, labels_of};
use crate::registry::{RegistryError, Store};
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
        if let Some((key, value, _)) = Policy::label_errors(&labels).into_iter().min() {
            return Err(format!(
                "defaults.{}: invalid value {value:?}",
                key.trim_start_matches("pod-security.kubernetes.io/")
            ));
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
    pods: Arc<Store>,
    config: PodSecurityConfig,
}

impl PodSecurity {
    /// Reads namespaces and pods from their stores, with `config`'s defaults and exemptions.
    pub fn new(namespaces: Arc<Store>, pods: Arc<Store>, config: PodSecurityConfig) -> Self {
        Self {
            namespaces,
            pods,
            config,
        }
    }
}

/// What is checked of an object: a pod (enforced), a workload's pod template (warned of), or
/// a namespace's labels (and the pods a stricter enforce level would refuse).
enum Subject {
    Pod,
    Template(&'static str),
    Namespace,
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
        ("", "namespaces", "") => Some(Subject::Namespace),
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

impl PodSecurity {
    /// A namespace's labels must parse (upstream's 422); when an update makes its enforce level
    /// stricter, the pods already there that it would refuse are warned of.
    async fn validate_namespace(&self, a: &Attributes<'_>, ns: &Value) -> Result {
        let labels = labels_of(ns);
        let old_labels = a.old_object.map(labels_of);
        let changed = |key: &str| {
            old_labels
                .as_ref()
                .is_none_or(|old| old.get(key) != labels.get(key))
        };
        let errors: Vec<_> = Policy::label_errors(&labels)
            .into_iter()
            .filter(|(key, _, _)| changed(key))
            .collect();
        if !errors.is_empty() {
            return Err(RegistryError::Invalid {
                group: String::new(),
                qualified_kind: "Namespace".into(),
                kind: "Namespace".into(),
                name: a.name.to_string(),
                errors: errors
                    .into_iter()
                    .map(|(key, value, detail)| {
                        FieldError::invalid(format!("metadata.labels[{key}]"), value, detail)
                    })
                    .collect(),
            });
        }
        let Some(old_labels) = old_labels else {
            return Ok(());
        };
        let new = Policy::of(&labels, self.config.defaults).enforce;
        let old = Policy::of(&old_labels, self.config.defaults).enforce;
        if new == old
            || new.level == Level::Privileged
            || self.config.exempt_namespaces.iter().any(|n| n == a.name)
        {
            return Ok(());
        }
        let pods = self.pods.list(Some(a.name), &ListParams::default()).await?;
        // Pods failing the same checks are named together, as upstream.
        let mut by_reasons: Vec<(String, Vec<String>)> = Vec::new();
        for pod in &pods.items {
            let meta: ObjectMeta =
                serde_json::from_value(pod["metadata"].clone()).unwrap_or_default();
            let spec: PodSpec = serde_json::from_value(pod["spec"].clone()).unwrap_or_default();
            if spec
                .runtime_class_name
                .as_ref()
                .is_some_and(|rc| self.config.exempt_runtime_classes.contains(rc))
            {
                continue;
            }
            let failures = policy::evaluate(new, &meta, &spec);
            if failures.is_empty() {
                continue;
            }
            let reasons: Vec<String> = failures.iter().map(|f| f.reason.clone()).collect();
            let reasons = reasons.join(", ");
            let name = meta.name.unwrap_or_default();
            match by_reasons.iter_mut().find(|(r, _)| *r == reasons) {
                Some((_, names)) => names.push(name),
                None => by_reasons.push((reasons, vec![name])),
            }
        }
        if by_reasons.is_empty() {
            return Ok(());
        }
        a.warnings.add(format!(
            "existing pods in namespace {:?} violate the new PodSecurity enforce level \"{new}\"",
            a.name
        ));
        for (reasons, names) in by_reasons {
            let who = match names.len() {
                1 => names[0].clone(),
                2 => format!("{} (and 1 other pod)", names[0]),
                n => format!("{} (and {} other pods)", names[0], n - 1),
            };
            a.warnings.add(format!("{who}: {reasons}"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Validating for PodSecurity {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let Some(subject) = subject(&a.resource.group, &a.resource.resource, a.subresource) else {
            return Ok(());
        };
        if let (Subject::Namespace, Some(object)) = (&subject, object) {
            return self.validate_namespace(a, object).await;
        }
        let (Some(namespace), Some(object)) = (a.namespace, object) else {
            return Ok(());
        };
        // Upstream's audit annotations say why a pod was not checked, or by which policy.
        let note = |key: &str, value: String| {
            if matches!(subject, Subject::Pod) {
                a.annotations
                    .add(format!("pod-security.kubernetes.io/{key}"), value);
            }
        };
        if self.config.exempt_namespaces.iter().any(|n| n == namespace) {
            note("exempt", "namespace".into());
            return Ok(());
        }
        if self.config.exempt_usernames.contains(&a.user.name) {
            note("exempt", "user".into());
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
        if [policy.enforce, policy.audit, policy.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
        {
            note("enforce-policy", policy.enforce.to_string());
            return Ok(());
        }
        let (meta, spec): (ObjectMeta, PodSpec) = match subject {
            Subject::Pod => (
                serde_json::from_value(object["metadata"].clone()).unwrap_or_default(),
                serde_json::from_value(object["spec"].clone()).unwrap_or_default(),
            ),
            Subject::Namespace => return Ok(()),
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
            note("exempt", "runtimeClass".into());
            return Ok(());
        }
        note("enforce-policy", policy.enforce.to_string());
        let enforced = policy::evaluate(policy.enforce, &meta, &spec);
        // Audited whether or not the request is refused, as upstream.
        let audited = if policy.audit == policy.enforce {
            enforced.clone()
        } else {
            policy::evaluate(policy.audit, &meta, &spec)
        };
        if !audited.is_empty() {
            a.annotations.add(
                "pod-security.kubernetes.io/audit-violations",
                format!(
                    "would violate PodSecurity \"{}\": {}",
                    policy.audit,
                    policy::reasons(&audited)
                ),
            );
        }
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
