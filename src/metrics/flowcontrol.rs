//! API Priority and Fairness' metrics (`apiserver_flowcontrol_*`), with upstream's names,
//! labels and buckets.

use super::{GaugeGuard, Histograms, histograms};
use crate::flowcontrol::borrowing::DemandStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Upstream's `requestDurationSecondsBuckets` for queue waits.
const WAIT_BUCKETS: [f64; 13] = [
    0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
];

/// Upstream's `work_estimated_seats` buckets.
const ESTIMATED_SEATS_BUCKETS: [f64; 4] = [1.0, 2.0, 4.0, 10.0];

/// A request's flow schema and priority level.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    /// The matched FlowSchema.
    pub flow_schema: String,
    /// Its priority level.
    pub priority_level: String,
}

/// A rejection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// The matched FlowSchema.
    pub flow_schema: String,
    /// Its priority level.
    pub priority_level: String,
    /// `queue-full`, `concurrency-limit`, `time-out` or `cancelled`.
    pub reason: String,
}

/// A finished wait.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaitLabels {
    /// Whether the request went on to execute.
    pub execute: String,
    /// The matched FlowSchema.
    pub flow_schema: String,
    /// Its priority level.
    pub priority_level: String,
}

/// A priority level.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    /// Its name.
    pub priority_level: String,
}

/// The `apiserver_flowcontrol_*` families.
pub struct FlowControlMetrics {
    rejected: Family<RejectLabels, Counter>,
    dispatched: Family<FlowLabels, Counter>,
    inqueue: Family<FlowLabels, Gauge>,
    executing: Family<FlowLabels, Gauge>,
    wait: Histograms<WaitLabels>,
    estimated_seats: Histograms<FlowLabels>,
    nominal: Family<LevelLabels, Gauge>,
    lower_limit: Family<LevelLabels, Gauge>,
    upper_limit: Family<LevelLabels, Gauge>,
    current_limit: Family<LevelLabels, Gauge>,
    demand_high_watermark: Family<LevelLabels, FloatGauge>,
    demand_average: Family<LevelLabels, FloatGauge>,
    demand_stdev: Family<LevelLabels, FloatGauge>,
    demand_smoothed: Family<LevelLabels, FloatGauge>,
    target: Family<LevelLabels, FloatGauge>,
    fair_frac: FloatGauge,
}

/// A gauge of fractional seats.
type FloatGauge = Gauge<f64, AtomicU64>;

fn flow(flow_schema: &str, priority_level: &str) -> FlowLabels {
    FlowLabels {
        flow_schema: flow_schema.into(),
        priority_level: priority_level.into(),
    }
}

