//! `Hook`: one webhook of a Validating- or MutatingWebhookConfiguration, its defaults filled,
//! selectors parsed, match conditions compiled and TLS prepared once per configuration change.

use crate::apiextensions::cel::Expression;
use crate::registry::informer::Informer;
use crate::webhook::WebhookClient;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, RuleWithOperations};
use kube::core::Selector;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upstream's default `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a webhook is: a URL, or a Service whose endpoints are resolved at each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// `clientConfig.url`.
    Url(http::Uri),
    /// `clientConfig.service`.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The path requests go to (`/` when unset).
        path: String,
        /// The Service port (443 when unset).
        port: u16,
    },
}

/// One webhook, ready to be matched and called.
pub(super) struct Hook {
    /// The webhook's name (`webhooks[].name`).
    pub name: String,
    /// Which webhook of which configuration this is, for re-invocation.
    pub id: (String, usize),
    /// `rules`.
    pub rules: Vec<RuleWithOperations>,
    /// `failurePolicy: Ignore`.
    pub ignore_failures: bool,
    /// `namespaceSelector`, or why it does not parse.
    pub namespace_selector: Result<Selector, String>,
    /// `objectSelector`, or why it does not parse.
    pub object_selector: Result<Selector, String>,
    /// `sideEffects`.
    pub side_effects: String,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// The AdmissionReview version to send: the first of `admissionReviewVersions` known here.
    pub review_version: Option<&'static str>,
    /// `matchConditions` by name, or the first that does not compile.
    pub match_conditions: Result<Vec<(String, Expression)>, String>,
    /// `reinvocationPolicy: IfNeeded`.
    pub reinvoke: bool,
    /// Where to send the review.
    pub target: Target,
    /// TLS towards it: the caBundle's roots (the system's when empty), or why it is unusable.
    pub tls: Result<Arc<rustls::ClientConfig>, String>,
    /// Kept-alive clients by resolved address, so calls reuse connections.
    clients: Mutex<HashMap<(String, u16), Arc<WebhookClient>>>,
}

impl Hook {
    /// Compiles webhook `index` of configuration `configuration`.
    pub fn compile(configuration: &str, index: usize, w: MutatingWebhook) -> Hook {
        let selector =
            |s: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
                Selector::try_from(s.unwrap_or_default()).map_err(|e| e.to_string())
            };
        let match_conditions = w
            .match_conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| Expression::compile(&c.expression).map(|e| (c.name, e)))
            .collect();
        let cc = w.client_config;
        let target = match (cc.url, cc.service) {
            (Some(url), _) => Target::Url(url.parse().unwrap_or_default()),
            (None, Some(s)) => Target::Service {
                namespace: s.namespace,
                name: s.name,
                path: s
                    .path
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".into()),
                port: s.port.map_or(443, |p| p.clamp(1, 65535) as u16),
            },
            (None, None) => Target::Url(http::Uri::default()),
        };
        let ca = cc.ca_bundle.map(|b| b.0).filter(|b| !b.is_empty());
        let tls = crate::proxy::tls_config(ca.as_deref(), false, None)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        Hook {
            id: (configuration.to_string(), index),
            name: w.name,
            rules: w.rules.unwrap_or_default(),
            ignore_failures: w.failure_policy.as_deref() == Some("Ignore"),
            namespace_selector: selector(w.namespace_selector),
            object_selector: selector(w.object_selector),
            side_effects: w.side_effects,
            timeout: w.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| {
                Duration::from_secs(s.clamp(1, 30) as u64)
            }),
            review_version: w
                .admission_review_versions
                .iter()
                .find_map(|v| ["v1", "v1beta1"].into_iter().find(|k| k == v)),
            match_conditions,
            reinvoke: w.reinvocation_policy.as_deref() == Some("IfNeeded"),
            target,
            tls,
            clients: Mutex::default(),
        }
    }

    /// The URL a call goes to, as upstream's client shows it: a Service's as
    /// `https://<name>.<namespace>.svc:<port><path>`, with `?timeout=` of the call.
    pub fn url(&self) -> String {
        let base = match &self.target {
            Target::Url(u) => u.to_string(),
            Target::Service {
                namespace,
                name,
                path,
                port,
            } => format!("https://{name}.{namespace}.svc:{port}{path}"),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}timeout={}s", self.timeout.as_secs())
    }

    /// The name the server's certificate must carry.
    fn server_name(&self) -> String {
        match &self.target {
            Target::Url(u) => u.host().unwrap_or("").trim_matches(['[', ']']).to_string(),
            Target::Service {
                namespace, name, ..
            } => format!("{name}.{namespace}.svc"),
        }
    }

    /// The client for the webhook at `address` (the URL's own host when `None`).
    pub fn client(&self, address: Option<(String, u16)>) -> Result<Arc<WebhookClient>, String> {
        let url: http::Uri = self.url().parse().map_err(|e| format!("{e}"))?;
        let https = url.scheme_str() == Some("https");
        let key = address.clone().unwrap_or_else(|| {
            let host = url.host().unwrap_or("").to_string();
            (host, url.port_u16().unwrap_or(if https { 443 } else { 80 }))
        });
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let tls = if https {
            let config = self.tls.clone()?;
            let name = ServerName::try_from(self.server_name()).map_err(|e| e.to_string())?;
            Some((config, name))
        } else {
            None
        };
        let client = Arc::new(WebhookClient::new(url, address, tls, self.timeout));
        clients.insert(key, client.clone());
        Ok(client)
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
        self.informer.generation() > 0 || self.informer.wait_synced(Duration::from_secs(10)).await
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
