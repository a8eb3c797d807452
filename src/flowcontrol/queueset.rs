//! One priority level's queues: upstream's fair queuing for server requests
//! (`fairqueuing/queueset`). A request is shuffle-sharded to the shortest queue of its flow's
//! hand; seats go to the queue whose head would finish first in virtual time, where virtual
//! time (R) advances at the rate each active queue would be served if seats were shared
//! equally. A request occupies the seats its work estimate gives it ([`super::work_estimate`])
//! and is estimated to hold them for `G` (3 ms), corrected when it finishes; a request wider
//! than the limit runs alone.

use super::borrowing::{DemandIntegrator, DemandStats};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// Upstream's `estimatedServiceDuration` (G): the work a request is assumed to take, in
/// seat-seconds per seat, until it finishes and its real duration is known.
const G: f64 = 0.003;

/// How a level limits: its shuffle-sharded queues, none (reject beyond the limit) or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Exempt: every request executes at once.
    Exempt,
    /// Limited, rejecting what does not fit.
    Reject,
    /// Limited, queuing what does not fit.
    Queue(Queuing),
}

/// A limited level's queuing parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queuing {
    /// Number of queues.
    pub queues: usize,
    /// Queues dealt to each flow.
    pub hand_size: usize,
    /// Requests a queue holds before it rejects.
    pub queue_length_limit: usize,
}

/// Why a request was rejected, as upstream's `reason` label says it.
pub type Reason = &'static str;

/// What a request was, for the debug dumps.
#[derive(Debug, Clone, Default)]
pub struct Descr {
    /// The flow schema it matched.
    pub flow_schema: Arc<str>,
    /// Its flow distinguisher.
    pub distinguisher: String,
    /// Who sent it.
    pub user: String,
    /// Verb, path, namespace, name, group/version, resource, subresource.
    pub request: [String; 7],
}

struct Waiter {
    id: u64,
    seats: usize,
    arrival_r: f64,
    arrival: SystemTime,
    wake: Option<oneshot::Sender<()>>,
    descr: Arc<Descr>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiter>,
    next_dispatch_r: f64,
    executing: usize,
    seats_in_use: usize,
    /// The seats its waiting requests ask for, kept as they come and go: virtual time and
    /// shuffle sharding read it under the lock of every request.
    seats_waiting: usize,
}

struct Executing {
    id: u64,
    seats: usize,
    queue: Option<usize>,
    arrival: SystemTime,
    start: SystemTime,
    descr: Arc<Descr>,
}

/// Totals since the queue set was made, for the debug dumps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Requests dispatched.
    pub dispatched: u64,
    /// Requests rejected (all reasons).
    pub rejected: u64,
    /// Requests that waited too long.
    pub timed_out: u64,
    /// Requests whose client left while waiting.
    pub cancelled: u64,
}

struct State {
    limit: usize,
    queues: Vec<Queue>,
    current_r: f64,
    last_sync: Instant,
    robin: usize,
    enqueues: usize,
    seats_in_use: usize,
    /// Requests waiting.
    waiting: usize,
    seats_waiting: usize,
    next_id: u64,
    totals: Totals,
    executing: Vec<Executing>,
    /// Seats in use plus seats waiting, over time.
    demand: DemandIntegrator,
    demand_stats: DemandStats,
}

/// A priority level's queues and seats.
pub struct QueueSet {
    limit_kind: Limit,
    state: Mutex<State>,
}

/// What became of a request arriving at a queue set.
pub enum Start {
    /// It may execute now.
    Execute(Seat),
    /// It waits in a queue.
    Wait(Ticket),
    /// It is rejected.
    Reject(Reason),
}

