//! Borrowing between priority levels (upstream's KEP-1040 dynamic concurrency limits). Each
//! level has a nominal limit, a lower bound (nominal less its `lendablePercent`) and an upper
//! bound (nominal plus its `borrowingLimitPercent`, unbounded when unset). Every ten seconds,
//! and whenever the configuration changes, the server's seats are shared out again: each
//! level's seat demand (seats in use plus seats waiting) over the period gives it a target,
//! and the seats go to the targets in one fair proportion, clipped to each level's bounds
//! (upstream's `updateBorrowingLocked` and `computeConcurrencyAllocation`).

use std::time::{Duration, Instant};

/// Upstream's `borrowingAdjustmentPeriod`.
pub const ADJUSTMENT_PERIOD: Duration = Duration::from_secs(10);

/// Upstream's `seatDemandSmoothingCoefficient`: a half-life of five minutes of periods.
const SMOOTHING: f64 = 0.977;

/// Upstream's `MinTarget`: a target is never taken as zero, which would divide by zero.
const MIN_TARGET: f64 = 0.001;

/// A level's seat demand, integrated over time since the last reset (upstream's
/// `fairqueuing.Integrator`).
#[derive(Debug)]
pub struct DemandIntegrator {
    last: Instant,
    x: f64,
    elapsed: f64,
    integral_x: f64,
    integral_xx: f64,
    max: f64,
}

/// What a period's demand was.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DemandObservation {
    /// Seconds observed.
    pub duration: f64,
    /// Time-weighted mean.
    pub average: f64,
    /// Time-weighted standard deviation.
    pub deviation: f64,
    /// The highest demand seen.
    pub high_watermark: f64,
}

impl DemandIntegrator {
    /// An integrator at zero demand from `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            last: now,
            x: 0.0,
            elapsed: 0.0,
            integral_x: 0.0,
            integral_xx: 0.0,
            max: 0.0,
        }
    }

    /// The demand is `x` from `now` on.
    pub fn set(&mut self, x: f64, now: Instant) {
        self.advance(now);
        self.x = x;
        self.max = self.max.max(x);
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.elapsed += dt;
        self.integral_x += self.x * dt;
        self.integral_xx += self.x * self.x * dt;
    }

    /// The period up to `now`, and a new period starting there at the current demand.
    pub fn reset(&mut self, now: Instant) -> DemandObservation {
        self.advance(now);
        let mut obs = DemandObservation {
            duration: self.elapsed,
            high_watermark: self.max,
            ..DemandObservation::default()
        };
        if self.elapsed > 0.0 {
            obs.average = self.integral_x / self.elapsed;
            let variance = self.integral_xx / self.elapsed - obs.average * obs.average;
            // Rounding can make a constant demand's variance a hair below zero.
            obs.deviation = variance.max(0.0).sqrt();
        }
        self.elapsed = 0.0;
        self.integral_x = 0.0;
        self.integral_xx = 0.0;
        self.max = self.x;
        obs
    }
}

/// A level's demand as the periods went (upstream's `seatDemandStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DemandStats {
    /// The last period's mean.
    pub average: f64,
    /// The last period's standard deviation.
    pub deviation: f64,
    /// The last period's high watermark.
    pub high_watermark: f64,
    /// `max(envelope, A × smoothed + (1 − A) × envelope)` over the periods, where the
    /// envelope is mean plus deviation.
    pub smoothed: f64,
}

impl DemandStats {
    /// Takes in one period.
    pub fn update(&mut self, obs: DemandObservation) {
        self.high_watermark = obs.high_watermark;
        if obs.duration <= 0.0 {
            return;
        }
        self.average = obs.average;
        self.deviation = obs.deviation;
        let envelope = obs.average + obs.deviation;
        self.smoothed = envelope.max(SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * envelope);
    }
}

/// One level's part in an allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    /// What it would have, in proportion with the others.
    pub target: f64,
    /// It has at least this.
    pub lower: f64,
    /// It has at most this.
    pub upper: f64,
}

/// A level's bounds and target for the next period, from its configured bounds and its
/// demand: it keeps at least the lesser of its nominal limit and its demand's high watermark
/// (never below its configured lower bound), and aims at its smoothed demand.
pub fn claim(nominal: usize, lower: usize, upper: usize, stats: &DemandStats) -> Claim {
    let lower = (lower as f64).max((nominal as f64).min(stats.high_watermark));
    Claim {
        target: lower.max(stats.smoothed),
        lower,
        upper: upper as f64,
    }
}

