//! The server's metrics, served at `/metrics` in Prometheus' text format, with upstream's
//! names, labels and buckets so that kube-apiserver's dashboards and alerts read them
//! unchanged. One process-wide set, as upstream's `legacyregistry`: requests, watches,
//! admission, authentication and authorization record into it where they happen; the process
//! and storage figures are read when it is scraped.

pub mod exposition;
pub mod flowcontrol;
mod process;
pub mod slis;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

pub use exposition::CONTENT_TYPE;

/// Upstream's `apiserver_request_duration_seconds` buckets.
const REQUEST_DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// Upstream's admission duration buckets.
const ADMISSION_BUCKETS: [f64; 6] = [0.005, 0.025, 0.1, 0.5, 1.0, 2.5];

/// A request as `apiserver_request_total` labels it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// LIST, WATCH, GET, POST, PUT, PATCH, APPLY, DELETE, DELETECOLLECTION, CONNECT.
    pub verb: String,
    /// `All` for a dry run, else empty.
    pub dry_run: String,
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// `resource`, `namespace` or `cluster`.
    pub scope: String,
    /// Always `apiserver`.
    pub component: String,
}

/// [`RequestLabels`] with the response code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestCodeLabels {
    /// The request.
    #[prometheus(flatten)]
    pub request: RequestLabels,
    /// The HTTP status code.
    pub code: String,
}

/// `readOnly` or `mutating`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InflightLabels {
    /// The kind of request.
    pub request_kind: String,
}

/// A kind's group, version and kind, for watch metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

/// A resource, for storage metrics (`configmaps`, `widgets.example.com`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The resource, with its group when not core.
    pub resource: String,
}

/// A resource by group, as upstream's cacher metrics label it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupResourceLabels {
    /// API group (empty for core).
    pub group: String,
    /// The resource.
    pub resource: String,
}

/// One admission step, plugin or webhook.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// The plugin's or webhook's name (empty for a whole step).
    pub name: String,
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub operation: String,
    /// Whether it refused.
    pub rejected: String,
    /// `admit` (mutating) or `validate`.
    pub r#type: String,
}

/// [`AdmissionLabels`] without a name, for whole steps.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub operation: String,
    /// Whether the step refused.
    pub rejected: String,
    /// `admit` or `validate`.
    pub r#type: String,
}

/// `success`, `failure` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The result.
    pub result: String,
}

/// An authorizer's terminal decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The authorizer's type: `RBAC`, `Node`, `Webhook`, `AlwaysAllow`, `AlwaysDeny`.
    pub r#type: String,
    /// Its name in the authorization configuration (`rbac`, `node`, …).
    pub name: String,
    /// `allowed` or `denied`.
    pub decision: String,
}

/// An audit backend.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// `log` or `webhook`.
    pub plugin: String,
}

/// An APIService.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiServiceLabels {
    /// Its name.
    pub name: String,
}

/// An APIService and why it was marked unavailable.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiServiceReasonLabels {
    /// Its name.
    pub name: String,
    /// Its Available condition's reason.
    pub reason: String,
}

/// A storage cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageClusterLabels {
    /// etcd's cluster ID; empty for the embedded store.
    pub storage_cluster_id: String,
}

/// A consistent list the watch cache served, for `apiserver_watch_cache_consistent_read_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsistentReadLabels {
    /// The resource's key prefix below the storage root, as upstream's `resourcePrefix`.
    pub resource: String,
    /// Whether the list succeeded.
    pub success: String,
    /// Whether the cache did not catch up in time and the backend answered instead.
    pub fallback: String,
}

/// A storage operation, for `etcd_request_duration_seconds` (both backends).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// get, list, create, update, delete, …
    pub operation: String,
    /// The resource prefix.
    pub r#type: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn histograms<L: Clone + std::hash::Hash + Eq>(ctor: fn() -> Histogram) -> Histograms<L> {
    Family::new_with_constructor(ctor)
}

/// Counts each resource's stored objects when scraped.
pub type ObjectCounter = Box<dyn Fn() -> Vec<(String, i64)> + Send + Sync>;

