//! Storage contract: opaque values under string keys, one global revision.
//!
//! Modelled on `k8s.io/apiserver/pkg/storage`: every write returns a new revision of one
//! strictly increasing global counter, each key carries its create and mod revisions (they
//! become `metadata.resourceVersion`), lists can be read at a past revision and paginated
//! with a continue token, and watches replay history from a revision without gaps or
//! duplicates. Storage knows bytes and revisions only, never Kubernetes types, never HTTP.
//!
//! Prefixes are raw byte prefixes, as in etcd: `list("/registry/pods/a")` would also match
//! `/registry/pods/ab/x`. Callers isolate a namespace or resource by passing a prefix that
//! ends in `/`, which is what [`KeyBuilder`] returns.

pub mod cacher;
mod config;
pub mod embedded;
pub mod encryption;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod instrumented;
pub mod json_layout;

pub use config::{StorageBackend, StorageConfig, StorageMediaType};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

/// Result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What went wrong, as upstream's `storage.ErrCode*`; the REST layer maps each to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The key does not exist (404).
    NotFound,
    /// `create` on a key that exists (409 AlreadyExists).
    AlreadyExists,
    /// The mod-revision precondition did not hold (409 Conflict).
    Conflict,
    /// The requested revision has been compacted away (410 Gone, "too old resource version").
    Compacted,
    /// The watcher fell behind the bounded event buffer and was dropped; re-list or re-watch
    /// from the last revision it saw (the REST layer ends the watch without an error object).
    WatchLagged,
    /// A malformed argument such as an undecodable continue token (400).
    InvalidArgument,
    /// The backend cannot be reached or is shutting down (503).
    Unavailable,
    /// Anything else: I/O, corruption, bugs (500).
    Internal,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The one storage error: a code, the key it concerns and the revision involved.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: key {key:?} at revision {revision}: {message}")]
pub struct StorageError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// The key (or prefix) the operation was about; empty when not key-specific.
    pub key: String,
    /// For Conflict the key's current mod revision, for Compacted the compacted revision,
    /// otherwise the revision the operation saw (0 when unknown).
    pub revision: i64,
    /// Human-readable detail.
    pub message: String,
    /// The underlying cause, shared so the error stays `Clone` for fan-out to watchers.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// An error without an underlying cause.
    pub fn new(
        code: ErrorCode,
        key: impl Into<String>,
        revision: i64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            key: key.into(),
            revision,
            message: message.into(),
            source: None,
        }
    }

    /// `NotFound` for `key`.
    pub fn not_found(key: &str) -> Self {
        Self::new(ErrorCode::NotFound, key, 0, "key not found")
    }

    /// `AlreadyExists` for `key`, which has been modified at `revision`.
    pub fn already_exists(key: &str, revision: i64) -> Self {
        Self::new(
            ErrorCode::AlreadyExists,
            key,
            revision,
            "key already exists",
        )
    }

    /// `Conflict`: the precondition expected `expected` but the key is at `actual`.
    pub fn conflict(key: &str, expected: i64, actual: i64) -> Self {
        Self::new(
            ErrorCode::Conflict,
            key,
            actual,
            format!("expected mod revision {expected}, key is at {actual}"),
        )
    }

    /// `Compacted`: `requested` is older than the compacted revision `compacted`.
    pub fn compacted(key: &str, requested: i64, compacted: i64) -> Self {
        Self::new(
            ErrorCode::Compacted,
            key,
            compacted,
            format!("revision {requested} has been compacted (compacted revision {compacted})"),
        )
    }

    /// `InvalidArgument` with a message.
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, key, 0, message)
    }

    /// `Internal`: an expiring write on a backend that does not expire keys.
    pub fn cannot_expire(key: &str) -> Self {
        Self::new(
            ErrorCode::Internal,
            key,
            0,
            "this storage backend does not expire keys",
        )
    }

    /// An error of `code` caused by `source`.
    pub fn with_source(
        code: ErrorCode,
        key: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            code,
            key: key.into(),
            revision: 0,
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// True when the error has `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == code
    }
}

