//! ImagePolicyWebhook, as upstream's plugin: each pod created or updated (and each
//! `ephemeralcontainers` update) is sent as an ImageReview (imagepolicy.k8s.io/v1alpha1) of its
//! images, its `*.image-policy.k8s.io/*` annotations and its namespace to the webhook its
//! kubeconfig-format file names; a denial is a 403 with the backend's reason. Answers are
//! cached (`allowTTL`, `denyTTL`); an unreachable backend admits the pod when `defaultAllow`,
//! recording the `failed-open` audit annotation, and refuses it otherwise.

use super::{Attributes, Operation, Result, Validating};
use crate::options::duration::format as go_duration;
use crate::webhook::{WebhookClient, WebhookError};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The prefix of the audit annotations the plugin records.
const AUDIT_PREFIX: &str = "imagepolicywebhook.image-policy.k8s.io/";
/// How many answers are cached, as upstream's LRU.
const CACHE_SIZE: usize = 1024;
/// How long one call to the backend may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The `imagePolicy` section of the plugin's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePolicyConfig {
    /// `kubeConfigFile`: how to reach the backend.
    pub kubeconfig: PathBuf,
    /// `allowTTL` (seconds): how long an approval is cached.
    pub allow_ttl: Duration,
    /// `denyTTL` (seconds): how long a denial is cached.
    pub deny_ttl: Duration,
    /// `retryBackoff` (milliseconds): the first wait before a failed call is tried again.
    pub retry_backoff: Duration,
    /// `defaultAllow`: whether a pod is admitted when the backend cannot be asked.
    pub default_allow: bool,
}

/// A setting's bounds and default, as upstream's `normalizeConfigDuration`: -1 disables it
/// (zero), 0 (or absent) takes the default, anything else scaled must be within the bounds.
fn setting(
    body: &Value,
    key: &str,
    scale: Duration,
    (min, max, default): (Duration, Duration, Duration),
) -> std::result::Result<Duration, String> {
    let value = match &body[key] {
        Value::Null => 0,
        v => v
            .as_i64()
            .ok_or_else(|| format!("imagePolicy.{key}: must be an integer"))?,
    };
    match value {
        -1 => Ok(Duration::ZERO),
        0 => Ok(default),
        v if v < 0 => Err(format!(
            "valid value is between {} and {}, got -{}",
            go_duration(min),
            go_duration(max),
            go_duration(scale.saturating_mul(v.unsigned_abs().min(u32::MAX as u64) as u32))
        )),
        v => {
            let scaled = scale.saturating_mul(v.min(u32::MAX as i64) as u32);
            if scaled < min || scaled > max {
                return Err(format!(
                    "valid value is between {} and {}, got {}",
                    go_duration(min),
                    go_duration(max),
                    go_duration(scaled)
                ));
            }
            Ok(scaled)
        }
    }
}

impl ImagePolicyConfig {
    /// Reads the plugin's configuration: an `imagePolicy` section, alone or in an
    /// ImagePolicyWebhookConfiguration.
    pub fn from_value(body: &Value) -> std::result::Result<Self, String> {
        let section = &body["imagePolicy"];
        if !section.is_object() {
            return Err("no imagePolicy section".into());
        }
        let kubeconfig = section["kubeConfigFile"].as_str().unwrap_or_default();
        let secs = Duration::from_secs;
        Ok(Self {
            kubeconfig: PathBuf::from(kubeconfig),
            retry_backoff: setting(
                section,
                "retryBackoff",
                Duration::from_millis(1),
                (
                    Duration::from_nanos(1),
                    secs(300),
                    Duration::from_millis(500),
                ),
            )?,
            allow_ttl: setting(
                section,
                "allowTTL",
                secs(1),
                (secs(1), secs(1800), secs(300)),
            )?,
            deny_ttl: setting(section, "denyTTL", secs(1), (secs(1), secs(1800), secs(30)))?,
            default_allow: section["defaultAllow"].as_bool().unwrap_or(false),
        })
    }

    /// The client of the backend the kubeconfig-format file names.
    pub fn client(&self) -> std::result::Result<WebhookClient, WebhookError> {
        Ok(
            WebhookClient::from_kubeconfig_file(&self.kubeconfig, CALL_TIMEOUT)?
                .with_backoff(self.retry_backoff),
        )
    }
}

/// A cached answer and when it expires.
type Cached = (Instant, Value);

/// The plugin.
pub struct ImagePolicyWebhook {
    client: WebhookClient,
    config: ImagePolicyConfig,
    /// Answers by review spec.
    cache: Mutex<HashMap<String, Cached>>,
}

impl ImagePolicyWebhook {
    /// The plugin calling the backend of `config` through `client`.
    pub fn new(config: &ImagePolicyConfig, client: WebhookClient) -> Self {
        Self {
            client,
            config: config.clone(),
            cache: Mutex::default(),
        }
    }