/// Every metric the server records.
pub struct Metrics {
    /// `apiserver_request_total`.
    pub requests: Family<RequestCodeLabels, Counter>,
    /// `apiserver_request_duration_seconds`.
    pub request_duration: Histograms<RequestLabels>,
    /// `apiserver_response_sizes`.
    pub response_sizes: Histograms<RequestLabels>,
    /// `apiserver_current_inflight_requests`.
    pub inflight: Family<InflightLabels, Gauge>,
    /// `apiserver_longrunning_requests`.
    pub longrunning: Family<RequestLabels, Gauge>,
    /// `apiserver_registered_watchers`.
    pub watchers: Family<KindLabels, Gauge>,
    /// `apiserver_watch_events_total`.
    pub watch_events: Family<KindLabels, Counter>,
    /// `apiserver_watch_events_sizes`.
    pub watch_event_sizes: Histograms<KindLabels>,
    /// `apiserver_admission_controller_admission_duration_seconds`.
    pub admission_controller: Histograms<AdmissionLabels>,
    /// `apiserver_admission_webhook_admission_duration_seconds`.
    pub admission_webhook: Histograms<AdmissionLabels>,
    /// `apiserver_admission_step_admission_duration_seconds`.
    pub admission_step: Histograms<StepLabels>,
    /// `authentication_attempts`.
    pub authentication_attempts: Family<ResultLabels, Counter>,
    /// `apiserver_authorization_decisions_total`.
    pub authorization_decisions: Family<DecisionLabels, Counter>,
    /// `etcd_request_duration_seconds`.
    pub storage_duration: Histograms<StorageLabels>,
    /// `apiserver_audit_event_total`.
    pub audit_events: Counter,
    /// `apiserver_audit_error_total`: events dropped.
    pub audit_errors: Family<PluginLabels, Counter>,
    /// `apiserver_audit_requests_rejected_total`: requests failed because a strict backend could
    /// not store their event.
    pub audit_requests_rejected: Counter,
    /// `apiserver_storage_objects`, read from the counters when scraped.
    storage_objects: Family<ResourceLabels, Gauge>,
    /// `apiserver_flowcontrol_*`.
    pub flowcontrol: flowcontrol::FlowControlMetrics,
    /// `apiserver_storage_size_bytes`, set from the storage when scraped.
    pub storage_size: Family<StorageClusterLabels, Gauge>,
    /// `aggregator_unavailable_apiservice`: 1 while an APIService is not Available.
    pub unavailable_apiservice: Family<ApiServiceLabels, Gauge>,
    /// `aggregator_unavailable_apiservice_total`: times an APIService went from Available to not.
    pub unavailable_apiservice_transitions: Family<ApiServiceReasonLabels, Counter>,
    /// `apiserver_terminated_watchers_total`: watchers dropped for falling behind.
    pub terminated_watchers: Family<GroupResourceLabels, Counter>,
    /// `apiserver_watch_cache_consistent_read_total`.
    pub consistent_reads: Family<ConsistentReadLabels, Counter>,

    object_counters: Mutex<Vec<ObjectCounter>>,
    process: process::ProcessMetrics,
    registry: Registry,
}