impl FlowControlMetrics {
    /// The families, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            rejected: Family::default(),
            dispatched: Family::default(),
            inqueue: Family::default(),
            executing: Family::default(),
            wait: histograms(|| Histogram::new(WAIT_BUCKETS)),
            estimated_seats: histograms(|| Histogram::new(ESTIMATED_SEATS_BUCKETS)),
            nominal: Family::default(),
            lower_limit: Family::default(),
            upper_limit: Family::default(),
            current_limit: Family::default(),
            demand_high_watermark: Family::default(),
            demand_average: Family::default(),
            demand_stdev: Family::default(),
            demand_smoothed: Family::default(),
            target: Family::default(),
            fair_frac: FloatGauge::default(),
        };
        registry.register(
            "apiserver_flowcontrol_rejected_requests",
            "Number of requests rejected by API Priority and Fairness subsystem",
            m.rejected.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_dispatched_requests",
            "Number of requests executed by API Priority and Fairness subsystem",
            m.dispatched.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_current_inqueue_requests",
            "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            m.inqueue.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_current_executing_requests",
            "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
            m.executing.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_request_wait_duration_seconds",
            "Length of time a request spent waiting in its queue",
            m.wait.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_work_estimated_seats",
            "Number of estimated seats (maximum of initial and final seats) associated with requests in API Priority and Fairness",
            m.estimated_seats.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_nominal_limit_seats",
            "Nominal number of execution seats configured for each priority level",
            m.nominal.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_current_limit_seats",
            "current derived number of execution seats available to each priority level",
            m.current_limit.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_lower_limit_seats",
            "Configured lower bound on number of execution seats available to each priority level",
            m.lower_limit.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_upper_limit_seats",
            "Configured upper bound on number of execution seats available to each priority level",
            m.upper_limit.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_demand_seats_high_watermark",
            "High watermark, over last adjustment period, of demand_seats",
            m.demand_high_watermark.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_demand_seats_average",
            "Time-weighted average, over last adjustment period, of demand_seats",
            m.demand_average.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_demand_seats_stdev",
            "Time-weighted standard deviation, over last adjustment period, of demand_seats",
            m.demand_stdev.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_demand_seats_smoothed",
            "Smoothed seat demands",
            m.demand_smoothed.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_target_seats",
            "Seat allocation targets",
            m.target.clone(),
        );
        registry.register(
            "apiserver_flowcontrol_seat_fair_frac",
            "Fair fraction of server's concurrency to allocate to each priority level that can use it",
            m.fair_frac.clone(),
        );
        m
    }

    /// A priority level's configured seats.
    pub fn level(&self, level: &crate::flowcontrol::Level) {
        let labels = LevelLabels {
            priority_level: level.name.to_string(),
        };
        let seats = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.nominal
            .get_or_create(&labels)
            .set(seats(level.nominal));
        self.lower_limit
            .get_or_create(&labels)
            .set(seats(level.lower));
        self.upper_limit
            .get_or_create(&labels)
            .set(seats(level.upper));
    }

    /// A priority level's seats after a borrowing adjustment, and the demand that led there.
    pub fn adjusted(&self, level: &str, demand: &DemandStats, target: f64, limit: usize) {
        let labels = LevelLabels {
            priority_level: level.into(),
        };
        for (family, value) in [
            (&self.demand_high_watermark, demand.high_watermark),
            (&self.demand_average, demand.average),
            (&self.demand_stdev, demand.deviation),
            (&self.demand_smoothed, demand.smoothed),
            (&self.target, target),
        ] {
            family.get_or_create(&labels).set(value);
        }
        self.current_limit
            .get_or_create(&labels)
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    /// The fair proportion of the last adjustment.
    pub fn fair_frac(&self, fair: f64) {
        self.fair_frac.set(fair);
    }

    /// Counts a request in its queue while the guard lives.
    pub fn waiting(&self, flow_schema: &str, level: &str) -> GaugeGuard {
        GaugeGuard::hold(
            self.inqueue
                .get_or_create(&flow(flow_schema, level))
                .clone(),
        )
    }

    /// Counts a request executing while the guard lives.
    pub fn executing(&self, flow_schema: &str, level: &str) -> GaugeGuard {
        GaugeGuard::hold(
            self.executing
                .get_or_create(&flow(flow_schema, level))
                .clone(),
        )
    }

    /// Records how long a request waited and whether it went on to execute.
    pub fn waited(&self, flow_schema: &str, level: &str, execute: bool, waited: Duration) {
        if execute {
            self.dispatched
                .get_or_create(&flow(flow_schema, level))
                .inc();
        }
        self.wait
            .get_or_create(&WaitLabels {
                execute: execute.to_string(),
                flow_schema: flow_schema.into(),
                priority_level: level.into(),
            })
            .observe(waited.as_secs_f64());
    }

    /// Records a request's estimated seats.
    pub fn estimated(&self, flow_schema: &str, level: &str, seats: usize) {
        self.estimated_seats
            .get_or_create(&flow(flow_schema, level))
            .observe(seats as f64);
    }

    /// Counts a rejection.
    pub fn rejected(&self, flow_schema: &str, level: &str, reason: &str) {
        self.rejected
            .get_or_create(&RejectLabels {
                flow_schema: flow_schema.into(),
                priority_level: level.into(),
                reason: reason.into(),
            })
            .inc();
    }
}
