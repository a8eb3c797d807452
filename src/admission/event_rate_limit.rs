//! EventRateLimit (upstream's `plugin/pkg/admission/eventratelimit`): creates and updates of
//! core Events are rate limited by token buckets — one for the server, one per namespace, per
//! user, or per event source and object, as the plugin's configuration lists them — and a
//! request over any limit is refused with 429, every limit having been charged.

use super::{Attributes, Operation, Result, Validating};
use crate::registry::RegistryError;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Per-key buckets kept when the configuration gives no `cacheSize`.
const DEFAULT_CACHE_SIZE: usize = 4096;

/// What a limit is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitType {
    /// One bucket for the whole server.
    Server,
    /// A bucket per namespace.
    Namespace,
    /// A bucket per user.
    User,
    /// A bucket per event source and involved object.
    SourceAndObject,
}

/// One limit of the configuration (eventratelimit.admission.k8s.io/v1alpha1 `Limit`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    /// What it is keyed by.
    #[serde(rename = "type")]
    pub type_: String,
    /// Events per second each bucket refills with.
    #[serde(default)]
    pub qps: i32,
    /// Each bucket's size.
    #[serde(default)]
    pub burst: i32,
    /// Buckets kept, least recently used dropped first (0: 4096).
    #[serde(default)]
    pub cache_size: i32,
}

/// The plugin's configuration (eventratelimit.admission.k8s.io/v1alpha1 `Configuration`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EventRateLimitConfig {
    /// The limits.
    #[serde(default)]
    pub limits: Vec<Limit>,
}

impl EventRateLimitConfig {
    /// Reads the configuration, as upstream's validation words its errors.
    pub fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let config: Self = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Upstream's `ValidateConfiguration`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let mut errors = Vec::new();
        if self.limits.is_empty() {
            errors.push("limits: Invalid value: null: must not be empty".to_string());
        }
        for (i, limit) in self.limits.iter().enumerate() {
            if limit_type(&limit.type_).is_none() {
                errors.push(format!(
                    "limits[{i}].type: Unsupported value: {:?}: supported values: \"Namespace\", \"Server\", \"SourceAndObject\", \"User\"",
                    limit.type_
                ));
            }
            if limit.burst <= 0 {
                errors.push(format!(
                    "limits[{i}].burst: Invalid value: {}: must be positive",
                    limit.burst
                ));
            }
            if limit.qps <= 0 {
                errors.push(format!(
                    "limits[{i}].qps: Invalid value: {}: must be positive",
                    limit.qps
                ));
            }
            if limit.type_ != "Server" && limit.cache_size < 0 {
                errors.push(format!(
                    "limits[{i}].cacheSize: Invalid value: {}: must not be negative",
                    limit.cache_size
                ));
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }
}

fn limit_type(name: &str) -> Option<LimitType> {
    match name {
        "Server" => Some(LimitType::Server),
        "Namespace" => Some(LimitType::Namespace),
        "User" => Some(LimitType::User),
        "SourceAndObject" => Some(LimitType::SourceAndObject),
        _ => None,
    }
}

/// A token bucket (client-go's token bucket rate limiter): full at first, refilled at `qps`.
struct Bucket {
    tokens: f64,
    last: Instant,
    used: u64,
}

/// One limit's buckets, by key.
struct Enforcer {
    kind: LimitType,
    qps: f64,
    burst: f64,
    capacity: usize,
    buckets: Mutex<(HashMap<String, Bucket>, u64)>,
}

impl Enforcer {
    /// Takes a token from `key`'s bucket; whether there was one.
    fn accept(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (buckets, clock) = &mut *guard;
        *clock += 1;
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            // The least recently used bucket goes, as upstream's LRU cache drops it.
            if let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.used)
                .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            used: 0,
        });
        bucket.used = *clock;
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.qps;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The key of the request under this limit (upstream's key functions).
    fn key(&self, a: &Attributes<'_>, event: Option<&Value>) -> String {
        match self.kind {
            LimitType::Server => String::new(),
            LimitType::Namespace => a.namespace.unwrap_or("").to_string(),
            LimitType::User => a.user.name.clone(),
            LimitType::SourceAndObject => {
                let Some(e) = event else {
                    return String::new();
                };
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                let o = &e["involvedObject"];
                [
                    s(&e["source"]["component"]),
                    s(&e["source"]["host"]),
                    s(&o["kind"]),
                    s(&o["namespace"]),
                    s(&o["name"]),
                    s(&o["uid"]),
                    s(&o["apiVersion"]),
                ]
                .concat()
            }
        }
    }
}

/// The plugin.
pub struct EventRateLimit {
    enforcers: Vec<Enforcer>,
}

impl EventRateLimit {
    /// The plugin for a validated `config`.
    pub fn new(config: &EventRateLimitConfig) -> Self {
        let enforcers = config
            .limits
            .iter()
            .filter_map(|l| {
                let kind = limit_type(&l.type_)?;
                let capacity = match (kind, l.cache_size) {
                    (LimitType::Server, _) => 1,
                    (_, 0) => DEFAULT_CACHE_SIZE,
                    (_, n) => n as usize,
                };
                Some(Enforcer {
                    kind,
                    qps: f64::from(l.qps),
                    burst: f64::from(l.burst),
                    capacity,
                    buckets: Mutex::default(),
                })
            })
            .collect();
        Self { enforcers }
    }
}

#[async_trait::async_trait]
impl Validating for EventRateLimit {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        // Core Events only; a dry run stores nothing, so it is not charged.
        if !a.resource.group.is_empty() || a.resource.resource != "events" || a.dry_run {
            return Ok(());
        }
        let refusals: Vec<String> = self
            .enforcers
            .iter()
            .filter_map(|e| {
                let key = e.key(a, object);
                (!e.accept(&key))
                    .then(|| format!("limit reached on type {:?} for key {key}", e.kind))
            })
            .collect();
        if refusals.is_empty() {
            return Ok(());
        }
        let message = match &refusals[..] {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        Err(RegistryError::TooManyRequests {
            message: format!("Too many requests: {message}"),
            retry_after_seconds: 0,
            causes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_validated_as_upstream() {
        let err = |v: Value| EventRateLimitConfig::from_value(&v).unwrap_err();
        assert_eq!(
            err(serde_json::json!({})),
            "limits: Invalid value: null: must not be empty"
        );
        assert_eq!(
            err(serde_json::json!({"limits": [{"type": "Pod", "qps": 1, "burst": 1}]})),
            "limits[0].type: Unsupported value: \"Pod\": supported values: \"Namespace\", \"Server\", \"SourceAndObject\", \"User\""
        );
        assert_eq!(
            err(serde_json::json!({"limits": [{"type": "User", "qps": 0, "burst": 1}]})),
            "limits[0].qps: Invalid value: 0: must be positive"
        );
        let ok = EventRateLimitConfig::from_value(
            &serde_json::json!({"limits": [{"type": "Namespace", "qps": 1, "burst": 2}]}),
        )
        .unwrap();
        assert_eq!(ok.limits[0].burst, 2);
    }

    #[test]
    fn a_bucket_holds_its_burst_and_the_least_recently_used_key_is_dropped_first() {
        let e = Enforcer {
            kind: LimitType::Namespace,
            qps: 0.001,
            burst: 2.0,
            capacity: 2,
            buckets: Mutex::default(),
        };
        assert!(e.accept("a") && e.accept("a"));
        assert!(!e.accept("a"));
        assert!(e.accept("b"));
        // "c" evicts "a", the least recently used: "a" starts full again.
        assert!(e.accept("c"));
        assert!(e.accept("a"));
    }
}