impl QueueSet {
    /// A queue set limiting as `kind` says, with `limit` seats.
    pub fn new(kind: Limit, limit: usize) -> Arc<Self> {
        let queues = match kind {
            Limit::Queue(q) => (0..q.queues).map(|_| Queue::default()).collect(),
            _ => Vec::new(),
        };
        Arc::new(Self {
            limit_kind: kind,
            state: Mutex::new(State {
                limit,
                queues,
                current_r: 0.0,
                last_sync: Instant::now(),
                robin: 0,
                enqueues: 0,
                seats_in_use: 0,
                waiting: 0,
                seats_waiting: 0,
                next_id: 0,
                totals: Totals::default(),
                executing: Vec::new(),
                demand: DemandIntegrator::new(Instant::now()),
                demand_stats: DemandStats::default(),
            }),
        })
    }

    /// How this queue set limits.
    pub fn kind(&self) -> Limit {
        self.limit_kind
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.sync_time();
        state
    }

    /// Changes the concurrency limit, dispatching what now fits.
    pub fn set_limit(&self, limit: usize) {
        let mut state = self.lock();
        state.limit = limit;
        state.dispatch_all();
    }

    /// The concurrency limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Ends a borrowing period: its demand taken into the level's statistics, which are
    /// returned, and a new period begun.
    pub fn observe_demand(&self) -> DemandStats {
        let mut state = self.lock();
        let observed = state.demand.reset(Instant::now());
        state.demand_stats.update(observed);
        state.demand_stats
    }

    /// Admits a request of `seats` seats of the flow hashing to `hash`: executes it, queues it
    /// or rejects it.
    pub fn start(self: &Arc<Self>, hash: u64, seats: usize, descr: Arc<Descr>) -> Start {
        let seats = seats.max(1);
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let now = SystemTime::now();
        let queuing = match self.limit_kind {
            Limit::Exempt => {
                return Start::Execute(state.execute(self, id, seats, None, now, descr));
            }
            Limit::Reject if state.can_accommodate(seats) => {
                return Start::Execute(state.execute(self, id, seats, None, now, descr));
            }
            Limit::Reject => {
                state.totals.rejected += 1;
                return Start::Reject("concurrency-limit");
            }
            Limit::Queue(q) => q,
        };
        let index = state.shuffle_shard(hash, queuing.hand_size);
        if state.seats_in_use >= state.limit
            && state.queues[index].waiting.len() >= queuing.queue_length_limit
        {
            state.totals.rejected += 1;
            return Start::Reject("queue-full");
        }
        let (wake, rx) = oneshot::channel();
        let current_r = state.current_r;
        let queue = &mut state.queues[index];
        if queue.waiting.is_empty() && queue.executing == 0 {
            queue.next_dispatch_r = current_r;
        }
        queue.waiting.push_back(Waiter {
            id,
            seats,
            arrival_r: current_r,
            arrival: now,
            wake: Some(wake),
            descr,
        });
        queue.seats_waiting += seats;
        state.waiting += 1;
        state.seats_waiting += seats;
        state.note_demand();
        state.bound_next_dispatch(index);
        state.dispatch_all();
        let mut ticket = Ticket {
            queues: self.clone(),
            id,
            queue: index,
            rx,
            done: false,
        };
        if ticket.rx.try_recv().is_ok() {
            ticket.done = true;
            return Start::Execute(Seat {
                queues: self.clone(),
                id,
                queue: Some(index),
                start: Instant::now(),
            });
        }
        Start::Wait(ticket)
    }

    /// Requests waiting and executing.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.waiting, state.executing.len())
    }

    /// The totals since the queue set was made.
    pub fn totals(&self) -> Totals {
        self.lock().totals
    }

    /// Each queue as it is now.
    pub fn queue_dump(&self) -> Vec<QueueDump> {
        let state = self.lock();
        state
            .queues
            .iter()
            .map(|q| QueueDump {
                waiting: q.waiting.len(),
                waiting_seats: q.seats_waiting,
                executing: q.executing,
                seats_in_use: q.seats_in_use,
                next_dispatch_r: q.next_dispatch_r,
            })
            .collect()
    }

    /// Each request: its queue (-1 for none), its index in the queue (-1 when executing), its
    /// arrival, its start (None while waiting) and what it was.
    pub fn request_dump(&self) -> Vec<RequestDump> {
        let state = self.lock();
        let mut out = Vec::new();
        for (qi, q) in state.queues.iter().enumerate() {
            for (ri, w) in q.waiting.iter().enumerate() {
                out.push(RequestDump {
                    seats: w.seats,
                    queue: qi as i64,
                    index: ri as i64,
                    arrival: w.arrival,
                    start: None,
                    descr: w.descr.clone(),
                });
            }
            for e in state.executing.iter().filter(|e| e.queue == Some(qi)) {
                out.push(e.dump());
            }
        }
        for e in state.executing.iter().filter(|e| e.queue.is_none()) {
            out.push(e.dump());
        }
        out
    }

    fn finish(&self, id: u64, queue: Option<usize>, started: Instant) {
        let mut state = self.lock();
        state.finish(id, queue, started.elapsed());
        state.dispatch_all();
    }
}

