//! The lease endpoint reconciler's leases (upstream's `--endpoint-reconciler-type=lease`): each
//! API server keeps a record of its address under `<prefix>/masterleases/<ip>`, renewed every
//! 10 s and valid for 15 s, and the `kubernetes` Service's endpoints list the addresses whose
//! records are live — so several servers on one etcd publish all of their addresses, and one
//! that dies drops out by itself. Upstream's records expire with an etcd lease; kubeboot's carry
//! their expiry (the embedded store has no leases), and records without one (an upstream
//! server's) count as live until their etcd lease removes them.

use crate::storage::{ErrorCode, ListOptions, Storage, StorageError};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a server renews its record (upstream's EndpointInterval).
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How long a record stays valid without renewal (upstream's DefaultEndpointReconcilerTTL).
pub const TTL: Duration = Duration::from_secs(15);
/// The annotation holding a record's expiry, in Unix seconds.
const EXPIRES: &str = "kubeboot.io/lease-expires";

/// The servers' address records.
#[derive(Clone)]
pub struct EndpointLeases {
    storage: Arc<dyn Storage>,
    prefix: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl EndpointLeases {
    /// The records under `prefix` (`<registry prefix>/masterleases/`).
    pub fn new(storage: Arc<dyn Storage>, prefix: String) -> Self {
        Self { storage, prefix }
    }

    /// Renews the record of `ip` and returns the live servers' addresses, sorted; expired
    /// records are removed on the way.
    pub async fn renew(&self, ip: IpAddr) -> Result<Vec<IpAddr>, StorageError> {
        let key = format!("{}{ip}", self.prefix);
        // As upstream's record: an Endpoints object naming the address.
        let record = json!({
            "kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": ip.to_string(), "creationTimestamp": null,
                "annotations": {EXPIRES: (now() + TTL.as_secs()).to_string()}},
            "subsets": [{"addresses": [{"ip": ip.to_string()}]}],
        });
        let value = bytes::Bytes::from(record.to_string());
        match self.storage.get(&key).await? {
            Some(kv) => {
                match self
                    .storage
                    .guaranteed_update(&key, Some(kv.mod_revision), value)
                    .await
                {
                    Ok(_) => {}
                    // Renewed by a twin meanwhile (two processes with one address): fine.
                    Err(e) if matches!(e.code, ErrorCode::Conflict | ErrorCode::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            None => match self.storage.create(&key, value).await {
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::AlreadyExists => {}
                Err(e) => return Err(e),
            },
        }
        self.live().await
    }

    /// Removes the record of `ip` (this server stops) and returns the remaining live servers.
    pub async fn release(&self, ip: IpAddr) -> Result<Vec<IpAddr>, StorageError> {
        let key = format!("{}{ip}", self.prefix);
        match self.storage.delete(&key, None).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        self.live().await
    }

    /// The addresses of live records, sorted; expired ones are deleted.
    async fn live(&self) -> Result<Vec<IpAddr>, StorageError> {
        let list = self
            .storage
            .list(&self.prefix, ListOptions::default())
            .await?;
        let now = now();
        let mut live = Vec::new();
        for kv in list.items {
            let record = crate::registry::store::parse_stored(&kv.value).unwrap_or(Value::Null);
            let expires = record
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(EXPIRES))
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u64>().ok());
            let Some(ip) = kv
                .key
                .strip_prefix(&self.prefix)
                .and_then(|s| s.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if expires.is_some_and(|e| e <= now) {
                // Only if nobody renewed it since it was read.
                let _ = self.storage.delete(&kv.key, Some(kv.mod_revision)).await;
                continue;
            }
            live.push(ip);
        }
        live.sort();
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_records_drop_out_and_records_without_expiry_stay() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::server::storage_factory::StorageFactory::for_tests(dir.path()).await;
        let backend = storage.backend();
        let prefix = storage.keys().resource_prefix("", "masterleases");
        let leases = EndpointLeases::new(backend.clone(), prefix.clone());
        let record = |ip: &str, expires: Option<u64>| {
            let mut r = json!({"kind": "Endpoints", "apiVersion": "v1",
                "metadata": {"name": ip}, "subsets": [{"addresses": [{"ip": ip}]}]});
            if let Some(e) = expires {
                r["metadata"]["annotations"] = json!({EXPIRES: e.to_string()});
            }
            bytes::Bytes::from(r.to_string())
        };
        backend
            .create(
                &format!("{prefix}10.0.0.9"),
                record("10.0.0.9", Some(now() - 1)),
            )
            .await
            .unwrap();
        backend
            .create(&format!("{prefix}10.0.0.8"), record("10.0.0.8", None))
            .await
            .unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let live = leases.renew(ip).await.unwrap();
        let want: Vec<IpAddr> = vec![ip, "10.0.0.8".parse().unwrap()];
        assert_eq!(live, want);
        assert!(
            backend
                .get(&format!("{prefix}10.0.0.9"))
                .await
                .unwrap()
                .is_none()
        );
        // Renewing again keeps one record; releasing removes it.
        assert_eq!(leases.renew(ip).await.unwrap(), want);
        assert_eq!(
            leases.release(ip).await.unwrap(),
            vec!["10.0.0.8".parse::<IpAddr>().unwrap()]
        );
    }
}