/// Shares `total` seats among `claims`: the unique allocation in which every claim gets
/// `fair × target` clipped to its bounds, and the allocations sum to `total`. Returns the
/// allocations and `fair`, or `None` when the bounds cannot sum to `total`.
pub fn allocate(total: usize, claims: &[Claim]) -> Option<(Vec<f64>, f64)> {
    const EPSILON: f64 = 1e-7;
    let total = total as f64;
    let lower_sum: f64 = claims.iter().map(|c| c.lower).sum();
    let upper_sum: f64 = claims.iter().map(|c| c.upper).sum();
    if claims
        .iter()
        .any(|c| c.lower < 0.0 || c.upper < c.lower || c.target < c.lower)
        || lower_sum - total > EPSILON
        || total - upper_sum > EPSILON
    {
        return None;
    }
    if total == 0.0 {
        return Some((vec![0.0; claims.len()], 0.0));
    }
    let target = |c: &Claim| c.target.max(MIN_TARGET);
    let at = |fair: f64| -> f64 {
        claims
            .iter()
            .map(|c| (fair * target(c)).clamp(c.lower, c.upper))
            .sum()
    };
    // The sum grows with `fair` and meets `total` between the lowest relative lower bound
    // and the highest relative upper bound; bisection finds the point upstream's sweep over
    // the sorted bounds finds.
    let mut low = claims
        .iter()
        .map(|c| c.lower / target(c))
        .fold(f64::MAX, f64::min);
    let mut high = claims
        .iter()
        .map(|c| c.upper / target(c))
        .fold(0.0, f64::max);
    // No room to move: every claim is held at one of its bounds.
    if total - lower_sum < EPSILON {
        return Some((claims.iter().map(|c| c.lower).collect(), low));
    }
    if upper_sum - total < EPSILON {
        return Some((claims.iter().map(|c| c.upper).collect(), high));
    }
    for _ in 0..200 {
        let mid = (low + high) / 2.0;
        if at(mid) < total {
            low = mid;
        } else {
            high = mid;
        }
    }
    let allocations = claims
        .iter()
        .map(|c| (high * target(c)).clamp(c.lower, c.upper))
        .collect();
    Some((allocations, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(target: f64, lower: f64, upper: f64) -> Claim {
        Claim {
            target,
            lower,
            upper,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn a_constant_demand_averages_to_itself_with_no_deviation() {
        let t0 = Instant::now();
        let mut demand = DemandIntegrator::new(t0);
        demand.set(4.0, t0);
        let obs = demand.reset(t0 + Duration::from_secs(10));
        assert!(
            close(obs.average, 4.0) && close(obs.deviation, 0.0),
            "{obs:?}"
        );
        assert_eq!(obs.high_watermark, 4.0);
        // Half the period at 0 and half at 4: mean 2, deviation 2, watermark 4.
        demand.set(0.0, t0 + Duration::from_secs(10));
        demand.set(4.0, t0 + Duration::from_secs(15));
        let obs = demand.reset(t0 + Duration::from_secs(20));
        assert!(
            close(obs.average, 2.0) && close(obs.deviation, 2.0),
            "{obs:?}"
        );
        assert_eq!(obs.high_watermark, 4.0);
        // A new period starts at the demand there is.
        let obs = demand.reset(t0 + Duration::from_secs(30));
        assert!(close(obs.average, 4.0), "{obs:?}");
    }

    #[test]
    fn smoothing_follows_a_rise_at_once_and_a_fall_slowly() {
        let mut stats = DemandStats::default();
        let period = |average, deviation| DemandObservation {
            duration: 10.0,
            average,
            deviation,
            high_watermark: average,
        };
        stats.update(period(3.0, 1.0));
        assert!(close(stats.smoothed, 4.0));
        stats.update(period(0.0, 0.0));
        assert!(close(stats.smoothed, 0.977 * 4.0));
    }

    #[test]
    fn seats_go_in_one_fair_proportion_within_bounds_as_upstreams_allocation() {
        // Unbounded: in proportion to the targets.
        let (allocs, fair) =
            allocate(10, &[bounds(1.0, 0.0, 10.0), bounds(4.0, 0.0, 10.0)]).unwrap();
        assert!(close(allocs[0], 2.0) && close(allocs[1], 8.0) && close(fair, 2.0));
        // A capped claim's surplus goes to the others.
        let (allocs, fair) = allocate(
            14,
            &[
                bounds(1.0, 1.0, 11.0),
                bounds(1.0, 1.0, 11.0),
                bounds(1.0, 1.0, 11.0),
                bounds(1.0, 1.0, 11.0),
                bounds(1.0, 1.0, 11.0),
                bounds(4.0, 1.0, 4.0),
            ],
        )
        .unwrap();
        assert!(close(fair, 2.0), "{fair}");
        assert!(close(allocs[5], 4.0), "{allocs:?}");
        assert!(allocs[..5].iter().all(|a| close(*a, 2.0)), "{allocs:?}");
        // An idle claim keeps its lower bound; a zero target counts as 0.001.
        let (allocs, _) = allocate(5, &[bounds(0.0, 0.0, 10.0), bounds(1.0, 1.0, 10.0)]).unwrap();
        assert!(
            allocs[0] < 0.01 && close(allocs[0] + allocs[1], 5.0),
            "{allocs:?}"
        );
        // No room either way: the bounds themselves.
        let (allocs, _) = allocate(2, &[bounds(5.0, 1.0, 9.0), bounds(5.0, 1.0, 9.0)]).unwrap();
        assert_eq!(allocs, [1.0, 1.0]);
        // Bounds that cannot meet the total.
        assert_eq!(
            allocate(1, &[bounds(1.0, 1.0, 1.0), bounds(1.0, 1.0, 1.0)]),
            None
        );
        assert_eq!(allocate(9, &[bounds(1.0, 1.0, 2.0)]), None);
    }

    #[test]
    fn a_level_keeps_what_its_demand_peaked_at_up_to_its_nominal_limit() {
        let busy = DemandStats {
            high_watermark: 3.0,
            smoothed: 5.0,
            ..DemandStats::default()
        };
        assert_eq!(
            super::claim(2, 1, 6, &busy),
            Claim {
                target: 5.0,
                lower: 2.0,
                upper: 6.0
            }
        );
        let idle = DemandStats::default();
        assert_eq!(
            super::claim(2, 1, 6, &idle),
            Claim {
                target: 1.0,
                lower: 1.0,
                upper: 6.0
            }
        );
    }
}