/// One queue in a dump.
pub struct QueueDump {
    /// Requests waiting.
    pub waiting: usize,
    /// The seats its waiting requests ask for.
    pub waiting_seats: usize,
    /// Requests executing.
    pub executing: usize,
    /// The seats they occupy.
    pub seats_in_use: usize,
    /// Its virtual dispatch time, in seat-seconds.
    pub next_dispatch_r: f64,
}

impl QueueDump {
    /// The estimated work of its waiting requests, in seat-seconds.
    pub fn waiting_work(&self) -> f64 {
        self.waiting_seats as f64 * G
    }
}

/// One request in a dump.
pub struct RequestDump {
    /// The seats it occupies, or will.
    pub seats: usize,
    /// Its queue, -1 for none.
    pub queue: i64,
    /// Its place in the queue, -1 when executing.
    pub index: i64,
    /// When it arrived.
    pub arrival: SystemTime,
    /// When it started executing.
    pub start: Option<SystemTime>,
    /// What it is.
    pub descr: Arc<Descr>,
}

impl Executing {
    fn dump(&self) -> RequestDump {
        RequestDump {
            seats: self.seats,
            queue: self.queue.map_or(-1, |q| q as i64),
            index: -1,
            arrival: self.arrival,
            start: Some(self.start),
            descr: self.descr.clone(),
        }
    }
}