/// One stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, shared by the watch cache's index and every list's copy.
    pub key: Arc<str>,
    /// The opaque value.
    pub value: Bytes,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the last write to the key.
    pub mod_revision: i64,
    /// Where the value's JSON members lie, kept by the watch cache once found.
    pub layout: json_layout::LayoutMemo,
}

/// How [`ListOptions::revision`] is matched, as `metav1.ListOptions.resourceVersionMatch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RevisionMatch {
    /// Read exactly at `revision` (a consistent read of the latest state when unset).
    #[default]
    Exact,
    /// Any state at least as new as `revision` (any state at all when unset, like
    /// resourceVersion "0"); lets the watch cache answer without asking the backend.
    NotOlderThan,
}

/// Options of a [`Storage::list`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Read at this revision; `None` (or `Some(0)`) reads at the current revision.
    pub revision: Option<i64>,
    /// Whether `revision` is exact or a lower bound.
    pub revision_match: RevisionMatch,
    /// Maximum number of items; 0 or less means no limit (as `metav1.ListOptions.limit`).
    pub limit: i64,
    /// Token from a previous page; it fixes the revision, so `revision` must then be unset
    /// or equal to the token's.
    pub continue_token: Option<String>,
}

/// One page of a [`Storage::list`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at (the list's resourceVersion).
    pub revision: i64,
    /// Set when more items follow; pass it back to read the next page at the same revision.
    pub continue_token: Option<String>,
    /// Number of items after this page, when the backend knows it.
    pub remaining: Option<i64>,
}

/// Kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created.
    Added,
    /// The key was updated.
    Modified,
    /// The key was deleted.
    Deleted,
    /// Nothing changed: the watch has delivered every event under its prefix up to `revision`,
    /// as etcd's progress notification. Only watches opened with
    /// [`Storage::watch_with_progress`] yield it (key and values empty), after a request.
    Progress,
}

/// Asks the watches opened with it by [`Storage::watch_with_progress`] to report progress, as
/// upstream's `RequestWatchProgress`.
#[derive(Debug, Clone)]
pub struct ProgressRequests(Arc<tokio::sync::watch::Sender<u64>>);

impl Default for ProgressRequests {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

impl ProgressRequests {
    /// Makes every live watch opened with these requests yield one [`EventKind::Progress`].
    pub fn request(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// What a watch waits on: it changes with every request made after this call.
    pub(crate) fn listen(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

impl WatchEvent {
    /// A [`EventKind::Progress`] at `revision`.
    pub(crate) fn progress(revision: i64) -> Self {
        Self {
            kind: EventKind::Progress,
            key: String::new(),
            value: Bytes::new(),
            prev_value: None,
            revision,
        }
    }
}

/// One committed change, as delivered by [`Storage::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventKind,
    /// The key it happened to.
    pub key: String,
    /// The new value; for `Deleted`, the value that was deleted.
    pub value: Bytes,
    /// The value before this change (`None` for `Added`).
    pub prev_value: Option<Bytes>,
    /// Revision of the change; for `Added`/`Modified` also the key's new mod revision.
    pub revision: i64,
}

/// A stream of watch events; it ends after yielding an error.
pub type WatchStream = BoxStream<'static, Result<WatchEvent>>;

/// A backend's watch state, advanced one event at a time; [`into_watch_stream`] drives it.
pub(crate) trait WatchCursor: Send + 'static {
    /// The next event, or `None` when the watch is over.
    fn next(&mut self) -> impl std::future::Future<Output = Option<Result<WatchEvent>>> + Send;
}

/// Turns a backend's watch state into the [`WatchStream`] callers see.
pub(crate) fn into_watch_stream(cursor: impl WatchCursor) -> WatchStream {
    Box::pin(futures::stream::unfold(cursor, |mut c| async move {
        let item = c.next().await?;
        Some((item, c))
    }))
}

/// The storage contract every backend implements.
///
/// `async-trait` keeps it dyn-compatible so the server can hold `Arc<dyn Storage>` chosen at
/// start-up; one boxed future per call is noise next to a disk or network round trip.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<i64>;

