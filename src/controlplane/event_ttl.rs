//! `--event-ttl` on a backend without leases (the embedded store): an Event lives for the TTL
//! after its last write, as the etcd lease upstream attaches to every Event write gives it (on
//! etcd kubeboot attaches one too: `Store::with_ttl`). The sweeper follows the Events, notes when
//! each version was first seen, and deletes those not written again within the TTL — on the
//! condition that they are still that version, so a newer write is never lost.

use crate::registry::informer::Informer;
use crate::registry::store::DeleteParams;
use crate::registry::{RegistryError, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// An Event's key and the version it was last seen at, with when that version expires.
type Deadlines = HashMap<(String, String), (String, Instant)>;

/// How often the sweeper looks: a quarter of the TTL, between 250 ms and a minute, so an Event
/// outlives its TTL by at most that much.
fn period(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// Deletes the Events of `events` (core Events; events.k8s.io Events are the same objects)
/// `ttl` after their last write, until the task is dropped.
pub async fn run(events: Arc<Store>, ttl: Duration) {
    let informer = Informer::start(events.clone());
    let mut deadlines = Deadlines::new();
    let mut ticks = tokio::time::interval(period(ttl));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for (namespace, name, version) in expired(&informer, &mut deadlines, ttl) {
            let params = DeleteParams {
                precondition_resource_version: Some(version),
                ..Default::default()
            };
            match events.delete(Some(&namespace), &name, &params).await {
                Ok(_) | Err(RegistryError::NotFound { .. } | RegistryError::Conflict { .. }) => {}
                Err(e) => tracing::warn!(%namespace, %name, error = %e, "expiring event failed"),
            }
        }
    }
}

/// The Events whose last version has outlived `ttl`, with that version; new versions get
/// their deadline and deleted Events are forgotten.
fn expired(
    informer: &Informer,
    deadlines: &mut Deadlines,
    ttl: Duration,
) -> Vec<(String, String, String)> {
    let objects = informer.objects();
    let now = Instant::now();
    deadlines.retain(|key, _| objects.contains_key(key));
    let mut out = Vec::new();
    for (key, event) in objects.iter() {
        let version = event
            .pointer("/metadata/resourceVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let deadline = deadlines
            .entry(key.clone())
            .or_insert_with(|| (version.to_string(), now + ttl));
        if deadline.0 != version {
            *deadline = (version.to_string(), now + ttl);
        }
        if deadline.1 <= now {
            out.push((key.0.clone(), key.1.clone(), version.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::period;
    use std::time::Duration;

    #[test]
    fn the_sweep_period_follows_the_ttl_within_bounds() {
        assert_eq!(period(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(period(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(
            period(Duration::from_millis(100)),
            Duration::from_millis(250)
        );
    }
}
