//! API Priority and Fairness (upstream's `k8s.io/apiserver/pkg/util/flowcontrol`): every
//! request is classified by the first FlowSchema that matches it, and waits for a seat of its
//! schema's priority level in that level's fair queues. The server's concurrency
//! (`--max-requests-inflight` + `--max-mutating-requests-inflight`) is shared among the levels
//! by their nominal concurrency shares, and lent and borrowed between them as their demand
//! goes ([`borrowing`]); `exempt` requests never wait.
//!
//! [`FlowControl`] holds the digested configuration; [`controller`] keeps it in step with the
//! FlowSchema and PriorityLevelConfiguration objects (and their `Dangling` conditions);
//! [`ensurer`] maintains upstream's bootstrap objects; [`dump`] serves the debug endpoints.

pub mod bootstrap;
pub mod borrowing;
pub mod controller;
mod dropped;
pub mod dump;
pub mod ensurer;
mod matching;
pub mod queueset;
pub mod work_estimate;

use crate::auth::UserInfo;
use crate::endpoints::request_info::RequestInfo;
use bootstrap::{CATCH_ALL, EXEMPT};
use k8s_openapi::api::flowcontrol::v1::{
    FlowSchema, FlowSchemaCondition, PriorityLevelConfiguration,
};
use queueset::{Descr, Limit, QueueSet, Queuing, Reason, Seat, Start};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A FlowSchema as the filter uses it.
pub struct Schema {
    /// Its name.
    pub name: Arc<str>,
    /// Its UID, for the `X-Kubernetes-PF-FlowSchema-UID` header.
    pub uid: String,
    /// The priority level it names.
    pub level: String,
    precedence: i32,
    distinguisher: Option<String>,
    rules: Vec<k8s_openapi::api::flowcontrol::v1::PolicyRulesWithSubjects>,
}

/// A priority level as the filter uses it.
pub struct Level {
    /// Its name.
    pub name: Arc<str>,
    /// Its UID, for the `X-Kubernetes-PF-PriorityLevel-UID` header.
    pub uid: String,
    /// Its nominal concurrency limit, in seats.
    pub nominal: usize,
    /// The least it keeps: nominal less what it may lend.
    pub lower: usize,
    /// The most it may have: nominal plus what it may borrow.
    pub upper: usize,
    /// The most seats one of its requests may take (0: no bound of its own).
    pub max_seats: usize,
    queues: Arc<QueueSet>,
}

impl Level {
    /// Its queues.
    pub fn queues(&self) -> &Arc<QueueSet> {
        &self.queues
    }
}

/// The configuration in force: schemas in matching order, levels by name.
#[derive(Default)]
pub struct Digest {
    /// FlowSchemas, by ascending matchingPrecedence then name.
    pub schemas: Vec<Arc<Schema>>,
    /// Priority levels by name.
    pub levels: BTreeMap<String, Arc<Level>>,
}

/// A request's classification.
pub struct Classification {
    /// The schema it matched.
    pub schema: Arc<Schema>,
    /// Its schema's level.
    pub level: Arc<Level>,
    /// Its flow distinguisher.
    pub distinguisher: String,
}

/// Why a request was not admitted: the reason label and the `Retry-After` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// `queue-full`, `concurrency-limit`, `time-out` or `cancelled`.
    pub reason: Reason,
    /// Seconds the client is told to wait.
    pub retry_after: i64,
}

/// The server's API Priority and Fairness.
pub struct FlowControl {
    server_concurrency: usize,
    digest: RwLock<Arc<Digest>>,
    dropped: dropped::DroppedRequests,
    /// Objects stored per resource, for work estimates, and when they were counted.
    object_counts: Mutex<(Instant, Arc<HashMap<String, i64>>)>,
}

/// How long object counts serve work estimates before they are counted again.
const OBJECT_COUNTS_FRESH: Duration = Duration::from_secs(1);

/// A FlowSchema's `Dangling` condition that differs from what the digest found.
#[derive(Debug, Clone, PartialEq)]
pub struct DanglingUpdate {
    /// The schema's name.
    pub name: String,
    /// "True" when its level does not exist.
    pub status: &'static str,
    /// `NotFound` or `Found`.
    pub reason: &'static str,
    /// Upstream's message.
    pub message: String,
}

