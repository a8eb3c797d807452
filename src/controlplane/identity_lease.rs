//! Upstream's apiserver identity: each server holds the Lease `apiserver-<hash of its hostname>`
//! in kube-system, labelled `apiserver.kubernetes.io/identity=kube-apiserver` and
//! `kubernetes.io/hostname`, renewed every 10 s for an hour; so the Leases name the servers of a
//! control plane. A server deletes its Lease when it starts (an old holder's) and when it shuts
//! down; a garbage collector deletes the Leases not renewed within their duration (servers that
//! died).

use crate::registry::selectors::LabelSelector;
use crate::registry::store::{DeleteParams, ListParams, UpdateTarget, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The label naming the component whose identity a Lease is.
pub const COMPONENT_LABEL: &str = "apiserver.kubernetes.io/identity";
/// This component's value of [`COMPONENT_LABEL`].
pub const COMPONENT: &str = "kube-apiserver";
/// The namespace of identity Leases.
pub const NAMESPACE: &str = "kube-system";
/// `spec.leaseDurationSeconds` (upstream's `IdentityLeaseDurationSeconds`).
pub const DURATION_SECONDS: i64 = 3600;
/// How often a server renews its Lease (`IdentityLeaseRenewIntervalPeriod`).
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often expired Leases are collected (`IdentityLeaseGCPeriod`).
pub const GC_PERIOD: Duration = Duration::from_secs(3600);

/// The machine's hostname, as Go's `os.Hostname`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The server's ID, as upstream's `APIServerID`: `apiserver-` and the first 16 bytes of the
/// SHA-256 of the length-prefixed hostname and component, in lower-case unpadded base32.
pub fn server_id(hostname: &str) -> String {
    let mut data = Vec::new();
    for part in [hostname.as_bytes(), COMPONENT.as_bytes()] {
        // cryptobyte's AddUint16LengthPrefixed: a big-endian u16 length, then the bytes.
        data.extend_from_slice(&(part.len().min(u16::MAX as usize) as u16).to_be_bytes());
        data.extend_from_slice(&part[..part.len().min(u16::MAX as usize)]);
    }
    let hash = ring::digest::digest(&ring::digest::SHA256, &data);
    format!("apiserver-{}", base32_lower(&hash.as_ref()[..16]))
}

/// RFC 4648 base32 without padding, lower-cased.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// This server's identity Lease.
pub struct IdentityLease {
    leases: Arc<Store>,
    name: String,
    holder: String,
    hostname: String,
    stopped: AtomicBool,
    /// Held by a renewal and by the final delete, so a renewal under way when the server
    /// stops cannot bring the Lease back after it (upstream's `reconcilingLock`).
    reconciling: tokio::sync::Mutex<()>,
}

impl IdentityLease {
    /// The Lease of the server on `hostname`, held as `<id>_<a fresh UUID>`.
    pub fn new(leases: Arc<Store>, hostname: String) -> Self {
        let name = server_id(&hostname);
        let holder = format!("{name}_{}", crate::registry::store::new_uid());
        Self {
            leases,
            name,
            holder,
            hostname,
            stopped: AtomicBool::new(false),
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    /// The Lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes a Lease left by an earlier holder, then renews every [`RENEW_INTERVAL`] until
    /// [`IdentityLease::stop`].
    pub async fn run(self: Arc<Self>) {
        if let Err(e) = self.delete().await {
            tracing::warn!(lease = %self.name, error = %e, "deleting the old identity lease failed");
        }
        let mut ticks = tokio::time::interval(RENEW_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let _reconciling = self.reconciling.lock().await;
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = self.renew().await {
                tracing::warn!(lease = %self.name, error = %e, "renewing the identity lease failed");
            }
        }
    }

    /// Stops renewing and deletes the Lease, as a server shutting down does.
    pub async fn stop(&self) -> Result<(), RegistryError> {
        self.stopped.store(true, Ordering::SeqCst);
        let _reconciling = self.reconciling.lock().await;
        self.delete().await
    }

    async fn delete(&self) -> Result<(), RegistryError> {
        match self
            .leases
            .delete(Some(NAMESPACE), &self.name, &DeleteParams::default())
            .await
        {
            Ok(_) | Err(RegistryError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The Lease as this server holds it now, over `base` (what is stored, if anything).
    fn held(&self, base: Option<&Value>) -> Value {
        let mut lease = base.cloned().unwrap_or_else(|| {
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": NAMESPACE}})
        });
        lease["spec"]["holderIdentity"] = json!(self.holder);
        lease["spec"]["leaseDurationSeconds"] = json!(DURATION_SECONDS);
        lease["spec"]["renewTime"] = json!(crate::registry::store::now_micro());
        let labels = &mut lease["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[COMPONENT_LABEL] = json!(COMPONENT);
        labels["kubernetes.io/hostname"] = json!(self.hostname);
        lease
    }

    /// Creates the Lease, or renews it.
    async fn renew(&self) -> Result<(), RegistryError> {
        let ns = Some(NAMESPACE);
        match self
            .leases
            .create(ns, self.held(None), WriteOptions::default())
            .await
        {
            Err(RegistryError::AlreadyExists { .. }) => {}
            other => return other.map(drop),
        }
        self.leases
            .update_with(
                ns,
                &self.name,
                UpdateTarget::Main,
                WriteOptions::default(),
                |current| Ok::<_, RegistryError>(self.held(Some(current))),
            )
            .await
            .map(drop)
    }
}

/// Deletes, every [`GC_PERIOD`], the identity Leases of kube-apiservers not renewed within their
/// duration, as upstream's apiserver lease garbage collector.
pub async fn collect_forever(leases: Arc<Store>) {
    let mut ticks = tokio::time::interval(GC_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = collect(&leases, time::OffsetDateTime::now_utc()).await {
            tracing::warn!(error = %e, "collecting expired apiserver identity leases failed");
        }
    }
}

/// One collection at `now`; the Leases deleted.
pub async fn collect(
    leases: &Store,
    now: time::OffsetDateTime,
) -> Result<Vec<String>, RegistryError> {
    let params = ListParams {
        labels: LabelSelector::parse(&format!("{COMPONENT_LABEL}={COMPONENT}"))
            .expect("a valid selector"),
        ..Default::default()
    };
    let page = leases.list(Some(NAMESPACE), &params).await?;
    let mut deleted = Vec::new();
    for lease in page.items.iter().filter(|l| expired(l, now)) {
        let Some(name) = lease.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        // Only the version found expired: a renewal since then keeps the Lease.
        let params = DeleteParams {
            precondition_resource_version: lease
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Default::default()
        };
        match leases.delete(Some(NAMESPACE), name, &params).await {
            Ok(_) => deleted.push(name.to_string()),
            Err(RegistryError::NotFound { .. } | RegistryError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Whether `lease` was not renewed within its duration by `now` (or says neither).
fn expired(lease: &Value, now: time::OffsetDateTime) -> bool {
    let renewed = lease
        .pointer("/spec/renewTime")
        .and_then(Value::as_str)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        });
    let duration = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64);
    match (renewed, duration) {
        (Some(renewed), Some(seconds)) => renewed + time::Duration::seconds(seconds) < now,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_id_is_upstreams_hash_of_the_hostname() {
        // Computed apart: base32(sha256(b"\0\x04kb-a\0\x0ekube-apiserver")[:16]), lower-cased.
        assert_eq!(server_id("kb-a"), "apiserver-cydliygw575ojop34ck4fhtdyu");
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32_lower(b""), "");
    }

    #[test]
    fn a_lease_expires_a_duration_after_its_renewal() {
        let now = time::OffsetDateTime::parse(
            "2026-01-01T01:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let lease =
            |renewed: &str| json!({"spec": {"renewTime": renewed, "leaseDurationSeconds": 3600}});
        assert!(expired(&lease("2025-12-31T23:59:59.000000Z"), now));
        assert!(!expired(&lease("2026-01-01T00:00:01.000000Z"), now));
        assert!(expired(&json!({"spec": {}}), now), "never renewed");
    }

    #[tokio::test]
    async fn a_server_holds_renews_and_gives_up_its_lease_and_dead_ones_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let factory = crate::server::storage_factory::StorageFactory::for_tests(dir.path()).await;
        let leases = factory.builtin_store("coordination.k8s.io", "leases");
        let identity = Arc::new(IdentityLease::new(leases.clone(), "kb-a".into()));
        identity.renew().await.unwrap();
        let held = leases.get(Some(NAMESPACE), identity.name()).await.unwrap();
        assert_eq!(held["metadata"]["labels"][COMPONENT_LABEL], COMPONENT);
        assert_eq!(held["metadata"]["labels"]["kubernetes.io/hostname"], "kb-a");
        assert_eq!(held["spec"]["leaseDurationSeconds"], DURATION_SECONDS);
        let holder = held["spec"]["holderIdentity"].as_str().unwrap();
        assert!(
            holder.starts_with(&format!("{}_", identity.name())),
            "{holder}"
        );
        identity.renew().await.unwrap();
        let renewed = leases.get(Some(NAMESPACE), identity.name()).await.unwrap();
        assert_ne!(
            renewed["metadata"]["resourceVersion"],
            held["metadata"]["resourceVersion"]
        );

        // A dead server's Lease, last renewed two hours ago, goes; a live one stays, and so
        // do Leases of other components.
        let dead = IdentityLease::new(leases.clone(), "kb-dead".into());
        let mut stale = dead.held(None);
        stale["spec"]["renewTime"] = json!("2000-01-01T00:00:00.000000Z");
        let mut other = stale.clone();
        other["metadata"]["name"] = json!("kube-scheduler");
        other["metadata"]["labels"] = json!({});
        for lease in [stale, other] {
            leases
                .create(Some(NAMESPACE), lease, WriteOptions::default())
                .await
                .unwrap();
        }
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(collect(&leases, now).await.unwrap(), [dead.name()]);
        assert!(leases.get(Some(NAMESPACE), "kube-scheduler").await.is_ok());
        let later = now + time::Duration::seconds(DURATION_SECONDS + 1);
        assert_eq!(
            collect(&leases, later).await.unwrap(),
            [identity.name()],
            "not renewed within the hour after `now`"
        );

        identity.renew().await.unwrap();
        identity.stop().await.unwrap();
        let gone = leases.get(Some(NAMESPACE), identity.name()).await;
        assert!(
            matches!(gone, Err(RegistryError::NotFound { .. })),
            "{gone:?}"
        );
    }
}