impl State {
    /// Advances virtual time for the real time since the last sync (upstream's
    /// `syncTimeLocked`): R grows by min(seats requested, limit) / active queues per second.
    fn sync_time(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_sync).as_secs_f64();
        self.last_sync = now;
        let mut active = 0usize;
        let mut requested = 0usize;
        for q in &self.queues {
            requested += q.seats_in_use + q.seats_waiting;
            if !q.waiting.is_empty() || q.executing > 0 {
                active += 1;
            }
        }
        if active > 0 {
            self.current_r += requested.min(self.limit) as f64 / active as f64 * elapsed;
        }
    }

    /// Deals the flow's hand and picks its queue with the fewest seats waiting, starting at a
    /// rotating offset so equal queues share the load.
    fn shuffle_shard(&mut self, hash: u64, hand_size: usize) -> usize {
        let hand = deal(hash, self.queues.len(), hand_size);
        let offset = self.enqueues % hand.len();
        self.enqueues += 1;
        (0..hand.len())
            .map(|i| hand[(offset + i) % hand.len()])
            .min_by_key(|&q| self.queues[q].seats_waiting)
            .expect("a hand holds at least one queue")
    }

    /// Upstream's `canAccommodateSeatsLocked`: whether `seats` more fit under the limit; a
    /// request wider than the limit fits only when nothing else executes.
    fn can_accommodate(&self, seats: usize) -> bool {
        if seats > self.limit {
            return self.executing.is_empty();
        }
        self.seats_in_use + seats <= self.limit
    }

    fn execute(
        &mut self,
        queues: &Arc<QueueSet>,
        id: u64,
        seats: usize,
        queue: Option<usize>,
        arrival: SystemTime,
        descr: Arc<Descr>,
    ) -> Seat {
        self.seats_in_use += seats;
        self.note_demand();
        self.totals.dispatched += 1;
        self.executing.push(Executing {
            id,
            seats,
            queue,
            arrival,
            start: SystemTime::now(),
            descr,
        });
        Seat {
            queues: queues.clone(),
            id,
            queue,
            start: Instant::now(),
        }
    }

    /// Records the seat demand as it now is. Dispatching moves a request's seats from waiting
    /// to in use, which leaves the demand as it was.
    fn note_demand(&mut self) {
        let demand = (self.seats_in_use + self.seats_waiting) as f64;
        self.demand.set(demand, Instant::now());
    }

    /// Dispatches while seats are free: each time the queue whose oldest request would finish
    /// first in virtual time, visiting queues round-robin so ties rotate. When that request
    /// does not fit, nothing is dispatched until it does, so a wide request is not starved.
    fn dispatch_all(&mut self) {
        while self.waiting > 0 {
            let n = self.queues.len();
            let mut best: Option<(usize, f64, usize)> = None;
            let mut robin = self.robin;
            for _ in 0..n {
                robin = (robin + 1) % n;
                let q = &self.queues[robin];
                let Some(head) = q.waiting.front() else {
                    continue;
                };
                let finish = q.next_dispatch_r + head.seats as f64 * G;
                if best.is_none_or(|(_, f, _)| finish < f) {
                    best = Some((robin, finish, head.seats));
                }
            }
            let Some((index, _, seats)) = best else {
                return;
            };
            if !self.can_accommodate(seats) {
                return;
            }
            self.robin = index;
            let queue = &mut self.queues[index];
            let mut waiter = queue.waiting.pop_front().expect("chosen queue has a head");
            queue.executing += 1;
            queue.seats_waiting -= seats;
            queue.seats_in_use += seats;
            queue.next_dispatch_r += seats as f64 * G;
            self.waiting -= 1;
            self.seats_waiting -= seats;
            self.seats_in_use += seats;
            self.totals.dispatched += 1;
            self.executing.push(Executing {
                seats,
                id: waiter.id,
                queue: Some(index),
                arrival: waiter.arrival,
                start: SystemTime::now(),
                descr: waiter.descr.clone(),
            });
            if let Some(wake) = waiter.wake.take() {
                // The ticket removes itself under this lock before it goes, so it is there.
                let _ = wake.send(());
            }
            self.bound_next_dispatch(index);
        }
    }

    /// Upstream's anti-windup: a queue's virtual dispatch never precedes its head's arrival.
    fn bound_next_dispatch(&mut self, index: usize) {
        let queue = &mut self.queues[index];
        if let Some(head) = queue.waiting.front() {
            queue.next_dispatch_r = queue.next_dispatch_r.max(head.arrival_r);
        }
    }

    fn finish(&mut self, id: u64, queue: Option<usize>, took: Duration) {
        let Some(i) = self.executing.iter().position(|e| e.id == id) else {
            return;
        };
        let seats = self.executing.swap_remove(i).seats;
        self.seats_in_use -= seats;
        self.note_demand();
        if let Some(index) = queue {
            let q = &mut self.queues[index];
            q.executing -= 1;
            q.seats_in_use -= seats;
            // The estimate G is replaced by the real service time.
            q.next_dispatch_r -= seats as f64 * (G - took.as_secs_f64());
            self.bound_next_dispatch(index);
        }
    }

    /// Takes a waiting request out of its queue; whether it was still there.
    fn remove_waiting(&mut self, queue: usize, id: u64) -> bool {
        let q = &mut self.queues[queue];
        let Some(i) = q.waiting.iter().position(|w| w.id == id) else {
            return false;
        };
        let seats = q.waiting.remove(i).map_or(0, |w| w.seats);
        q.seats_waiting -= seats;
        self.waiting -= 1;
        self.seats_waiting -= seats;
        self.note_demand();
        self.bound_next_dispatch(queue);
        true
    }
}

