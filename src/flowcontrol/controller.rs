//! The configuration consumer (upstream's `configController`): follows the FlowSchema and
//! PriorityLevelConfiguration objects, digests them into the filter's configuration whenever
//! they change, and writes each FlowSchema's `Dangling` condition. Between changes it shares
//! the seats out again every [`ADJUSTMENT_PERIOD`], as upstream's periodic rebalancing does.

use super::borrowing::ADJUSTMENT_PERIOD;
use super::{DanglingUpdate, FlowControl};
use crate::registry::Store;
use crate::registry::informer::Informer;
use crate::registry::managed_fields::Operation;
use crate::registry::store::{UpdateTarget, WriteOptions};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The field manager of the `Dangling` conditions, upstream's.
pub const FIELD_MANAGER: &str = "api-priority-and-fairness-config-consumer-v1";

/// How often the informers are checked for a change a notification may have raced past.
const RECHECK: Duration = Duration::from_secs(1);

/// Keeps `fc` digesting the objects of `schemas` and `levels` until the server stops; `digested`
/// turns true after the first digest of the listed objects.
pub async fn run(
    fc: Arc<FlowControl>,
    schemas: Arc<Store>,
    levels: Arc<Store>,
    digested: watch::Sender<bool>,
) {
    let schema_objects = Informer::start(schemas.clone());
    let level_objects = Informer::start(levels);
    while !(schema_objects.wait_synced(RECHECK).await && level_objects.wait_synced(RECHECK).await) {
    }
    let mut seen = (0, 0);
    let mut adjust = tokio::time::interval(ADJUSTMENT_PERIOD);
    adjust.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = (schema_objects.generation(), level_objects.generation());
        if now != seen {
            seen = now;
            let updates = fc.digest(decode_all(&level_objects), decode_all(&schema_objects));
            for update in updates {
                if let Err(e) = write_condition(&schemas, &update).await {
                    tracing::warn!(flow_schema = %update.name, error = %e, "writing the Dangling condition failed");
                }
            }
            digested.send_replace(true);
        }
        tokio::select! {
            _ = schema_objects.changed() => {}
            _ = level_objects.changed() => {}
            _ = tokio::time::sleep(RECHECK) => {}
            _ = adjust.tick() => fc.rebalance(),
        }
    }
}

fn decode_all<T: DeserializeOwned>(informer: &Informer) -> Vec<T> {
    informer
        .objects()
        .values()
        .filter_map(|v| serde_json::from_value(v.as_ref().clone()).ok())
        .collect()
}

/// Sets the schema's `Dangling` condition through its status, as upstream's apply does.
async fn write_condition(
    schemas: &Store,
    update: &DanglingUpdate,
) -> Result<(), crate::registry::RegistryError> {
    let condition = json!({
        "type": "Dangling",
        "status": update.status,
        "lastTransitionTime": crate::registry::store::now_rfc3339(),
        "reason": update.reason,
        "message": update.message,
    });
    let opts = WriteOptions {
        writer: Some(schemas.writer(FIELD_MANAGER.into(), Operation::Update, "status")),
        ..Default::default()
    };
    let result = schemas
        .update_with(None, &update.name, UpdateTarget::STATUS, opts, |current| {
            let mut next = current.clone();
            let mut conditions: Vec<_> = next["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c["type"] != "Dangling")
                .collect();
            conditions.push(condition.clone());
            next["status"] = json!({"conditions": conditions});
            Ok::<_, crate::registry::RegistryError>(next)
        })
        .await;
    match result {
        // Deleted meanwhile: its removal is coming.
        Err(crate::registry::RegistryError::NotFound { .. }) => Ok(()),
        other => other.map(|_| ()),
    }
}