    fn cached(&self, key: &str) -> Option<Value> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, status)| status.clone())
    }

    fn remember(&self, key: String, status: &Value) {
        let ttl = if status["allowed"] == true {
            self.config.allow_ttl
        } else {
            self.config.deny_ttl
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if cache.len() >= CACHE_SIZE {
            cache.retain(|_, (expires, _)| *expires > now);
            // Still full: the entry expiring first goes, as the least useful.
            if cache.len() >= CACHE_SIZE
                && let Some(first) = cache
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&first);
            }
        }
        cache.insert(key, (now + ttl, status.clone()));
    }

    /// The backend's answer to `spec`, or why it could not be had.
    async fn review(&self, spec: &Value) -> std::result::Result<Value, String> {
        let key = spec.to_string();
        if let Some(status) = self.cached(&key) {
            return Ok(status);
        }
        let review = json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview", "spec": spec,
        });
        let answer = match self.client.post_json(review.to_string().into()).await {
            Ok(answer) => answer,
            Err(WebhookError::Status { code, .. }) => {
                return Err(format!("Error contacting webhook: {code}"));
            }
            Err(e) => return Err(e.to_string()),
        };
        let answer: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        let status = answer.get("status").cloned().unwrap_or_else(|| json!({}));
        self.remember(key, &status);
        Ok(status)
    }
}

/// The images a request asks to run: the containers and init containers of a pod, or the
/// ephemeral containers of an `ephemeralcontainers` update.
fn containers(pod: &Value, ephemeral: bool) -> Vec<Value> {
    let lists: &[&str] = if ephemeral {
        &["ephemeralContainers"]
    } else {
        &["containers", "initContainers"]
    };
    lists
        .iter()
        .flat_map(|l| pod["spec"][*l].as_array().into_iter().flatten())
        .map(|c| {
            let image = c["image"].as_str().unwrap_or_default();
            if image.is_empty() {
                json!({})
            } else {
                json!({ "image": image })
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl Validating for ImagePolicyWebhook {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let ephemeral = a.subresource == "ephemeralcontainers";
        if !a.resource.group.is_empty()
            || a.resource.resource != "pods"
            || !(a.subresource.is_empty() || ephemeral)
        {
            return Ok(());
        }
        let Some(pod) = object else {
            return Ok(());
        };
        let annotations: Map<String, Value> = pod["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.contains(".image-policy.k8s.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut spec = Map::new();
        let containers = containers(pod, ephemeral);
        if !containers.is_empty() {
            spec.insert("containers".into(), Value::Array(containers));
        }
        if !annotations.is_empty() {
            spec.insert("annotations".into(), Value::Object(annotations));
        }
        if let Some(ns) = a.namespace.filter(|ns| !ns.is_empty()) {
            spec.insert("namespace".into(), json!(ns));
        }
        let status = match self.review(&Value::Object(spec)).await {
            Ok(status) => status,
            Err(e) if self.config.default_allow => {
                tracing::debug!(error = %e, "image policy webhook failed; admitting the pod");
                a.annotations
                    .add(format!("{AUDIT_PREFIX}failed-open"), "true");
                return Ok(());
            }
            Err(e) => return Err(a.forbidden(e)),
        };
        for (k, v) in status["auditAnnotations"].as_object().into_iter().flatten() {
            a.annotations
                .add(format!("{AUDIT_PREFIX}{k}"), v.as_str().unwrap_or_default());
        }
        if status["allowed"] == true {
            return Ok(());
        }
        let message = match status["reason"].as_str().filter(|r| !r.is_empty()) {
            Some(reason) => {
                format!("image policy webhook backend denied one or more images: {reason}")
            }
            None => "one or more images rejected by webhook backend".into(),
        };
        Err(a.forbidden(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_takes_upstreams_defaults_units_and_bounds() {
        let c = ImagePolicyConfig::from_value(&json!({"imagePolicy": {
            "kubeConfigFile": "/etc/policy.kubeconfig", "defaultAllow": true}}))
        .unwrap();
        assert_eq!(c.kubeconfig, PathBuf::from("/etc/policy.kubeconfig"));
        assert_eq!(c.allow_ttl, Duration::from_secs(300));
        assert_eq!(c.deny_ttl, Duration::from_secs(30));
        assert_eq!(c.retry_backoff, Duration::from_millis(500));
        assert!(c.default_allow);
        let c = ImagePolicyConfig::from_value(&json!({"imagePolicy": {
            "allowTTL": 50, "denyTTL": -1, "retryBackoff": 100}}))
        .unwrap();
        assert_eq!(c.allow_ttl, Duration::from_secs(50));
        assert_eq!(c.deny_ttl, Duration::ZERO);
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert!(!c.default_allow);
        assert_eq!(
            ImagePolicyConfig::from_value(&json!({"imagePolicy": {"allowTTL": 2700}})),
            Err("valid value is between 1s and 30m0s, got 45m0s".into())
        );
        assert!(ImagePolicyConfig::from_value(&json!({})).is_err());
    }

    #[test]
    fn a_pod_is_reviewed_by_its_images_or_its_ephemeral_ones() {
        let pod = json!({"spec": {
            "containers": [{"name": "a", "image": "nginx:1.27"}],
            "initContainers": [{"name": "i", "image": "busybox"}],
            "ephemeralContainers": [{"name": "d", "image": "debug"}]}});
        assert_eq!(
            containers(&pod, false),
            [json!({"image": "nginx:1.27"}), json!({"image": "busybox"})]
        );
        assert_eq!(containers(&pod, true), [json!({"image": "debug"})]);
    }
}