/// Upstream's shuffle-sharding dealer: `hand_size` distinct cards of a deck of `deck`, drawn
/// from the hash's digits in mixed radix.
pub fn deal(mut hash: u64, deck: usize, hand_size: usize) -> Vec<usize> {
    let mut remainders = Vec::with_capacity(hand_size);
    for i in 0..hand_size {
        let base = (deck - i) as u64;
        remainders.push((hash % base) as usize);
        hash /= base;
    }
    (0..hand_size)
        .map(|i| {
            let mut card = remainders[i];
            for j in (1..=i).rev() {
                if card >= remainders[j - 1] {
                    card += 1;
                }
            }
            card
        })
        .collect()
}

/// A request's place in a queue until it is dispatched or gives up.
pub struct Ticket {
    queues: Arc<QueueSet>,
    id: u64,
    queue: usize,
    rx: oneshot::Receiver<()>,
    done: bool,
}

impl Ticket {
    /// Waits for a seat until `deadline`; a request still queued then is rejected (`time-out`).
    pub async fn wait(mut self, deadline: tokio::time::Instant) -> Result<Seat, Reason> {
        let dispatched = tokio::time::timeout_at(deadline, &mut self.rx)
            .await
            .is_ok();
        self.done = true;
        let seat = Seat {
            queues: self.queues.clone(),
            id: self.id,
            queue: Some(self.queue),
            start: Instant::now(),
        };
        if dispatched {
            return Ok(seat);
        }
        let mut state = self.queues.lock();
        if state.remove_waiting(self.queue, self.id) {
            state.totals.rejected += 1;
            state.totals.timed_out += 1;
            drop(state);
            std::mem::forget(seat);
            return Err("time-out");
        }
        // Dispatched between the deadline and the lock.
        Ok(seat)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.queues.lock();
        if state.remove_waiting(self.queue, self.id) {
            state.totals.cancelled += 1;
        } else {
            // Dispatched while its client left: give the seat back.
            state.finish(self.id, Some(self.queue), Duration::ZERO);
            state.dispatch_all();
        }
    }
}

/// A request's seat while it executes; dropping it frees the seat for the next request.
pub struct Seat {
    queues: Arc<QueueSet>,
    id: u64,
    queue: Option<usize>,
    start: Instant,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.queues.finish(self.id, self.queue, self.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descr() -> Arc<Descr> {
        Arc::new(Descr::default())
    }

    #[test]
    fn the_dealer_deals_distinct_cards_as_upstream() {
        // Upstream's dealer on deck 128, hand 6 (shufflesharding_test's construction).
        let hand = deal(0x1234_5678_9abc_def0, 128, 6);
        assert_eq!(hand.len(), 6);
        let mut sorted = hand.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 6);
        assert!(hand.iter().all(|c| *c < 128));
        // hash 0 deals the first cards in order, as upstream's does.
        assert_eq!(deal(0, 10, 3), [0, 1, 2]);
    }

    #[tokio::test]
    async fn a_full_level_queues_then_rejects_and_a_finished_request_dispatches_the_next() {
        let qs = QueueSet::new(
            Limit::Queue(Queuing {
                queues: 1,
                hand_size: 1,
                queue_length_limit: 1,
            }),
            1,
        );
        let Start::Execute(first) = qs.start(7, 1, descr()) else {
            panic!("a free seat executes at once")
        };
        let Start::Wait(second) = qs.start(7, 1, descr()) else {
            panic!("a busy level queues")
        };
        assert!(matches!(
            qs.start(7, 1, descr()),
            Start::Reject("queue-full")
        ));
        assert_eq!(qs.counts(), (1, 1));
        drop(first);
        let far = tokio::time::Instant::now() + Duration::from_secs(5);
        let seat = second
            .wait(far)
            .await
            .expect("dispatched when the seat freed");
        assert_eq!(qs.counts(), (0, 1));
        drop(seat);
        let t = qs.totals();
        assert_eq!((t.dispatched, t.rejected), (2, 1));
    }

