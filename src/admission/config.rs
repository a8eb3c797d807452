//! `--admission-control-config-file`: upstream's AdmissionConfiguration, whose `plugins[]` give
//! each plugin's configuration inline (`configuration`) or in a file (`path`, relative to the
//! AdmissionConfiguration's own file). kubeboot reads PodSecurity's, PodNodeSelector's,
//! PodTolerationRestriction's, EventRateLimit's and ImagePolicyWebhook's; the others' plugins
//! take no configuration here.

use super::PodSecurityConfig;
use super::event_rate_limit::EventRateLimitConfig;
use super::image_policy::ImagePolicyConfig;
use super::pod_toleration_restriction::PodTolerationRestrictionConfig;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The plugins' configurations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdmissionConfig {
    /// PodSecurity's defaults and exemptions.
    pub pod_security: PodSecurityConfig,
    /// PodNodeSelector's `podNodeSelectorPluginConfig`: the cluster default node selector
    /// (`clusterDefaultNodeSelector`) and each namespace's whitelist.
    pub pod_node_selector: BTreeMap<String, String>,
    /// PodTolerationRestriction's cluster default tolerations and whitelist.
    pub pod_toleration_restriction: PodTolerationRestrictionConfig,
    /// EventRateLimit's limits; none when not given (a given configuration has some).
    pub event_rate_limit: EventRateLimitConfig,
    /// ImagePolicyWebhook's backend and cache; the plugin cannot run without it.
    pub image_policy: Option<ImagePolicyConfig>,
}

/// The API versions an AdmissionConfiguration may have, as upstream accepts them.
const VERSIONS: &[&str] = &[
    "apiserver.config.k8s.io/v1",
    "apiserver.config.k8s.io/v1alpha1",
    "apiserver.k8s.io/v1alpha1",
];

fn read_yaml(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl AdmissionConfig {
    /// Reads the AdmissionConfiguration at `path`; the error names what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let doc = read_yaml(path)?;
        let api_version = doc["apiVersion"].as_str().unwrap_or("");
        if doc["kind"] != "AdmissionConfiguration" || !VERSIONS.contains(&api_version) {
            return Err(format!(
                "{}: not an AdmissionConfiguration of {}",
                path.display(),
                VERSIONS.join(", ")
            ));
        }
        let mut config = Self::default();
        for plugin in doc["plugins"].as_array().into_iter().flatten() {
            let name = plugin["name"].as_str().unwrap_or("");
            let body = match (&plugin["configuration"], plugin["path"].as_str()) {
                (c, _) if !c.is_null() => c.clone(),
                (_, Some(p)) => {
                    let dir = path.parent().unwrap_or(Path::new("."));
                    read_yaml(&dir.join(p))?
                }
                _ => continue,
            };
            match name {
                "PodSecurity" => {
                    config.pod_security = PodSecurityConfig::from_value(&body)
                        .map_err(|e| format!("plugin PodSecurity: {e}"))?;
                }
                "PodNodeSelector" => {
                    config.pod_node_selector = pod_node_selector(&body)
                        .map_err(|e| format!("plugin PodNodeSelector: {e}"))?;
                }
                "PodTolerationRestriction" => {
                    config.pod_toleration_restriction = serde_json::from_value(body)
                        .map_err(|e| format!("plugin PodTolerationRestriction: {e}"))?;
                }
                "EventRateLimit" => {
                    config.event_rate_limit = EventRateLimitConfig::from_value(&body)
                        .map_err(|e| format!("plugin EventRateLimit: {e}"))?;
                }
                "ImagePolicyWebhook" => {
                    let policy = ImagePolicyConfig::from_value(&body)
                        .map_err(|e| format!("plugin ImagePolicyWebhook: {e}"))?;
                    config.image_policy = Some(policy);
                }
                _ => {}
            }
        }
        Ok(config)
    }
}

/// PodNodeSelector's selectors: the `podNodeSelectorPluginConfig` map (its key matched without
/// regard to case, as Go's decoder matches it).
fn pod_node_selector(body: &Value) -> Result<BTreeMap<String, String>, String> {
    let Some(map) = body.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("podNodeSelectorPluginConfig"))
            .map(|(_, v)| v)
    }) else {
        return Ok(BTreeMap::new());
    };
    let Some(map) = map.as_object() else {
        return Err("podNodeSelectorPluginConfig: must be a map of node selectors".into());
    };
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(format!("podNodeSelectorPluginConfig.{k}: must be a string")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::pod_security::{Level, LevelVersion};

    #[test]
    fn pod_security_defaults_and_exemptions_are_read_inline_or_from_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let inline = dir.path().join("admission.yaml");
        std::fs::write(
            &inline,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
             - name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n\
             \x20   kind: PodSecurityConfiguration\n    defaults: {enforce: baseline, enforce-version: v1.30}\n\
             \x20   exemptions: {namespaces: [kube-system]}\n",
        )
        .unwrap();
        let c = AdmissionConfig::load(&inline).unwrap();
        assert_eq!(
            c.pod_security.defaults.enforce,
            LevelVersion {
                level: Level::Baseline,
                version: Some(30)
            }
        );
        assert_eq!(c.pod_security.exempt_namespaces, ["kube-system"]);
        let by_path = dir.path().join("by-path.yaml");
        std::fs::write(
            dir.path().join("pss.yaml"),
            "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults: {warn: restricted}\n",
        )
        .unwrap();
        std::fs::write(
            &by_path,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: pss.yaml\n",
        )
        .unwrap();
        let c = AdmissionConfig::load(&by_path).unwrap();
        assert_eq!(c.pod_security.defaults.warn.level, Level::Restricted);
        std::fs::write(
            dir.path().join("pss.yaml"),
            "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults: {enforce: strict}\n",
        )
        .unwrap();
        assert_eq!(
            AdmissionConfig::load(&by_path).unwrap_err(),
            "plugin PodSecurity: defaults.enforce: invalid value \"strict\""
        );
    }
}
