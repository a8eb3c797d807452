//! The Webhook mode, as upstream's webhook authorizer: each question goes to a remote service as
//! a SubjectAccessReview (`authorization.k8s.io/v1`, or `v1beta1` with its `group` field, per
//! `--authorization-webhook-version`), and the answer's `allowed`/`denied` decide. Answers are
//! cached by the review's spec: allowed ones for `--authorization-webhook-cache-authorized-ttl`,
//! the rest for `--authorization-webhook-cache-unauthorized-ttl`. A webhook that cannot be
//! reached has no opinion and reports the error, which (unless a later mode allows) makes the
//! request a 500, as upstream's failure policy for the flags (NoOpinion) does.

use super::{Attributes, Authorization, Authorize, Decision};
use crate::auth::{SubjectAccessReviewVersion as Version, WebhookAuthorizationConfig};
use crate::webhook::{WebhookClient, WebhookError};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's request timeout for the webhook configured by flags.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How many answers are remembered; upstream's LRU holds 8192 as well.
const CACHE_SIZE: usize = 8192;

/// What the webhook said, as cached.
#[derive(Debug, Clone)]
struct Answer {
    allowed: bool,
    denied: bool,
    reason: String,
}

/// The Webhook authorizer.
pub struct WebhookAuthorizer {
    client: WebhookClient,
    config: WebhookAuthorizationConfig,
    cache: Mutex<HashMap<String, (Instant, Answer)>>,
}