    #[tokio::test]
    async fn a_request_waiting_past_its_deadline_times_out_and_a_leaving_one_is_cancelled() {
        let qs = QueueSet::new(
            Limit::Queue(Queuing {
                queues: 4,
                hand_size: 2,
                queue_length_limit: 5,
            }),
            1,
        );
        let Start::Execute(_busy) = qs.start(1, 1, descr()) else {
            panic!()
        };
        let Start::Wait(late) = qs.start(2, 1, descr()) else {
            panic!()
        };
        let past = tokio::time::Instant::now();
        assert_eq!(late.wait(past).await.err(), Some("time-out"));
        let Start::Wait(leaving) = qs.start(3, 1, descr()) else {
            panic!()
        };
        drop(leaving);
        let t = qs.totals();
        assert_eq!((t.timed_out, t.cancelled, t.rejected), (1, 1, 1));
        assert_eq!(qs.counts(), (0, 1));
    }

    #[test]
    fn reject_levels_refuse_beyond_their_limit_and_exempt_ones_never() {
        let qs = QueueSet::new(Limit::Reject, 1);
        let Start::Execute(_seat) = qs.start(0, 1, descr()) else {
            panic!()
        };
        assert!(matches!(
            qs.start(0, 1, descr()),
            Start::Reject("concurrency-limit")
        ));
        let exempt = QueueSet::new(Limit::Exempt, 0);
        let seats: Vec<_> = (0..3).map(|_| exempt.start(0, 1, descr())).collect();
        assert!(seats.iter().all(|s| matches!(s, Start::Execute(_))));
    }

    #[tokio::test]
    async fn fair_queuing_serves_a_quiet_flow_before_a_noisy_flows_backlog() {
        let qs = QueueSet::new(
            Limit::Queue(Queuing {
                queues: 8,
                hand_size: 1,
                queue_length_limit: 50,
            }),
            1,
        );
        let Start::Execute(busy) = qs.start(0, 1, descr()) else {
            panic!()
        };
        // Flow hashing to queue 0 queues ten; a flow on another queue arrives after them.
        let noisy: Vec<_> = (0..10)
            .map(|_| match qs.start(0, 1, descr()) {
                Start::Wait(t) => t,
                _ => panic!(),
            })
            .collect();
        let Start::Wait(quiet) = qs.start(3, 1, descr()) else {
            panic!()
        };
        // The busy request's real service time puts its queue behind the quiet flow's.
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(busy);
        let far = tokio::time::Instant::now() + Duration::from_secs(5);
        let first = quiet.wait(far).await;
        assert!(first.is_ok(), "the quiet flow's one request goes second");
        assert_eq!(qs.counts().0, 10);
        drop(noisy);
    }

    #[tokio::test]
    async fn a_wide_request_waits_for_its_seats_and_one_wider_than_the_limit_runs_alone() {
        let qs = QueueSet::new(
            Limit::Queue(Queuing {
                queues: 4,
                hand_size: 1,
                queue_length_limit: 10,
            }),
            4,
        );
        let far = tokio::time::Instant::now() + Duration::from_secs(5);
        let Start::Execute(one) = qs.start(0, 2, descr()) else {
            panic!("two of four seats are free")
        };
        // Three seats do not fit beside two: it waits, and the one-seat request behind it in
        // its queue waits too.
        let Start::Wait(three) = qs.start(1, 3, descr()) else {
            panic!("three seats do not fit")
        };
        let Start::Wait(small) = qs.start(1, 1, descr()) else {
            panic!("it queues behind the wide one")
        };
        assert_eq!(qs.counts(), (2, 1));
        assert_eq!(qs.queue_dump()[1].waiting_seats, 4);
        drop(one);
        let three = three.wait(far).await.expect("its three seats are free");
        let small = small.wait(far).await.expect("the fourth seat is free");
        assert_eq!(qs.queue_dump()[1].seats_in_use, 4);
        drop((three, small));
        // Six seats of four: it runs once nothing else does, and alone.
        let Start::Execute(wide) = qs.start(2, 6, descr()) else {
            panic!("nothing executes")
        };
        let Start::Wait(next) = qs.start(3, 1, descr()) else {
            panic!("the wide request runs alone")
        };
        drop(wide);
        assert!(next.wait(far).await.is_ok());
    }
}