    /// Reads `key` at the current revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Lists keys starting with `prefix` (a raw prefix: end it with `/`).
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult>;

    /// Replaces the value of an existing `key`. With `Some(rev)` the write only happens if
    /// the key's mod revision is `rev` (else `Conflict`). `NotFound` if the key is absent.
    async fn guaranteed_update(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
    ) -> Result<KeyValue>;

    /// Deletes `key` (with the same precondition as updates) and returns what was deleted;
    /// its `mod_revision` is the deletion's revision.
    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<KeyValue>;

    /// Number of keys under `prefix` at the current revision.
    async fn count(&self, prefix: &str) -> Result<i64>;

    /// The latest committed revision.
    async fn current_revision(&self) -> Result<i64>;

    /// Events under `prefix` with revision greater than `from_revision`, in revision order,
    /// without gaps or duplicates; `0` means "from now". Fails with `Compacted` (here or as
    /// the stream's first item) if `from_revision` is older than the compacted revision;
    /// a future revision waits for it.
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream>;

    /// The compacted revision, when the backend knows it without a round trip (the embedded
    /// store does; etcd only says so when a read fails). Lets the watch cache answer reads at
    /// a past revision that history still holds.
    async fn compacted_revision(&self) -> Result<Option<i64>> {
        Ok(None)
    }

    /// Whether [`Storage::watch_with_progress`] reports progress on this backend.
    fn reports_progress(&self) -> bool {
        false
    }

    /// [`Storage::watch`] whose stream also yields an [`EventKind::Progress`] after each of
    /// `requests`, once it has delivered every event up to the revision that was current when
    /// the request was made; so a watcher of a quiet prefix learns that it is up to date. A
    /// backend that does not [report progress](Storage::reports_progress) ignores the requests.
    async fn watch_with_progress(
        &self,
        prefix: &str,
        from_revision: i64,
        requests: ProgressRequests,
    ) -> Result<WatchStream> {
        let _ = requests;
        self.watch(prefix, from_revision).await
    }

    /// Discards history up to `revision`: reads and watches from an older revision then fail
    /// with `Compacted`. Compacting at or below the compacted revision is a no-op.
    async fn compact(&self, revision: i64) -> Result<()>;

    /// Whether the backend can expire keys itself ([`Storage::create_expiring`],
    /// [`Storage::update_expiring`]: etcd's leases); without it whoever wants keys to expire
    /// deletes them.
    fn expires_keys(&self) -> bool {
        false
    }

    /// [`Storage::create`] of a key the backend deletes `ttl` after this write unless it is
    /// written again, as upstream's TTL writes on etcd leases. Fails on a backend that does not
    /// [expire keys](Storage::expires_keys).
    async fn create_expiring(&self, key: &str, value: Bytes, ttl: Duration) -> Result<i64> {
        let _ = (value, ttl);
        Err(StorageError::cannot_expire(key))
    }

    /// [`Storage::guaranteed_update`] that gives the key `ttl` from this write on, as
    /// [`Storage::create_expiring`].
    async fn update_expiring(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
        ttl: Duration,
    ) -> Result<KeyValue> {
        let _ = (expected_mod_revision, value, ttl);
        Err(StorageError::cannot_expire(key))
    }

    /// The storage cluster's ID (etcd's; empty for the embedded store) and its database's
    /// size on disk in bytes, for `apiserver_storage_size_bytes`; `None` when not known.
    async fn size(&self) -> Result<Option<(String, i64)>> {
        Ok(None)
    }
}

/// Builds keys `<prefix>/<resource path>/<namespace>/<name>`.
///
/// The embedded store's layout has `<group>/<resource>` as the resource path, leaving out the
/// core group. kube-apiserver's ([`KeyBuilder::upstream`], kubeboot's on etcd) differs for the
/// kinds it builds in: their path is the resource alone, or a historical name (nodes are
/// `minions`); custom resources, CRDs and APIServices are `<group>/<resource>` in both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBuilder {
    prefix: String,
    upstream: bool,
}