impl WebhookAuthorizer {
    /// Reads the webhook's kubeconfig-format file.
    pub fn new(config: &WebhookAuthorizationConfig) -> Result<Self, WebhookError> {
        Ok(Self {
            client: WebhookClient::from_kubeconfig_file(&config.config_file, TIMEOUT)?,
            config: config.clone(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The review's spec for `a`, in the configured version's field names.
    fn spec(&self, a: &Attributes<'_>) -> Value {
        let mut spec = Map::new();
        let mut set = |key: &str, value: &str| {
            if !value.is_empty() {
                spec.insert(key.into(), value.into());
            }
        };
        set("user", &a.user.name);
        set("uid", &a.user.uid);
        if a.resource_request {
            let mut attrs = Map::new();
            for (key, value) in [
                ("namespace", a.namespace),
                ("verb", a.verb),
                ("group", a.api_group),
                ("version", a.api_version),
                ("resource", a.resource),
                ("subresource", a.subresource),
                ("name", a.name),
            ] {
                if !value.is_empty() {
                    attrs.insert(key.into(), value.into());
                }
            }
            spec.insert("resourceAttributes".into(), attrs.into());
        } else {
            spec.insert(
                "nonResourceAttributes".into(),
                json!({"path": a.path, "verb": a.verb}),
            );
        }
        if !a.user.groups.is_empty() {
            let key = match self.config.version {
                Version::V1 => "groups",
                Version::V1beta1 => "group",
            };
            spec.insert(key.into(), json!(a.user.groups));
        }
        if !a.user.extra.is_empty() {
            spec.insert("extra".into(), json!(a.user.extra));
        }
        Value::Object(spec)
    }

    fn cached(&self, key: &str) -> Option<Answer> {
        let cache = self.cache.lock().unwrap();
        let (expires, answer) = cache.get(key)?;
        (Instant::now() < *expires).then(|| answer.clone())
    }

    fn remember(&self, key: String, answer: &Answer) {
        let ttl = if answer.allowed {
            self.config.authorized_ttl
        } else {
            self.config.unauthorized_ttl
        };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_SIZE {
            cache.retain(|_, (expires, _)| now < *expires);
            if cache.len() >= CACHE_SIZE
                && let Some(k) = cache.keys().next().cloned()
            {
                cache.remove(&k);
            }
        }
        cache.insert(key, (now + ttl, answer.clone()));
    }

    /// Asks the webhook about `spec`.
    async fn ask(&self, spec: Value) -> Result<Answer, String> {
        let review = json!({
            "apiVersion": self.config.version.api_version(),
            "kind": "SubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": {"allowed": false},
        });
        let body = self
            .client
            .post_json(serde_json::to_vec(&review).expect("JSON").into())
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("decoding the webhook's SubjectAccessReview: {e}"))?;
        let status = &answer["status"];
        Ok(Answer {
            allowed: status["allowed"].as_bool().unwrap_or(false),
            denied: status["denied"].as_bool().unwrap_or(false),
            reason: status["reason"].as_str().unwrap_or_default().to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Authorize for WebhookAuthorizer {
    async fn authorize(&self, a: &Attributes<'_>) -> Authorization {
        let spec = self.spec(a);
        let key = spec.to_string();
        let answer = match self.cached(&key) {
            Some(answer) => answer,
            None => match self.ask(spec).await {
                Ok(answer) => {
                    self.remember(key, &answer);
                    answer
                }
                Err(e) => {
                    tracing::error!(error = %e, "Failed to make webhook authorizer request");
                    return Authorization::failed(Decision::NoOpinion, e);
                }
            },
        };
        match (answer.allowed, answer.denied) {
            (true, true) => Authorization::failed(
                Decision::Deny,
                "webhook subject access review returned both allow and deny response",
            )
            .with_reason(answer.reason),
            (_, true) => Authorization::because(Decision::Deny, answer.reason),
            (true, _) => Authorization::because(Decision::Allow, answer.reason),
            _ => Authorization::because(Decision::NoOpinion, answer.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use crate::endpoints::request_info::RequestInfo;
    use http::Method;

    /// An authorizer for a webhook nobody listens for, speaking `version`.
    fn unreachable(dir: &std::path::Path, version: Version) -> WebhookAuthorizer {
        let file = dir.join("webhook.kubeconfig");
        std::fs::write(
            &file,
            "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1/authorize\n\
             contexts:\n- name: x\n  context:\n    cluster: c\ncurrent-context: x\n",
        )
        .unwrap();
        WebhookAuthorizer::new(&WebhookAuthorizationConfig {
            config_file: file,
            version,
            authorized_ttl: Duration::from_secs(300),
            unauthorized_ttl: Duration::from_secs(30),
        })
        .unwrap()
    }

    #[test]
    fn v1beta1_reviews_name_the_groups_group_and_v1_groups() {
        let dir = tempfile::tempdir().unwrap();
        let user = UserInfo {
            name: "alice".into(),
            groups: vec!["devs".into()],
            ..UserInfo::default()
        };
        let info = RequestInfo::parse(
            &Method::GET,
            "/apis/apps/v1/namespaces/x/deployments/d/scale",
            None,
        );
        let a = Attributes::of_request(&user, &info);
        let beta = unreachable(dir.path(), Version::V1beta1).spec(&a);
        assert_eq!(
            beta,
            json!({"user": "alice", "group": ["devs"], "resourceAttributes": {
                "namespace": "x", "verb": "get", "group": "apps", "version": "v1",
                "resource": "deployments", "subresource": "scale", "name": "d"}})
        );
        let v1 = unreachable(dir.path(), Version::V1).spec(&a);
        assert_eq!(v1["groups"], json!(["devs"]));
        assert!(v1.get("group").is_none());
        let info = RequestInfo::parse(&Method::GET, "/healthz", None);
        assert_eq!(
            unreachable(dir.path(), Version::V1).spec(&Attributes::of_request(&user, &info))["nonResourceAttributes"],
            json!({"path": "/healthz", "verb": "get"})
        );
    }

    #[tokio::test]
    async fn an_unreachable_webhook_has_no_opinion_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let webhook = unreachable(dir.path(), Version::V1);
        let user = UserInfo::anonymous();
        let info = RequestInfo::parse(&Method::GET, "/api", None);
        let answer = webhook
            .authorize(&Attributes::of_request(&user, &info))
            .await;
        assert_eq!(answer.decision, Decision::NoOpinion);
        let error = answer.error.unwrap();
        assert!(
            error.starts_with("Post \"http://127.0.0.1:1/authorize\": dial tcp 127.0.0.1:1: "),
            "{error}"
        );
    }

    #[test]
    fn a_config_without_a_current_context_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, "clusters: []\n").unwrap();
        let err = WebhookAuthorizer::new(&WebhookAuthorizationConfig {
            config_file: file,
            version: Version::V1,
            authorized_ttl: Duration::ZERO,
            unauthorized_ttl: Duration::ZERO,
        })
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("no current-context is set"),
            "{err}"
        );
    }
}