impl FlowControl {
    /// Flow control over `server_concurrency` seats, with only the mandatory configuration
    /// until the controller digests the objects.
    pub fn new(server_concurrency: usize) -> Arc<Self> {
        let fc = Arc::new(Self {
            server_concurrency,
            digest: RwLock::default(),
            dropped: dropped::DroppedRequests::default(),
            object_counts: Mutex::new((Instant::now(), Arc::default())),
        });
        fc.digest(Vec::new(), Vec::new());
        fc
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Digest> {
        self.digest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes in the objects as they now are (upstream's `digestConfigObjects`): levels keep
    /// their queues when their queuing is unchanged, missing mandatory objects are imagined,
    /// schemas naming no level are set aside. Returns the `Dangling` conditions to write.
    pub fn digest(
        &self,
        pls: Vec<PriorityLevelConfiguration>,
        fss: Vec<FlowSchema>,
    ) -> Vec<DanglingUpdate> {
        let old = self.current();
        let mut specs: BTreeMap<String, (String, LevelSpec)> = BTreeMap::new();
        for pl in &pls {
            let name = pl.metadata.name.clone().unwrap_or_default();
            if let Some(spec) = pl.spec.as_ref().and_then(|s| level_spec(&name, s)) {
                let uid = pl.metadata.uid.clone().unwrap_or_default();
                specs.insert(name, (uid, spec));
            } else {
                tracing::warn!(level = %name, "ignoring a PriorityLevelConfiguration whose spec is broken");
            }
        }
        for b in bootstrap::mandatory_priority_levels() {
            if !specs.contains_key(b.name) {
                let spec = serde_json::from_value(b.spec).expect("bootstrap spec decodes");
                let spec = level_spec(b.name, &spec).expect("bootstrap spec is valid");
                specs.insert(b.name.to_string(), (String::new(), spec));
            }
        }
        let share_sum: f64 = specs.values().map(|(_, s)| f64::from(s.shares)).sum();
        let server = self.server_concurrency as f64;
        let levels: BTreeMap<String, Arc<Level>> = specs
            .into_iter()
            .map(|(name, (uid, spec))| {
                // Upstream's finishQueueSetReconfigsLocked: the ceilings may sum to a little
                // more than the server's concurrency.
                let nominal = if share_sum > 0.0 {
                    (server * f64::from(spec.shares) / share_sum).ceil() as usize
                } else {
                    0
                };
                let percent_of_nominal = |p: i32| (nominal as f64 * f64::from(p) / 100.0).round();
                let lendable = spec
                    .lendable_percent
                    .map_or(0, |p| percent_of_nominal(p) as usize);
                let borrowable = spec
                    .borrowing_percent
                    .map_or(self.server_concurrency, |p| percent_of_nominal(p) as usize);
                let queues = match old.levels.get(&name) {
                    Some(l) if l.queues.kind() == spec.limit => l.queues.clone(),
                    // New queues start halfway into what they may lend.
                    _ => QueueSet::new(spec.limit, nominal.saturating_sub(lendable / 2)),
                };
                let level = Level {
                    name: name.as_str().into(),
                    uid,
                    nominal,
                    lower: nominal - lendable.min(nominal),
                    upper: nominal + borrowable,
                    max_seats: work_estimate::level_max_seats(nominal, spec.limit),
                    queues,
                };
                crate::metrics::metrics().flowcontrol.level(&level);
                (name, Arc::new(level))
            })
            .collect();
        self.rebalance_levels(&levels);

        let mut updates = Vec::new();
        let mut schemas = Vec::new();
        for fs in fss {
            let name = fs.metadata.name.clone().unwrap_or_default();
            let spec = fs.spec.clone().unwrap_or_default();
            let level = spec.priority_level_configuration.name.clone();
            let found = levels.contains_key(&level);
            if let Some(update) = dangling_update(&fs, &name, &level, found) {
                updates.push(update);
            }
            if found {
                schemas.push(schema(
                    &name,
                    fs.metadata.uid.clone().unwrap_or_default(),
                    spec,
                ));
            }
        }
        schemas.sort_by(|a, b| (a.precedence, &a.name).cmp(&(b.precedence, &b.name)));
        for b in bootstrap::mandatory_flow_schemas() {
            if !schemas.iter().any(|s| &*s.name == b.name) {
                let spec = serde_json::from_value(b.spec).expect("bootstrap spec decodes");
                let s = schema(b.name, String::new(), spec);
                if b.name == EXEMPT {
                    schemas.insert(0, s);
                } else {
                    schemas.push(s);
                }
            }
        }
        *self.digest.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Digest {
            schemas: schemas.into_iter().map(Arc::new).collect(),
            levels,
        });
        updates
    }

    /// Shares the server's seats among the levels again by their demand since the last time
    /// (every [`borrowing::ADJUSTMENT_PERIOD`]).
    pub fn rebalance(&self) {
        self.rebalance_levels(&self.current().levels);
    }

    /// Upstream's `updateBorrowingLocked`: each level's demand over the period gives its
    /// claim, the nominal seats are allocated to the claims, and each level's queues get
    /// their share, rounded.
    fn rebalance_levels(&self, levels: &BTreeMap<String, Arc<Level>>) {
        let mut claims = Vec::with_capacity(levels.len());
        let mut stats = Vec::with_capacity(levels.len());
        for level in levels.values() {
            let demand = level.queues.observe_demand();
            claims.push(borrowing::claim(
                level.nominal,
                level.lower,
                level.upper,
                &demand,
            ));
            stats.push(demand);
        }
        let nominal_sum = levels.values().map(|l| l.nominal).sum();
        let (allocations, fair) = match borrowing::allocate(nominal_sum, &claims) {
            Some(found) => found,
            None => {
                tracing::error!(
                    ?claims,
                    "unable to derive new concurrency limits; keeping the current ones"
                );
                let current = levels.values().map(|l| l.queues.limit() as f64).collect();
                (current, 0.0)
            }
        };
        let metrics = &crate::metrics::metrics().flowcontrol;
        for (((level, allocation), claim), demand) in
            levels.values().zip(allocations).zip(&claims).zip(&stats)
        {
            let limit = allocation.round() as usize;
            level.queues.set_limit(limit);
            metrics.adjusted(&level.name, demand, claim.target, limit);
        }
        metrics.fair_frac(fair);
    }

    /// The first schema matching the request, and its level (upstream's `startRequest`).
    pub fn classify(&self, user: &UserInfo, info: &RequestInfo) -> Classification {
        let digest = self.current();
        let schema = digest
            .schemas
            .iter()
            .find(|s| matching::matches(&s.rules, user, info))
            .or_else(|| digest.schemas.iter().find(|s| &*s.name == CATCH_ALL))
            .expect("the catch-all schema is always there")
            .clone();
        let level = digest.levels[&schema.level].clone();
        let distinguisher = match schema.distinguisher.as_deref() {
            Some("ByUser") => user.name.clone(),
            Some("ByNamespace") => info.namespace.clone(),
            _ => String::new(),
        };
        Classification {
            schema,
            level,
            distinguisher,
        }
    }

    /// The seats a request classified as `c` takes ([`work_estimate`]); exempt requests are
    /// not estimated, as upstream's.
    pub fn estimate(&self, c: &Classification, info: &RequestInfo, query: &str) -> usize {
        if c.level.queues.kind() == Limit::Exempt {
            return work_estimate::MINIMUM_SEATS;
        }
        let stored = || {
            let resource = if info.api_group.is_empty() {
                info.resource.clone()
            } else {
                format!("{}.{}", info.resource, info.api_group)
            };
            self.object_counts().get(&resource).copied()
        };
        let seats = work_estimate::seats(info, query, stored, c.level.max_seats);
        crate::metrics::metrics()
            .flowcontrol
            .estimated(&c.schema.name, &c.level.name, seats);
        seats
    }

    /// Objects stored per resource (`apiserver_storage_objects`), counted at most once per
    /// [`OBJECT_COUNTS_FRESH`].
    fn object_counts(&self) -> Arc<HashMap<String, i64>> {
        let mut counts = self.object_counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.1.is_empty() || counts.0.elapsed() > OBJECT_COUNTS_FRESH {
            *counts = (
                Instant::now(),
                Arc::new(crate::metrics::metrics().object_counts()),
            );
        }
        counts.1.clone()
    }

    /// Asks the request's level for its `seats`: now, later (the ticket), or never.
    pub fn start(
        &self,
        c: &Classification,
        seats: usize,
        descr: Arc<Descr>,
    ) -> Result<Admission, Rejection> {
        // As upstream, only a level with queues to choose among hashes the flow.
        let flow = match c.level.queues.kind() {
            Limit::Queue(q) if q.queues > 1 => hash_flow(&c.schema.name, &c.distinguisher),
            _ => 0,
        };
        match c.level.queues.start(flow, seats, descr) {
            Start::Execute(seat) => {
                crate::metrics::metrics().flowcontrol.waited(
                    &c.schema.name,
                    &c.level.name,
                    true,
                    std::time::Duration::ZERO,
                );
                Ok(Admission::Now(seat))
            }
            Start::Wait(ticket) => Ok(Admission::Later(ticket)),
            Start::Reject(reason) => Err(self.reject(c, reason)),
        }
    }

    /// Waits in the queue for a seat until `deadline`.
    pub async fn wait(
        &self,
        c: &Classification,
        ticket: queueset::Ticket,
        deadline: tokio::time::Instant,
    ) -> Result<Seat, Rejection> {
        let metrics = &crate::metrics::metrics().flowcontrol;
        let started = std::time::Instant::now();
        let waited = {
            let _waiting = metrics.waiting(&c.schema.name, &c.level.name);
            ticket.wait(deadline).await
        };
        metrics.waited(
            &c.schema.name,
            &c.level.name,
            waited.is_ok(),
            started.elapsed(),
        );
        waited.map_err(|reason| self.reject(c, reason))
    }

    fn reject(&self, c: &Classification, reason: Reason) -> Rejection {
        crate::metrics::metrics()
            .flowcontrol
            .rejected(&c.schema.name, &c.level.name, reason);
        Rejection {
            reason,
            retry_after: self.dropped.record(&c.level.name),
        }
    }
}

/// A request's admission by its level.
pub enum Admission {
    /// It has a seat.
    Now(Seat),
    /// It waits in a queue.
    Later(queueset::Ticket),
}

fn schema(
    name: &str,
    uid: String,
    spec: k8s_openapi::api::flowcontrol::v1::FlowSchemaSpec,
) -> Schema {
    Schema {
        name: name.into(),
        uid,
        level: spec.priority_level_configuration.name,
        precedence: spec.matching_precedence.unwrap_or(1000),
        distinguisher: spec.distinguisher_method.map(|d| d.type_),
        rules: spec.rules.unwrap_or_default(),
    }
}

/// What a level's spec says of its seats.
struct LevelSpec {
    limit: Limit,
    shares: i32,
    lendable_percent: Option<i32>,
    /// None: it may borrow without bound.
    borrowing_percent: Option<i32>,
}

/// How a level's spec limits, its shares and what it may lend and borrow; `None` for a spec
/// upstream would ignore.
fn level_spec(
    name: &str,
    spec: &k8s_openapi::api::flowcontrol::v1::PriorityLevelConfigurationSpec,
) -> Option<LevelSpec> {
    match (spec.type_.as_str(), &spec.exempt, &spec.limited) {
        ("Exempt", exempt, None) if name == EXEMPT => Some(LevelSpec {
            limit: Limit::Exempt,
            shares: exempt
                .as_ref()
                .and_then(|e| e.nominal_concurrency_shares)
                .unwrap_or(0),
            lendable_percent: exempt.as_ref().and_then(|e| e.lendable_percent),
            borrowing_percent: None,
        }),
        ("Limited", None, Some(limited)) if name != EXEMPT => {
            let shares = limited.nominal_concurrency_shares.unwrap_or(30);
            let response = limited.limit_response.as_ref()?;
            let limit = match (response.type_.as_str(), &response.queuing) {
                ("Reject", None) => Limit::Reject,
                ("Queue", Some(q)) => {
                    let queues = usize::try_from(q.queues.unwrap_or(64)).ok()?;
                    let hand_size = usize::try_from(q.hand_size.unwrap_or(8)).ok()?;
                    let queue_length_limit =
                        usize::try_from(q.queue_length_limit.unwrap_or(50)).ok()?;
                    if queues == 0 || hand_size == 0 || hand_size > queues {
                        return None;
                    }
                    Limit::Queue(Queuing {
                        queues,
                        hand_size,
                        queue_length_limit,
                    })
                }
                _ => return None,
            };
            Some(LevelSpec {
                limit,
                shares,
                lendable_percent: limited.lendable_percent,
                borrowing_percent: limited.borrowing_limit_percent,
            })
        }
        _ => None,
    }
}

fn dangling_update(
    fs: &FlowSchema,
    name: &str,
    level: &str,
    found: bool,
) -> Option<DanglingUpdate> {
    let (status, reason, message) = if found {
        (
            "False",
            "Found",
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"
            ),
        )
    } else {
        (
            "True",
            "NotFound",
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object"
            ),
        )
    };
    let same = dangling_condition(fs).is_some_and(|c| {
        c.status.as_deref() == Some(status)
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message.as_str())
    });
    (!same).then(|| DanglingUpdate {
        name: name.to_string(),
        status,
        reason,
        message,
    })
}