/// kube-apiserver's resource paths that are not the resource's name
/// (`kubeapiserver.SpecialDefaultResourcePrefixes`).
const UPSTREAM_SPECIAL_PATHS: [(&str, &str, &str); 6] = [
    ("", "replicationcontrollers", "controllers"),
    ("", "endpoints", "services/endpoints"),
    ("", "nodes", "minions"),
    ("", "services", "services/specs"),
    ("extensions", "ingresses", "ingress"),
    ("networking.k8s.io", "ingresses", "ingress"),
];

/// The groups of kube-apiserver's own scheme, whose storage factory keys a resource by its
/// name alone and encodes it with `--storage-media-type`; apiextensions and the aggregator
/// (and every CRD's group, which must hold a dot and is never one of these) key by group and
/// resource and store JSON.
const UPSTREAM_BUILTIN_GROUPS: [&str; 22] = [
    "",
    "admissionregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new("/registry")
    }
}

/// Whether kube-apiserver stores `group`'s objects in its own layout and `--storage-media-type`
/// (protobuf by default) rather than as JSON under `<group>/<resource>`.
pub fn kube_apiserver_owns(group: &str) -> bool {
    UPSTREAM_BUILTIN_GROUPS.contains(&group)
}

impl KeyBuilder {
    /// kube-apiserver's layout under `prefix`.
    pub fn upstream(prefix: &str) -> Self {
        Self {
            upstream: true,
            ..Self::new(prefix)
        }
    }

    /// The embedded store's layout under `prefix` (`--etcd-prefix`, default `/registry`).
    pub fn new(prefix: &str) -> Self {
        // Normalise so "/registry/" and "registry" build the same keys as "/registry".
        let trimmed = prefix.trim_matches('/');
        let prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        };
        Self {
            prefix,
            upstream: false,
        }
    }

    /// Prefix of every key of `resource`, ending in `/`.
    pub fn resource_prefix(&self, group: &str, resource: &str) -> String {
        if self.upstream {
            if let Some((_, _, path)) = UPSTREAM_SPECIAL_PATHS
                .iter()
                .find(|(g, r, _)| *g == group && *r == resource)
            {
                return format!("{}/{path}/", self.prefix);
            }
            if kube_apiserver_owns(group) {
                return format!("{}/{resource}/", self.prefix);
            }
        }
        if group.is_empty() {
            format!("{}/{resource}/", self.prefix)
        } else {
            format!("{}/{group}/{resource}/", self.prefix)
        }
    }

    /// [`KeyBuilder::resource_prefix`] below the root and without its trailing `/`, as
    /// upstream's `ResourcePrefix` (`/configmaps`, `/minions`, `/apps/deployments`).
    pub fn resource_path(&self, group: &str, resource: &str) -> String {
        let prefix = self.resource_prefix(group, resource);
        prefix[self.prefix.len()..prefix.len() - 1].to_owned()
    }

    /// Prefix of the keys of `resource` in `namespace` (all namespaces when `None`), ending in `/`.
    pub fn namespace_prefix(&self, group: &str, resource: &str, namespace: Option<&str>) -> String {
        let mut p = self.resource_prefix(group, resource);
        if let Some(ns) = namespace {
            p.push_str(ns);
            p.push('/');
        }
        p
    }

    /// Key of one object; `namespace` is `None` for cluster-scoped resources.
    pub fn key(&self, group: &str, resource: &str, namespace: Option<&str>, name: &str) -> String {
        let mut k = self.namespace_prefix(group, resource, namespace);
        k.push_str(name);
        k
    }
}

/// Decoded content of a continue token.
/// Upstream's continue token, so tokens pass between kubeboot and kube-apiserver on one etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContinueToken {
    /// Format version (`meta.k8s.io/v1`), so tokens of another format are refused.
    v: String,
    /// Revision the first page was read at.
    rv: i64,
    /// Next key to return, relative to the list prefix so a token cannot escape its prefix.
    start: String,
}