impl Metrics {
    fn new() -> Self {
        let requests = Family::<RequestCodeLabels, Counter>::default();
        let request_duration: Histograms<RequestLabels> =
            histograms(|| Histogram::new(REQUEST_DURATION_BUCKETS));
        let response_sizes: Histograms<RequestLabels> =
            histograms(|| Histogram::new(exponential_buckets(1000.0, 10.0, 7)));
        let inflight = Family::<InflightLabels, Gauge>::default();
        let longrunning = Family::<RequestLabels, Gauge>::default();
        let watchers = Family::<KindLabels, Gauge>::default();
        let watch_events = Family::<KindLabels, Counter>::default();
        let watch_event_sizes: Histograms<KindLabels> =
            histograms(|| Histogram::new(exponential_buckets(1024.0, 2.0, 8)));
        let admission_controller: Histograms<AdmissionLabels> =
            histograms(|| Histogram::new(ADMISSION_BUCKETS));
        let admission_webhook: Histograms<AdmissionLabels> =
            histograms(|| Histogram::new(ADMISSION_BUCKETS));
        let admission_step: Histograms<StepLabels> =
            histograms(|| Histogram::new(ADMISSION_BUCKETS));
        let authentication_attempts = Family::<ResultLabels, Counter>::default();
        let authorization_decisions = Family::<DecisionLabels, Counter>::default();
        // Upstream's etcd request buckets are its request buckets.
        let storage_duration: Histograms<StorageLabels> =
            histograms(|| Histogram::new(REQUEST_DURATION_BUCKETS));
        let storage_objects = Family::<ResourceLabels, Gauge>::default();
        let audit_events = Counter::default();
        let audit_errors = Family::<PluginLabels, Counter>::default();
        let audit_requests_rejected = Counter::default();
        let process = process::ProcessMetrics::default();

        let mut registry = Registry::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            request_duration.clone(),
        );
        registry.register(
            "apiserver_response_sizes",
            "Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component.",
            response_sizes.clone(),
        );
        registry.register(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            inflight.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
            longrunning.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resources",
            watchers.clone(),
        );
        registry.register(
            "apiserver_watch_events",
            "Number of events sent in watch clients",
            watch_events.clone(),
        );
        registry.register(
            "apiserver_watch_events_sizes",
            "Watch event size distribution in bytes",
            watch_event_sizes.clone(),
        );
        registry.register(
            "apiserver_admission_controller_admission_duration_seconds",
            "Admission controller latency histogram in seconds, identified by name and broken out for each operation and API resource and type (validate or admit).",
            admission_controller.clone(),
        );
        registry.register(
            "apiserver_admission_webhook_admission_duration_seconds",
            "Admission webhook latency histogram in seconds, identified by name and broken out for each operation and API resource and type (validate or admit).",
            admission_webhook.clone(),
        );
        registry.register(
            "apiserver_admission_step_admission_duration_seconds",
            "Admission sub-step latency histogram in seconds, broken out for each operation and API resource and step type (validate or admit).",
            admission_step.clone(),
        );
        registry.register(
            "authentication_attempts",
            "Counter of authenticated attempts.",
            authentication_attempts.clone(),
        );
        registry.register(
            "apiserver_authorization_decisions",
            "Total number of terminal decisions made by an authorizer split by authorizer type, name, and decision.",
            authorization_decisions.clone(),
        );
        registry.register(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            storage_duration.clone(),
        );
        registry.register(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            storage_objects.clone(),
        );
        registry.register(
            "apiserver_audit_event",
            "Counter of audit events generated and sent to the audit backend.",
            audit_events.clone(),
        );
        registry.register(
            "apiserver_audit_error",
            "Counter of audit events that failed to be audited properly. Plugin identifies the plugin affected by the error.",
            audit_errors.clone(),
        );
        registry.register(
            "apiserver_audit_requests_rejected",
            "Counter of apiserver requests rejected due to an error in audit logging backend.",
            audit_requests_rejected.clone(),
        );
        process.register(&mut registry);
        let flowcontrol = flowcontrol::FlowControlMetrics::register(&mut registry);
        let storage_size = Family::<StorageClusterLabels, Gauge>::default();
        registry.register(
            "apiserver_storage_size_bytes",
            "Size of the storage database file physically allocated in bytes.",
            storage_size.clone(),
        );
        let unavailable_apiservice = Family::<ApiServiceLabels, Gauge>::default();
        registry.register(
            "aggregator_unavailable_apiservice",
            "Gauge of APIServices which are marked as unavailable broken down by APIService name.",
            unavailable_apiservice.clone(),
        );
        let unavailable_apiservice_transitions =
            Family::<ApiServiceReasonLabels, Counter>::default();
        registry.register(
            "aggregator_unavailable_apiservice",
            "Counter of APIServices which are marked as unavailable broken down by APIService name and reason.",
            unavailable_apiservice_transitions.clone(),
        );

        let terminated_watchers = Family::<GroupResourceLabels, Counter>::default();
        registry.register(
            "apiserver_terminated_watchers",
            "Counter of watchers closed due to unresponsiveness broken by resource type.",
            terminated_watchers.clone(),
        );

        let consistent_reads = Family::<ConsistentReadLabels, Counter>::default();
        registry.register(
            "apiserver_watch_cache_consistent_read",
            "Counter for consistent reads from cache.",
            consistent_reads.clone(),
        );

        Self {
            requests,
            request_duration,
            response_sizes,
            inflight,
            longrunning,
            watchers,
            watch_events,
            watch_event_sizes,
            admission_controller,
            admission_webhook,
            admission_step,
            authentication_attempts,
            authorization_decisions,
            storage_duration,
            audit_events,
            audit_errors,
            audit_requests_rejected,
            storage_objects,
            flowcontrol,
            storage_size,
            unavailable_apiservice,
            unavailable_apiservice_transitions,
            terminated_watchers,
            consistent_reads,
            object_counters: Mutex::default(),
            process,
            registry,
        }
    }

    /// Adds a source of `apiserver_storage_objects`, asked at each scrape.
    pub fn count_objects_with(&self, counter: ObjectCounter) {
        self.object_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(counter);
    }

    /// Objects stored per resource (`resource.group`, or `resource` in the core group), as
    /// the counters added with [`Metrics::count_objects_with`] count them now.
    pub fn object_counts(&self) -> std::collections::HashMap<String, i64> {
        self.object_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|counter| counter())
            .collect()
    }

    /// Every metric in the text format, the process and storage figures read now.
    pub fn encode(&self) -> String {
        self.process.refresh();
        for (resource, count) in self.object_counts() {
            self.storage_objects
                .get_or_create(&ResourceLabels { resource })
                .set(count);
        }
        exposition::encode(&self.registry)
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// A gauge of `f64` values.
type FloatGauge = Gauge<f64, AtomicU64>;

/// Keeps a value's gauge up for as long as it lives (a watcher, a long-running request).
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    /// Raises `gauge` by one until dropped.
    pub fn hold(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
