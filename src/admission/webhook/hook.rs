//! `Hook`: one webhook of a Validating- or MutatingWebhookConfiguration, its defaults filled,
//! selectors parsed, match conditions compiled and its endpoint prepared once per configuration
//! change.

use crate::admission::matching::Selectors;
use crate::apiextensions::cel::Expression;
use crate::registry::informer::Informer;
use crate::webhook::{ClientConfig, Endpoint};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, RuleWithOperations};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upstream's default `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One webhook, ready to be matched and called.
pub(super) struct Hook {
    /// The webhook's name (`webhooks[].name`).
    pub name: String,
    /// Which webhook of which configuration this is, for re-invocation.
    pub id: (String, usize),
    /// `rules`.
    pub rules: Vec<RuleWithOperations>,
    /// `matchPolicy: Equivalent` (the default): the rules match equivalent resources too.
    pub equivalent: bool,
    /// `failurePolicy: Ignore`.
    pub ignore_failures: bool,
    /// `namespaceSelector` and `objectSelector`.
    pub selectors: Selectors,
    /// `sideEffects`.
    pub side_effects: String,
    /// The AdmissionReview version to send: the first of `admissionReviewVersions` known here.
    pub review_version: Option<&'static str>,
    /// `matchConditions` by name, or the first that does not compile.
    pub match_conditions: Result<Vec<(String, Expression)>, String>,
    /// `reinvocationPolicy: IfNeeded`.
    pub reinvoke: bool,
    /// Where to send the review.
    pub endpoint: Endpoint,
}

impl Hook {
    /// Compiles webhook `index` of configuration `configuration`.
    pub fn compile(configuration: &str, index: usize, w: MutatingWebhook) -> Hook {
        let match_conditions = w
            .match_conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| Expression::compile(&c.expression).map(|e| (c.name, e)))
            .collect();
        let cc = w.client_config;
        let config = ClientConfig {
            url: cc.url,
            service: cc.service.map(|s| (s.namespace, s.name, s.path, s.port)),
            ca_bundle: cc.ca_bundle.map(|b| b.0),
        };
        let timeout = w.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| {
            Duration::from_secs(s.clamp(1, 30) as u64)
        });
        Hook {
            id: (configuration.to_string(), index),
            name: w.name,
            rules: w.rules.unwrap_or_default(),
            equivalent: w.match_policy.as_deref() != Some("Exact"),
            ignore_failures: w.failure_policy.as_deref() == Some("Ignore"),
            selectors: Selectors::new(w.namespace_selector, w.object_selector),
            side_effects: w.side_effects,
            review_version: w
                .admission_review_versions
                .iter()
                .find_map(|v| ["v1", "v1beta1"].into_iter().find(|k| k == v)),
            match_conditions,
            reinvoke: w.reinvocation_policy.as_deref() == Some("IfNeeded"),
            endpoint: Endpoint::new(config, timeout),
        }
    }
}

/// The webhooks of one kind of configuration, recompiled when the configurations change.
pub(super) struct Hooks {
    informer: Arc<Informer>,
    compiled: Mutex<(u64, Arc<Vec<Arc<Hook>>>)>,
}

impl Hooks {
    /// The webhooks of the configurations `informer` follows.
    pub fn new(informer: Arc<Informer>) -> Self {
        Self {
            informer,
            compiled: Mutex::new((0, Arc::default())),
        }
    }

    /// Waits for the configurations' first list (at most 10 s, as upstream); whether it came.
    pub async fn ready(&self) -> bool {
        self.informer.wait_synced(Duration::from_secs(10)).await
    }

    /// Every webhook, configurations in name order and webhooks in their order, as upstream.
    pub fn all(&self) -> Arc<Vec<Arc<Hook>>> {
        let generation = self.informer.generation();
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if compiled.0 != generation {
            let mut hooks = Vec::new();
            for ((_, name), obj) in self.informer.objects().iter() {
                let webhooks = obj.get("webhooks").cloned().unwrap_or(Value::Null);
                let webhooks: Vec<MutatingWebhook> =
                    serde_json::from_value(webhooks).unwrap_or_default();
                for (i, w) in webhooks.into_iter().enumerate() {
                    hooks.push(Arc::new(Hook::compile(name, i, w)));
                }
            }
            *compiled = (generation, Arc::new(hooks));
        }
        compiled.1.clone()
    }
}