/// The one token format, upstream's.
const CONTINUE_TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Go's `path.Clean` of an absolute path: `.`, `..` and repeated slashes resolved lexically.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

impl ContinueToken {
    /// Token resuming a list of `prefix` at `revision` with `next_key`.
    pub(crate) fn encode(prefix: &str, revision: i64, next_key: &str) -> String {
        let start = next_key.strip_prefix(prefix).unwrap_or(next_key).to_owned();
        let json = serde_json::to_vec(&ContinueToken {
            v: CONTINUE_TOKEN_VERSION.into(),
            rv: revision,
            start,
        })
        .expect("continue token serialises");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes `token` for a list of `prefix` into (revision, next key); errors are upstream's
    /// `DecodeContinue` words.
    pub(crate) fn decode(prefix: &str, token: &str) -> Result<(i64, String)> {
        let bad =
            |why: &str| StorageError::invalid(prefix, format!("continue key is not valid: {why}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|e| {
                // Go's CorruptInputError offset.
                let at = match e {
                    base64::DecodeError::InvalidByte(at, _) => at,
                    _ => token.len().saturating_sub(1),
                };
                bad(&format!("illegal base64 data at input byte {at}"))
            })?;
        // Go's words for malformed JSON; a well-formed token of the wrong shape keeps serde's.
        let t: ContinueToken = serde_json::from_slice(&raw).map_err(|e| {
            bad(&crate::golang::syntax_error(&raw).unwrap_or_else(|| e.to_string()))
        })?;
        if t.v != CONTINUE_TOKEN_VERSION {
            return Err(bad(&format!(
                "server does not recognize this encoded version {}",
                t.v
            )));
        }
        if t.rv == 0 {
            return Err(bad(
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ));
        }
        if t.start.is_empty() {
            return Err(bad("encoded start key empty (version meta.k8s.io/v1)"));
        }
        // A token may not climb out of its prefix.
        let key = if t.start.starts_with('/') {
            t.start.clone()
        } else {
            format!("/{}", t.start)
        };
        if clean_path(&key) != key {
            return Err(bad(&t.start));
        }
        Ok((t.rv, format!("{prefix}{}", &key[1..])))
    }
}

/// Where a list page starts and at which revision, resolving continue token vs revision.
#[derive(Debug)]
pub(crate) struct ListStart {
    /// Revision to read at; `None` means current.
    pub revision: Option<i64>,
    /// When reading the current state: the oldest revision it may have (`NotOlderThan`).
    pub min_revision: i64,
    /// First key (inclusive) to return.
    pub start_key: String,
}

impl ListStart {
    /// Resolves `options` for a list of `prefix`, rejecting a token whose revision disagrees.
    pub(crate) fn resolve(prefix: &str, options: &ListOptions) -> Result<Self> {
        let requested = options.revision.filter(|r| *r > 0);
        match &options.continue_token {
            None if options.revision_match == RevisionMatch::NotOlderThan => Ok(Self {
                revision: None,
                min_revision: requested.unwrap_or(0),
                start_key: prefix.to_owned(),
            }),
            None => Ok(Self {
                revision: requested,
                min_revision: 0,
                start_key: prefix.to_owned(),
            }),
            Some(token) => {
                let (rv, start_key) = ContinueToken::decode(prefix, token)?;
                if requested.is_some_and(|r| r != rv) {
                    return Err(StorageError::invalid(
                        prefix,
                        "revision and continue token disagree",
                    ));
                }
                Ok(Self {
                    revision: Some(rv),
                    min_revision: 0,
                    start_key,
                })
            }
        }
    }
}

/// Runs forever, compacting `storage` every `interval` to `keep` revisions behind the
/// current one (upstream compacts every 5 minutes). Spawn it with `tokio::spawn`.
pub async fn run_compactor(storage: Arc<dyn Storage>, interval: Duration, keep: i64) {
    let mut ticker = tokio::time::interval(interval);
    // The first tick fires at once; skip it so a fresh start does not compact immediately.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match storage.current_revision().await {
            Ok(current) if current - keep > 0 => {
                if let Err(e) = storage.compact(current - keep).await {
                    tracing::warn!(error = %e, "storage compaction failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "storage compaction: cannot read revision"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_builder_leaves_out_the_core_group_and_normalises_the_prefix() {
        let kb = KeyBuilder::new("/registry/");
        assert_eq!(
            kb.key("", "configmaps", Some("default"), "foo"),
            "/registry/configmaps/default/foo"
        );
        assert_eq!(
            kb.key("apps", "deployments", Some("ns"), "d"),
            "/registry/apps/deployments/ns/d"
        );
        assert_eq!(kb.key("", "nodes", None, "n1"), "/registry/nodes/n1");
        assert_eq!(
            kb.namespace_prefix("", "pods", Some("a")),
            "/registry/pods/a/"
        );
        assert_eq!(
            KeyBuilder::new("custom").resource_prefix("", "pods"),
            "/custom/pods/"
        );
    }

    #[test]
    fn upstream_layout_keys_built_in_kinds_as_kube_apiserver_does() {
        let kb = KeyBuilder::upstream("/registry");
        let cases = [
            (
                "",
                "services",
                Some("default"),
                "/registry/services/specs/default/x",
            ),
            (
                "",
                "endpoints",
                Some("default"),
                "/registry/services/endpoints/default/x",
            ),
            ("", "nodes", None, "/registry/minions/x"),
            (
                "",
                "replicationcontrollers",
                Some("a"),
                "/registry/controllers/a/x",
            ),
            ("", "configmaps", Some("a"), "/registry/configmaps/a/x"),
            (
                "apps",
                "deployments",
                Some("a"),
                "/registry/deployments/a/x",
            ),
            (
                "networking.k8s.io",
                "ingresses",
                Some("a"),
                "/registry/ingress/a/x",
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                None,
                "/registry/clusterroles/x",
            ),
            (
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                None,
                "/registry/apiextensions.k8s.io/customresourcedefinitions/x",
            ),
            (
                "apiregistration.k8s.io",
                "apiservices",
                None,
                "/registry/apiregistration.k8s.io/apiservices/x",
            ),
            (
                "example.com",
                "widgets",
                Some("a"),
                "/registry/example.com/widgets/a/x",
            ),
        ];
        for (group, resource, ns, key) in cases {
            assert_eq!(kb.key(group, resource, ns, "x"), key, "{resource}.{group}");
        }
        // kubeboot's own layout keeps the group and the resource's name.
        assert_eq!(
            KeyBuilder::new("/registry").key("", "nodes", None, "x"),
            "/registry/nodes/x"
        );
    }

    #[test]
    fn continue_token_round_trips_relative_to_its_prefix() {
        let t = ContinueToken::encode("/registry/pods/", 42, "/registry/pods/ns/b");
        let (rv, key) = ContinueToken::decode("/registry/pods/", &t).unwrap();
        assert_eq!((rv, key.as_str()), (42, "/registry/pods/ns/b"));
        // The same token under another prefix stays inside that prefix.
        let (_, key) = ContinueToken::decode("/registry/secrets/", &t).unwrap();
        assert_eq!(key, "/registry/secrets/ns/b");
        let err = ContinueToken::decode("/p/", "not a token!").unwrap_err();
        assert!(err.is(ErrorCode::InvalidArgument));
    }

    #[test]
    fn list_start_rejects_a_revision_that_disagrees_with_the_token() {
        let t = ContinueToken::encode("/p/", 7, "/p/x");
        let opts = ListOptions {
            revision: Some(8),
            limit: 1,
            continue_token: Some(t),
            ..Default::default()
        };
        assert!(
            ListStart::resolve("/p/", &opts)
                .unwrap_err()
                .is(ErrorCode::InvalidArgument)
        );
    }
}
