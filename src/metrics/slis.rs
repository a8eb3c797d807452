//! `/metrics/slis`: upstream's SLI registry, the result of every health check each time a
//! `/healthz`, `/livez` or `/readyz` is served (`kubernetes_healthcheck`,
//! `kubernetes_healthchecks_total`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

/// A health check of an endpoint.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// The check's name.
    pub name: String,
    /// The endpoint: `healthz`, `livez` or `readyz`.
    pub r#type: String,
}

/// A health check's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The check's name.
    pub name: String,
    /// `success` or `error`.
    pub status: String,
    /// The endpoint.
    pub r#type: String,
}

/// The SLI metrics.
pub struct Slis {
    status: Family<CheckLabels, Gauge>,
    checks: Family<ResultLabels, Counter>,
    registry: Registry,
}

impl Slis {
    fn new() -> Self {
        let status = Family::<CheckLabels, Gauge>::default();
        let checks = Family::<ResultLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register(
            "kubernetes_healthcheck",
            "This metric records the result of a single healthcheck.",
            status.clone(),
        );
        registry.register(
            "kubernetes_healthchecks",
            "This metric records the results of all healthcheck.",
            checks.clone(),
        );
        Self {
            status,
            checks,
            registry,
        }
    }

    /// Records check `name` of `endpoint` as passed or failed.
    pub fn observe(&self, name: &str, endpoint: &str, healthy: bool) {
        self.status
            .get_or_create(&CheckLabels {
                name: name.into(),
                r#type: endpoint.into(),
            })
            .set(i64::from(healthy));
        self.checks
            .get_or_create(&ResultLabels {
                name: name.into(),
                status: if healthy { "success" } else { "error" }.into(),
                r#type: endpoint.into(),
            })
            .inc();
    }

    /// The SLI metrics in the text format.
    pub fn encode(&self) -> String {
        super::exposition::encode(&self.registry)
    }
}

/// The process-wide SLI metrics.
pub fn slis() -> &'static Slis {
    static SLIS: OnceLock<Slis> = OnceLock::new();
    SLIS.get_or_init(Slis::new)
}