/// A FlowSchema's `Dangling` condition, if it has one.
pub fn dangling_condition(fs: &FlowSchema) -> Option<&FlowSchemaCondition> {
    fs.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some("Dangling"))
}

/// Upstream's `hashFlowID`: the first 8 bytes, little-endian, of sha256(schema, 0, flow).
fn hash_flow(schema: &str, distinguisher: &str) -> u64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(schema.as_bytes());
    ctx.update(&[0]);
    ctx.update(distinguisher.as_bytes());
    let sum = ctx.finish();
    u64::from_le_bytes(sum.as_ref()[..8].try_into().expect("sha256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::request_info::Verb;

    fn objects() -> (Vec<PriorityLevelConfiguration>, Vec<FlowSchema>) {
        let pls = bootstrap::mandatory_priority_levels()
            .into_iter()
            .chain(bootstrap::suggested_priority_levels())
            .map(|b| serde_json::from_value(b.object()).unwrap())
            .collect();
        let fss = bootstrap::mandatory_flow_schemas()
            .into_iter()
            .chain(bootstrap::suggested_flow_schemas())
            .map(|b| serde_json::from_value(b.object()).unwrap())
            .collect();
        (pls, fss)
    }

    #[test]
    fn the_bootstrap_configuration_shares_upstreams_600_seats_as_upstream() {
        let fc = FlowControl::new(600);
        let (pls, fss) = objects();
        let updates = fc.digest(pls, fss);
        assert_eq!(updates.len(), 11, "every schema gains its Dangling=False");
        assert!(updates.iter().all(|u| u.status == "False"));
        let d = fc.current();
        // Upstream: 245 shares; global-default ceil(600*20/245) = 49, workload-low 245.
        assert_eq!(d.levels["global-default"].nominal, 49);
        assert_eq!(d.levels["workload-low"].nominal, 245);
        assert_eq!(d.levels["catch-all"].nominal, 13);
        assert_eq!(d.levels["exempt"].nominal, 0);
        // What each may lend and borrow: global-default lends 50% (round(24.5) = 25) and, with
        // no borrowing limit, may borrow the server's 600.
        let bounds = |name: &str| (d.levels[name].lower, d.levels[name].upper);
        assert_eq!(bounds("global-default"), (24, 649));
        assert_eq!(bounds("workload-low"), (24, 845));
        assert_eq!(bounds("catch-all"), (13, 613));
        assert_eq!(bounds("exempt"), (0, 600));
        let names: Vec<_> = d.schemas.iter().map(|s| &*s.name).collect();
        assert_eq!(names[..3], ["exempt", "probes", "system-leader-election"]);
        assert_eq!(names.last(), Some(&"catch-all"));
    }

    #[test]
    fn a_busy_level_borrows_what_idle_levels_lend_up_to_its_borrowing_limit() {
        // Ten seats: the bootstrap levels' nominal limits sum to 13, and "borrower" has 1 of
        // its own and may borrow 300% of it.
        let fc = FlowControl::new(10);
        let (mut pls, fss) = objects();
        pls.push(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "borrower"},
                "spec": {"type": "Limited", "limited": {
                    "nominalConcurrencyShares": 10, "lendablePercent": 0,
                    "borrowingLimitPercent": 300,
                    "limitResponse": {"type": "Queue", "queuing":
                        {"queues": 1, "handSize": 1, "queueLengthLimit": 10}}}}
            }))
            .unwrap(),
        );
        fc.digest(pls, fss);
        let level = fc.current().levels["borrower"].clone();
        assert_eq!((level.nominal, level.lower, level.upper), (1, 1, 4));
        // Idle, every level gets its target (its lower bound) in one proportion: above 1.
        let idle = level.queues().limit();
        assert!((2..4).contains(&idle), "{idle}");
        // Five requests: `idle` execute, the rest wait.
        let mut seats = Vec::new();
        let mut tickets = Vec::new();
        for _ in 0..5 {
            match level.queues().start(0, 1, Arc::default()) {
                Start::Execute(seat) => seats.push(seat),
                Start::Wait(ticket) => tickets.push(ticket),
                Start::Reject(reason) => panic!("rejected: {reason}"),
            }
        }
        assert_eq!(level.queues().counts(), (5 - idle, idle));
        std::thread::sleep(std::time::Duration::from_millis(20));
        // The idle levels lend: the borrower reaches its limit of 4 and three more execute.
        fc.rebalance();
        assert_eq!(level.queues().limit(), 4);
        assert_eq!(level.queues().counts(), (1, 4));
        // The demand is gone, but its smoothed figure decays with a five-minute half-life:
        // the seats stay for the next period.
        drop(seats);
        drop(tickets);
        fc.rebalance();
        assert_eq!(level.queues().limit(), 4);
    }

    #[test]
    fn requests_are_classified_by_the_first_matching_schema() {
        let fc = FlowControl::new(600);
        let (pls, fss) = objects();
        fc.digest(pls, fss);
        let admin = UserInfo {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        let info = RequestInfo {
            is_resource_request: true,
            verb: Verb::List,
            resource: "pods".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        assert_eq!(&*fc.classify(&admin, &info).schema.name, "exempt");
        let alice = UserInfo {
            name: "alice".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        };
        let c = fc.classify(&alice, &info);
        assert_eq!(
            (&*c.schema.name, &*c.level.name),
            ("global-default", "global-default")
        );
        assert_eq!(c.distinguisher, "alice");
        let probe = RequestInfo {
            path: "/readyz".into(),
            ..Default::default()
        };
        assert_eq!(&*fc.classify(&alice, &probe).level.name, "exempt");
    }

    #[test]
    fn a_schema_naming_a_missing_level_dangles_and_is_set_aside() {
        let fc = FlowControl::new(10);
        let fs: FlowSchema = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "orphan"},
            "spec": {"priorityLevelConfiguration": {"name": "nowhere"}, "matchingPrecedence": 5,
                     "rules": [{"subjects": [{"kind": "Group", "group": {"name": "*"}}],
                                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]},
        }))
        .unwrap();
        let updates = fc.digest(Vec::new(), vec![fs]);
        assert_eq!(updates[0].status, "True");
        assert_eq!(
            updates[0].message,
            r#"This FlowSchema references the PriorityLevelConfiguration object named "nowhere" but there is no such object"#
        );
        let names: Vec<_> = fc
            .current()
            .schemas
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["exempt", "catch-all"]);
        // Only the mandatory levels: catch-all has all ten seats.
        assert_eq!(fc.current().levels["catch-all"].nominal, 10);
    }

    #[test]
    fn flows_hash_as_upstreams_hash_flow_id() {
        // The first 8 bytes of sha256("a\0b") and sha256("global-default\0alice"), little-endian.
        assert_eq!(hash_flow("a", "b"), 0xd3b1_bc1b_ae71_b259);
        assert_eq!(hash_flow("global-default", "alice"), 0xf4de_3bd4_2ccd_f6b7);
    }
}
