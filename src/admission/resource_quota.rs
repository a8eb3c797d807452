//! The ResourceQuota admission plugin, as upstream's: a create or update in a namespace with
//! quotas is charged what it adds to each quota that tracks it; one that would exceed a hard
//! limit is refused with upstream's `exceeded quota` message, and the charge is recorded in
//! the quota's `status.used` by compare-and-swap before the write proceeds (a dry run is only
//! checked). As upstream, the limits are those of `status.hard`, which the quota controller
//! copies from the spec when it counts: a quota not yet counted limits nothing, and one whose
//! status names a limit without its usage refuses what it tracks (`status unknown`).

use super::{Attributes, Operation, Result, Validating};
use crate::quota::{self, Amount, Usage};
use crate::registry::informer::Informer;
use crate::registry::store::{UpdateTarget, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Checks and charges writes against the namespace's ResourceQuotas.
pub struct ResourceQuotaAdmission {
    quotas: Arc<Informer>,
    store: Arc<Store>,
}

impl ResourceQuotaAdmission {
    /// Reads quotas through `quotas` and records usage in `store`.
    pub fn new(quotas: Arc<Informer>, store: Arc<Store>) -> Self {
        Self { quotas, store }
    }
}

/// A quota's `status.<field>` as amounts; unparsable entries are left out.
fn amounts(quota: &Value, pointer: &str) -> Option<Usage> {
    let map = quota.pointer(pointer)?.as_object()?;
    Some(
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), Amount::parse(v.as_str()?)?)))
            .collect(),
    )
}

/// `name=amount` pairs sorted by name, as upstream's `prettyPrint`.
fn pretty(usage: &Usage) -> String {
    usage
        .iter()
        .map(|(k, v)| format!("{k}={}", v.format(k)))
        .collect::<Vec<_>>()
        .join(",")
}

/// `usage` restricted to `names`.
fn mask(usage: &Usage, names: &BTreeSet<String>) -> Usage {
    usage
        .iter()
        .filter(|(k, _)| names.contains(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// What one quota is charged: the increase of each resource it limits, and its limits.
struct Charge {
    name: String,
    requested: Usage,
    hard: Usage,
}

impl Charge {
    /// `used` plus the request; `Err` names what it would take over the hard limits, worded as
    /// upstream's `exceeded quota` error.
    fn apply(&self, used: &Usage) -> std::result::Result<Usage, String> {
        let mut next = used.clone();
        for (k, v) in &self.requested {
            let n = next.entry(k.clone()).or_default();
            *n = *n + *v;
        }
        let exceeded: BTreeSet<String> = self
            .requested
            .keys()
            .filter(|k| next.get(*k) > self.hard.get(*k))
            .cloned()
            .collect();
        if exceeded.is_empty() {
            return Ok(next);
        }
        Err(format!(
            "exceeded quota: {}, requested: {}, used: {}, limited: {}",
            self.name,
            pretty(&mask(&self.requested, &exceeded)),
            pretty(&mask(used, &exceeded)),
            pretty(&mask(&self.hard, &exceeded)),
        ))
    }
}

#[async_trait::async_trait]
impl Validating for ResourceQuotaAdmission {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let (Some(namespace), Some(object)) = (a.namespace, object) else {
            return Ok(());
        };
        if !a.subresource.is_empty() {
            return Ok(());
        }
        let quotas: Vec<Arc<Value>> = self
            .quotas
            .objects()
            .range((namespace.to_string(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(_, q)| q.clone())
            .collect();
        if quotas.is_empty() {
            return Ok(());
        }
        let (group, resource) = (&*a.resource.group, &*a.resource.resource);
        let new = quota::usage(group, resource, object);
        let old = a
            .old_object
            .map(|o| quota::usage(group, resource, o))
            .unwrap_or_default();
        // Only what grows is charged, as upstream's SubtractWithNonNegativeResult.
        let delta: Usage = new
            .iter()
            .map(|(k, v)| (k.clone(), *v - old.get(k).copied().unwrap_or_default()))
            .filter(|(_, v)| v.0 > 0)
            .collect();
        let mut charges = Vec::new();
        for q in &quotas {
            let name = q
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(hard) = amounts(q, "/status/hard") else {
                continue;
            };
            if quota::scopes_match(q, group, resource, object) != Some(true) {
                continue;
            }
            // The resources of the quota this kind can use.
            let tracked: BTreeSet<String> = hard
                .keys()
                .filter(|k| quota::resource_of(k).is_some_and(|(g, r)| g == group && r == resource))
                .cloned()
                .collect();
            if tracked.is_empty() {
                continue;
            }
            if a.operation == Operation::Create
                && group.is_empty()
                && resource == "pods"
                && let Some(missing) = quota::unstated(object, &tracked)
            {
                return Err(a.forbidden(format!("failed quota: {name}: {missing}")));
            }
            let used = amounts(q, "/status/used").unwrap_or_default();
            let unknown: Vec<&str> = tracked
                .iter()
                .filter(|k| !used.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(a.forbidden(format!(
                    "status unknown for quota: {name}, resources: {}",
                    unknown.join(",")
                )));
            }
            let charge = Charge {
                name: name.to_string(),
                requested: mask(&delta, &tracked),
                hard: mask(&hard, &tracked),
            };
            if charge.requested.is_empty() {
                continue;
            }
            charge.apply(&used).map_err(|e| a.forbidden(e))?;
            charges.push(charge);
        }
        if a.dry_run {
            return Ok(());
        }
        for charge in charges {
            self.record(namespace, &charge).await.map_err(|e| match e {
                Recording::Exceeded(m) => a.forbidden(m),
                Recording::Failed(e) => e,
            })?;
        }
        Ok(())
    }
}

/// Why a charge could not be recorded.
enum Recording {
    /// Concurrent writes used up the quota meanwhile.
    Exceeded(String),
    /// The quota could not be written.
    Failed(RegistryError),
}

impl From<RegistryError> for Recording {
    fn from(e: RegistryError) -> Self {
        Recording::Failed(e)
    }
}

impl ResourceQuotaAdmission {
    /// Adds `charge` to the stored quota's `status.used`, checking again against the usage as
    /// stored: a conflicting write re-reads and re-checks, as upstream's quota evaluator.
    async fn record(&self, namespace: &str, charge: &Charge) -> std::result::Result<(), Recording> {
        self.store
            .update_with(
                Some(namespace),
                &charge.name,
                UpdateTarget::STATUS,
                WriteOptions::default(),
                |current| {
                    let used = amounts(current, "/status/used").unwrap_or_default();
                    let next = charge.apply(&used).map_err(Recording::Exceeded)?;
                    let mut quota = current.clone();
                    quota["status"]["used"] = quota::to_json(&next);
                    Ok(quota)
                },
            )
            .await
            .map(|_| ())
    }
}
