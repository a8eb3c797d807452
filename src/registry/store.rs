//! The generic store (upstream's `registry/generic/registry.Store`): metadata rules, optimistic
//! concurrency, finalizers, dry-run, selectors, pagination and watch, for any [`Strategy`].

use super::errors::{ErrorList, FieldError, RegistryError};
use super::managed_fields::{self, Operation, Scope, TypeRef, Writer};
use super::selectors::{FieldSelector, LabelSelector};
use super::spliced_list;
use super::strategy::{ResourceInfo, Strategy};
use super::validation;
use crate::storage::{
    self, ErrorCode, EventKind, KeyBuilder, KeyValue, RevisionMatch, Storage, StorageError,
};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// `Result` with [`RegistryError`].
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// `?fieldValidation=`: what to do with unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (upstream's default).
    #[default]
    Warn,
    /// Reject the request with 400.
    Strict,
}

/// Options shared by create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `?dryRun=All`: do everything but write.
    pub dry_run: bool,
    /// `?fieldValidation=`.
    pub field_validation: FieldValidation,
    /// Who writes, for managedFields; `None` for the server's own writes, which record an
    /// Update by [`SERVER_MANAGER`] as upstream's loopback client does.
    pub writer: Option<Arc<Writer>>,
}

/// The field manager of the server's own writes: upstream's loopback client's user agent.
pub const SERVER_MANAGER: &str = "kube-apiserver";

/// A result plus the warnings to send in `Warning` headers.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The result.
    pub value: T,
    /// Warnings, e.g. unknown fields under fieldValidation=Warn.
    pub warnings: Vec<String>,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTarget {
    /// The main resource: everything but status.
    Main,
    /// Subresource `name`, which owns only these JSON pointers (e.g. `/status`).
    Subresource {
        /// The subresource's name, as managedFields record it.
        name: &'static str,
        /// The fields it may change.
        owns: &'static [&'static str],
    },
}

impl UpdateTarget {
    /// The status subresource.
    pub const STATUS: Self = Self::Subresource {
        name: "status",
        owns: &["/status"],
    };

    /// The fields a write through this target may change, for managedFields.
    pub fn scope(self, has_status: bool) -> Scope {
        match self {
            Self::Main => Scope::Main { has_status },
            Self::Subresource { owns, .. } => Scope::Only(owns),
        }
    }

    /// The subresource's name, empty for the main resource.
    pub fn subresource(self) -> &'static str {
        match self {
            Self::Main => "",
            Self::Subresource { name, .. } => name,
        }
    }

    /// The target of an update through subresource `name`; `None` for a subresource that is not written this way.
    pub fn for_subresource(name: &str) -> Option<Self> {
        match name {
            "" => Some(Self::Main),
            "status" => Some(Self::STATUS),
            // The namespace finalize subresource changes spec.finalizers only.
            "finalize" => Some(Self::Subresource {
                name: "finalize",
                owns: &["/spec/finalizers"],
            }),
            // CSR approval changes the Approved/Denied conditions only.
            "approval" => Some(Self::Subresource {
                name: "approval",
                owns: &["/status/conditions"],
            }),
            _ => None,
        }
    }
}

/// Copies the value at JSON pointer `ptr` from `from` into `into`, removing it when absent.
fn copy_pointer(into: &mut Value, from: &Value, ptr: &str) {
    let (parent, leaf) = ptr.rsplit_once('/').unwrap_or(("", ptr));
    let value = from.pointer(ptr).cloned();
    let mut target = into;
    for seg in parent.split('/').filter(|s| !s.is_empty()) {
        if !target.is_object() {
            *target = json!({});
        }
        let obj = target.as_object_mut().expect("object");
        target = obj.entry(seg).or_insert_with(|| json!({}));
    }
    if let Some(obj) = target.as_object_mut() {
        match value {
            Some(v) => {
                obj.insert(leaf.to_string(), v);
            }
            None => {
                obj.remove(leaf);
            }
        }
    }
}

/// List parameters after parsing the query.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0: unlimited).
    pub limit: i64,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion` ("" unset, "0" any, else a revision).
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// One page of a list: decoded objects, or (a [`SplicedPage`]) their JSON array.
#[derive(Debug)]
pub struct ListPage<Items = Vec<Value>> {
    /// Objects, with resourceVersion set.
    pub items: Items,
    /// The revision the list was read at.
    pub resource_version: String,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// Items remaining after this page, when known and no selector filtered them.
    pub remaining: Option<i64>,
}

/// One page of a list whose items are already encoded, as one JSON array.
pub type SplicedPage = ListPage<Vec<u8>>;

/// Watch parameters after parsing the query.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    /// Selectors and resourceVersion (limit/continue are ignored for watches, as upstream).
    pub list: ListParams,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
}

/// One event of a watch stream, ready to encode as `{"type":…,"object":…}`.
#[derive(Debug, Clone)]
pub struct Event {
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub kind: &'static str,
    /// The object (a Status for ERROR); a change's object is shared by every watcher of the
    /// store that receives it.
    pub object: Arc<Value>,
    /// The frames already encoded for this change, shared like `object`; `None` for events
    /// made for one watcher (initial ADDED, BOOKMARK, ERROR).
    pub frames: Option<Arc<FrameCache>>,
}

impl Event {
    fn new(kind: &'static str, object: Value) -> Self {
        Self {
            kind,
            object: Arc::new(object),
            frames: None,
        }
    }
}

/// Equal events carry the same type and object; encoded frames are only a cache.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.object == other.object
    }
}

/// One change's encoded watch frames by (event type, encoding): with N watchers of a resource
/// each change is otherwise encoded N times. The event type is part of the key because
/// selectors can turn one change into ADDED, MODIFIED or DELETED for different watchers.
#[derive(Debug, Default)]
pub struct FrameCache(Mutex<Vec<(&'static str, &'static str, Bytes)>>);

impl FrameCache {
    /// The frame of `kind` in `encoding`, made by `encode` unless a watcher already made it.
    pub fn get_or_encode<E>(
        &self,
        kind: &'static str,
        encoding: &'static str,
        encode: impl FnOnce() -> std::result::Result<Bytes, E>,
    ) -> std::result::Result<Bytes, E> {
        let cached = |frames: &[(&'static str, &'static str, Bytes)]| {
            frames
                .iter()
                .find(|(k, e, _)| *k == kind && *e == encoding)
                .map(|(_, _, b)| b.clone())
        };
        if let Some(frame) = cached(&self.lock()) {
            return Ok(frame);
        }
        // Encoded outside the lock so other encodings are not held up; two watchers racing on
        // a fresh change may both encode it, which costs only time.
        let frame = encode()?;
        let mut frames = self.lock();
        if cached(&frames).is_none() {
            frames.push((kind, encoding, frame.clone()));
        }
        Ok(frame)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, &'static str, Bytes)>> {
        // A panic while holding the lock leaves a valid (if incomplete) cache.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Changes this store's watchers decoded recently, kept so that the next watcher of the same
/// change shares them. Watchers of one resource see the same storage events at about the same
/// time, so a short window catches nearly all of them; a watcher further behind decodes for
/// itself. Bounded by count because entries hold decoded objects.
const DECODED_CHANGES: usize = 128;

/// One storage change decoded once for all of a store's watchers.
#[derive(Debug)]
struct DecodedChange {
    key: String,
    revision: i64,
    object: Arc<Value>,
    /// The previous object, decoded on first need: only watchers with selectors look at it.
    prev: OnceLock<Option<Value>>,
    frames: Arc<FrameCache>,
}

/// Delete parameters (the DeleteOptions body and query).
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `propagationPolicy`: Orphan, Background or Foreground.
    pub propagation_policy: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// Removed from storage; the object as it was.
    Gone(Value),
    /// Finalizers keep it: the object now carries a deletionTimestamp.
    Pending(Value),
}

/// The finalizer upstream adds for `propagationPolicy=Orphan`.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// The finalizer upstream adds for `propagationPolicy=Foreground`.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
/// The annotation of the bookmark that ends a watch's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";
/// How often a watch with bookmarks enabled gets one, as upstream's ~1 minute.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// How many times a create with generateName retries a name collision (upstream: 7).
const GENERATE_NAME_RETRIES: usize = 7;
/// How many deletes of one deletecollection are in flight at once.
const DELETE_COLLECTION_WORKERS: usize = 16;
/// How many times a read-modify-write retries a conflict before giving up.
const UPDATE_RETRIES: usize = 16;

/// Allocations that live beside an object (service cluster IPs, node ports), made before it
/// is written and released when it goes, as upstream's service REST storage does.
#[async_trait::async_trait]
pub trait StoreHooks: Send + Sync {
    /// Allocates what `new` needs and `old` (on update) does not hold yet; may fill fields of `new`.
    async fn allocate(&self, new: &mut Value, old: Option<&Value>, dry_run: bool) -> Result<()>;
    /// Releases what `obj` holds and `keep` does not (all of it when `keep` is `None`).
    async fn release(&self, obj: &Value, keep: Option<&Value>);
}

/// The generic store of one resource.
pub struct Store {
    strategy: Arc<dyn Strategy>,
    storage: Arc<dyn Storage>,
    keys: KeyBuilder,
    /// The kind's field types, for managedFields.
    field_types: TypeRef,
    hooks: Option<Arc<dyn StoreHooks>>,
    /// Recently decoded changes, newest last (see [`DECODED_CHANGES`]).
    decoded: Mutex<VecDeque<Arc<DecodedChange>>>,
}

/// The current time as upstream renders `metav1.Time`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system random generator");
    b
}

/// A random UUID (version 4), as upstream assigns `metadata.uid`.
pub fn new_uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A 5-character suffix from upstream's alphabet (no vowels, no look-alikes).
fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let o = obj.as_object_mut().expect("object");
    let m = o.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("object")
}

/// The labels of an object as a map.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    meta(obj)
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything but metadata and status: a change here bumps metadata.generation.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

fn parse_rv(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| RegistryError::BadRequest(format!("invalid resource version: {s:?}")))
}

impl Store {
    /// A store for `strategy`'s kind on `storage`.
    pub fn new(
        strategy: Arc<dyn Strategy>,
        storage: Arc<dyn Storage>,
        keys: KeyBuilder,
        field_types: TypeRef,
    ) -> Self {
        Self {
            strategy,
            storage,
            keys,
            field_types,
            hooks: None,
            decoded: Mutex::default(),
        }
    }

    /// The same store with allocation hooks.
    pub fn with_hooks(mut self, hooks: Arc<dyn StoreHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    async fn allocate(&self, new: &mut Value, old: Option<&Value>, dry_run: bool) -> Result<()> {
        match &self.hooks {
            Some(h) => h.allocate(new, old, dry_run).await,
            None => Ok(()),
        }
    }

    async fn release(&self, obj: &Value, keep: Option<&Value>, dry_run: bool) {
        if let (Some(h), false) = (&self.hooks, dry_run) {
            h.release(obj, keep).await;
        }
    }

    /// The kind's facts.
    pub fn info(&self) -> &ResourceInfo {
        self.strategy.info()
    }

    /// The kind's strategy.
    pub fn strategy(&self) -> &Arc<dyn Strategy> {
        &self.strategy
    }

    fn key(&self, ns: Option<&str>, name: &str) -> String {
        let (group, resource) = self.strategy.storage_resource();
        let ns = if self.info().namespaced { ns } else { None };
        self.keys.key(group, resource, ns, name)
    }

    fn prefix(&self, ns: Option<&str>) -> String {
        let (group, resource) = self.strategy.storage_resource();
        let ns = if self.info().namespaced { ns } else { None };
        self.keys.namespace_prefix(group, resource, ns)
    }

    fn not_found(&self, name: &str) -> RegistryError {
        RegistryError::NotFound {
            resource: self.info().group_resource(),
            name: name.into(),
        }
    }

    fn storage_err(&self, e: StorageError, name: &str) -> RegistryError {
        RegistryError::from_storage(e, &self.info().group_resource(), name)
    }

    fn invalid(&self, name: &str, errors: ErrorList) -> RegistryError {
        let info = self.info();
        RegistryError::Invalid {
            group: info.group.to_string(),
            qualified_kind: info.qualified_kind(),
            kind: info.kind.to_string(),
            name: name.into(),
            errors,
        }
    }

    /// Decodes a stored value and stamps its resourceVersion.
    fn decode_stored(&self, value: &[u8], revision: i64) -> Result<Value> {
        let mut obj: Value = serde_json::from_slice(value)
            .map_err(|e| RegistryError::Internal(format!("stored object is not JSON: {e}")))?;
        if let Some(conversion) = self.strategy.storage_conversion() {
            conversion.decode(&mut obj);
        }
        meta_mut(&mut obj).insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
        Ok(obj)
    }

    fn decode_kv(&self, kv: &KeyValue) -> Result<Value> {
        self.decode_stored(&kv.value, kv.mod_revision)
    }

    fn encode(&self, obj: &Value) -> Bytes {
        let mut o = obj.clone();
        if let Some(conversion) = self.strategy.storage_conversion() {
            conversion.encode(&mut o);
        }
        // The revision is the storage's, never part of the stored bytes.
        meta_mut(&mut o).remove("resourceVersion");
        Bytes::from(serde_json::to_vec(&o).expect("JSON values serialize"))
    }

    /// Schema check, unknown-field policy, defaults; returns the normalized object and warnings.
    fn admit_body(&self, body: Value, opts: &WriteOptions) -> Result<(Value, Vec<String>)> {
        let info = self.info();
        if let Some(kind) = body.get("kind").and_then(Value::as_str)
            && kind != info.kind
        {
            return Err(RegistryError::BadRequest(format!(
                "the kind in the request body ({kind}) does not match the expected kind {}",
                info.kind
            )));
        }
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
            && av != info.api_version()
        {
            return Err(RegistryError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
        let decoded = self
            .strategy
            .decode(body)
            .map_err(RegistryError::BadRequest)?;
        let mut warnings = Vec::new();
        if !decoded.unknown_fields.is_empty() {
            match opts.field_validation {
                FieldValidation::Ignore => {}
                FieldValidation::Warn => warnings.extend(
                    decoded
                        .unknown_fields
                        .iter()
                        .map(|f| format!("unknown field {f:?}")),
                ),
                FieldValidation::Strict => {
                    let list: Vec<String> = decoded
                        .unknown_fields
                        .iter()
                        .map(|f| format!("unknown field {f:?}"))
                        .collect();
                    return Err(RegistryError::BadRequest(format!(
                        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                        list.join(", "),
                        kind = info.kind,
                        version = info.version
                    )));
                }
            }
        }
        Ok((decoded.object, warnings))
    }

    fn validate_meta(&self, obj: &Value) -> ErrorList {
        let info = self.info();
        validation::object_meta(meta(obj), info.namespaced, info.name_rule)
    }

    /// Reads one object.
    pub async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value> {
        self.decode_kv(&self.get_kv(ns, name).await?)
    }

    /// The stored key-value of an object, or NotFound.
    async fn get_kv(&self, ns: Option<&str>, name: &str) -> Result<KeyValue> {
        self.storage
            .get(&self.key(ns, name))
            .await
            .map_err(|e| self.storage_err(e, name))?
            .ok_or_else(|| self.not_found(name))
    }

    /// Reads just the fields `T` declares of an object, straight from the stored bytes: a
    /// check that needs two fields (admission reading a namespace's phase on every create)
    /// should not build the whole object. Kinds that convert on read decode fully first.
    pub async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        ns: Option<&str>,
        name: &str,
    ) -> Result<T> {
        let kv = self.get_kv(ns, name).await?;
        let decoded = if self.strategy.storage_conversion().is_none() {
            serde_json::from_slice(&kv.value)
        } else {
            T::deserialize(self.decode_kv(&kv)?)
        };
        decoded.map_err(|e| RegistryError::Internal(format!("stored object: {e}")))
    }

    fn field_lookup<'a>(&'a self, obj: &'a Value) -> impl Fn(&str) -> Option<String> + 'a {
        move |field| match field {
            "metadata.name" => Some(meta_str(obj, "name").unwrap_or("").to_string()),
            "metadata.namespace" => Some(meta_str(obj, "namespace").unwrap_or("").to_string()),
            other => self.strategy.field(obj, other),
        }
    }

    /// Rejects field selectors naming fields this kind does not support (400, as upstream).
    pub fn check_field_selector(&self, fields: &FieldSelector) -> Result<()> {
        for f in fields.fields() {
            if f == "metadata.name" || f == "metadata.namespace" {
                continue;
            }
            // A field is supported when the strategy answers for it on an empty object.
            if self.strategy.field(&json!({"metadata": {}}), f).is_none() {
                return Err(RegistryError::BadRequest(format!(
                    "field label not supported: {f}"
                )));
            }
        }
        Ok(())
    }

    fn matches(&self, obj: &Value, params: &ListParams) -> bool {
        params.labels.matches(&labels_of(obj)) && params.fields.matches(self.field_lookup(obj))
    }

    fn storage_list_options(&self, params: &ListParams) -> Result<storage::ListOptions> {
        let rv = params.resource_version.as_deref().unwrap_or("");
        let (revision, revision_match) = match (rv, params.resource_version_match.as_deref()) {
            ("", None | Some("")) => (None, RevisionMatch::Exact),
            ("", Some(m)) => {
                return Err(RegistryError::BadRequest(format!(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided (got {m:?})"
                )));
            }
            ("0", None | Some("") | Some("NotOlderThan")) => (None, RevisionMatch::NotOlderThan),
            (rv, None | Some("")) => (Some(parse_rv(rv)?), RevisionMatch::NotOlderThan),
            (rv, Some("NotOlderThan")) => (Some(parse_rv(rv)?), RevisionMatch::NotOlderThan),
            (rv, Some("Exact")) => (Some(parse_rv(rv)?), RevisionMatch::Exact),
            (_, Some(m)) => {
                return Err(RegistryError::BadRequest(format!(
                    "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        };
        if params.continue_token.is_some() && !rv.is_empty() {
            return Err(RegistryError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        Ok(storage::ListOptions {
            revision,
            revision_match,
            limit: 0,
            continue_token: params.continue_token.clone(),
        })
    }

    /// Reads one page of `prefix` from storage, with upstream's errors for stale revisions
    /// and continue tokens.
    async fn read_page(
        &self,
        prefix: &str,
        opts: storage::ListOptions,
        params: &ListParams,
    ) -> Result<storage::ListResult> {
        self.storage.list(prefix, opts).await.map_err(|e| match e.code {
            ErrorCode::Compacted if params.continue_token.is_none() => RegistryError::Expired(format!(
                "too old resource version: {} ({})",
                params.resource_version.as_deref().unwrap_or(""),
                e.revision
            )),
            ErrorCode::Compacted => RegistryError::Expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
            ),
            ErrorCode::InvalidArgument if params.continue_token.is_some() => {
                RegistryError::BadRequest(format!("continue key is not valid: {}", e.message))
            }
            _ => self.storage_err(e, ""),
        })
    }

    /// Lists as [`Store::list`] does, with the items as one JSON array spliced from the stored
    /// bytes; `None` when that cannot give the same items: selectors must see decoded objects,
    /// and a kind that converts on read must convert each object.
    pub async fn list_spliced(
        &self,
        ns: Option<&str>,
        params: &ListParams,
    ) -> Result<Option<SplicedPage>> {
        if !params.labels.is_empty()
            || !params.fields.is_empty()
            || self.strategy.storage_conversion().is_some()
        {
            return Ok(None);
        }
        let mut opts = self.storage_list_options(params)?;
        opts.limit = params.limit.max(0);
        let page = self.read_page(&self.prefix(ns), opts, params).await?;
        let omit_type_meta = self.strategy.typed_list_items();
        let mut items = Vec::with_capacity(page.items.iter().map(|kv| kv.value.len() + 32).sum());
        items.push(b'[');
        for (i, kv) in page.items.iter().enumerate() {
            if i > 0 {
                items.push(b',');
            }
            if !spliced_list::append_item(&mut items, &kv.value, kv.mod_revision, omit_type_meta) {
                let mut obj = self.decode_kv(kv)?;
                spliced_list::to_list_item(&mut obj, omit_type_meta);
                serde_json::to_writer(&mut items, &obj).expect("JSON values serialize");
            }
        }
        items.push(b']');
        let remaining = page.continue_token.as_ref().and(page.remaining);
        Ok(Some(SplicedPage {
            items,
            resource_version: page.revision.to_string(),
            continue_token: page.continue_token,
            remaining,
        }))
    }

    /// Lists objects in `ns` (all namespaces when `None`) with selectors and pagination.
    pub async fn list(&self, ns: Option<&str>, params: &ListParams) -> Result<ListPage> {
        self.check_field_selector(&params.fields)?;
        // A metadata.name=… selector pins one key; list the namespace and filter like upstream.
        let prefix = self.prefix(ns);
        let mut opts = self.storage_list_options(params)?;
        let filtering = !params.labels.is_empty() || !params.fields.is_empty();
        let limit = params.limit.max(0);
        let mut items = Vec::new();
        loop {
            opts.limit = if limit > 0 {
                (limit - items.len() as i64).max(1)
            } else {
                0
            };
            let page = self.read_page(&prefix, opts.clone(), params).await?;
            for kv in &page.items {
                let obj = self.decode_kv(kv)?;
                if self.matches(&obj, params) {
                    items.push(obj);
                }
            }
            let full = limit > 0 && items.len() as i64 >= limit;
            match page.continue_token {
                Some(token) if full || limit == 0 => {
                    let remaining = if filtering { None } else { page.remaining };
                    return Ok(ListPage {
                        items,
                        resource_version: page.revision.to_string(),
                        continue_token: Some(token),
                        remaining,
                    });
                }
                Some(token) => {
                    // Selectors filtered part of the page: keep reading at the same revision.
                    opts.continue_token = Some(token);
                    opts.revision = None;
                    opts.revision_match = RevisionMatch::Exact;
                }
                None => {
                    return Ok(ListPage {
                        items,
                        resource_version: page.revision.to_string(),
                        continue_token: None,
                        remaining: None,
                    });
                }
            }
        }
    }

    /// Refuses a body whose namespace is not the request's, as upstream's create handler does
    /// before admission (`EnsureObjectNamespaceMatchesRequestNamespace`).
    pub fn check_namespace(&self, ns: Option<&str>, body: &Value) -> Result<()> {
        let body_ns = meta_str(body, "namespace").filter(|s| !s.is_empty());
        match (self.info().namespaced, ns, body_ns) {
            (true, Some(req), Some(body_ns)) if req != body_ns => Err(RegistryError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Creates an object; `ns` is the request's namespace.
    pub async fn create(
        &self,
        ns: Option<&str>,
        body: Value,
        opts: WriteOptions,
    ) -> Result<Outcome<Value>> {
        let info = self.info().clone();
        self.check_namespace(ns, &body)?;
        let (mut obj, warnings) = self.admit_body(body, &opts)?;
        {
            let m = meta_mut(&mut obj);
            match (info.namespaced, ns) {
                (true, Some(req)) => {
                    m.insert("namespace".into(), Value::String(req.into()));
                }
                (false, _) => {
                    m.remove("namespace");
                }
                _ => {}
            }
            for k in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(k);
            }
            m.insert("uid".into(), Value::String(new_uid()));
            m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
            if self.strategy.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if info.has_status()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        let generate = meta_str(&obj, "name").is_none() && meta_str(&obj, "generateName").is_some();
        let base = obj;
        for attempt in 0..=GENERATE_NAME_RETRIES {
            // The name comes first, so rules that derive from it (a Job's selector labels) see it;
            // a retry after a collision starts again from the request's object.
            let mut obj = base.clone();
            if generate {
                let prefix = meta_str(&obj, "generateName").unwrap_or("").to_string();
                meta_mut(&mut obj).insert(
                    "name".into(),
                    Value::String(format!("{prefix}{}", name_suffix())),
                );
            }
            self.strategy.prepare_for_create(&mut obj);
            self.strategy.default(&mut obj);
            self.record_update(None, &mut obj, UpdateTarget::Main, &opts);
            let name = meta_str(&obj, "name").unwrap_or("").to_string();
            self.allocate(&mut obj, None, opts.dry_run).await?;
            let mut errs = self.validate_meta(&obj);
            errs.extend(self.strategy.validate(&obj));
            if !errs.is_empty() {
                self.release(&obj, None, opts.dry_run).await;
                return Err(self.invalid(&name, errs));
            }
            if opts.dry_run {
                return Ok(Outcome {
                    value: obj,
                    warnings,
                });
            }
            match self
                .storage
                .create(&self.key(ns, &name), self.encode(&obj))
                .await
            {
                Ok(rev) => {
                    meta_mut(&mut obj)
                        .insert("resourceVersion".into(), Value::String(rev.to_string()));
                    return Ok(Outcome {
                        value: obj,
                        warnings,
                    });
                }
                Err(e) => {
                    self.release(&obj, None, opts.dry_run).await;
                    if e.code == ErrorCode::AlreadyExists
                        && generate
                        && attempt < GENERATE_NAME_RETRIES
                    {
                        continue;
                    }
                    return Err(self.storage_err(e, &name));
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Replaces an object (PUT), on the main resource or its status.
    pub async fn update(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        target: UpdateTarget,
        opts: WriteOptions,
    ) -> Result<Outcome<Value>> {
        let (mut obj, warnings) = self.admit_body(body, &opts)?;
        match meta_str(&obj, "name") {
            Some(n) if n != name => {
                return Err(RegistryError::BadRequest(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None => {
                meta_mut(&mut obj).insert("name".into(), Value::String(name.into()));
            }
            _ => {}
        }
        if let (true, Some(req)) = (self.info().namespaced, ns) {
            match meta_str(&obj, "namespace") {
                Some(n) if n != req => {
                    return Err(RegistryError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => {
                    meta_mut(&mut obj).insert("namespace".into(), Value::String(req.into()));
                }
            }
        }
        let precondition = match meta_str(&obj, "resourceVersion") {
            Some(rv) => Some(parse_rv(rv)?),
            None if target == UpdateTarget::Main && !self.strategy.allow_unconditional_update() => {
                return Err(self.invalid(
                    name,
                    vec![FieldError::invalid(
                        "metadata.resourceVersion",
                        "",
                        "must be specified for an update",
                    )],
                ));
            }
            None => None,
        };
        let kv = self.get_kv(ns, name).await?;
        if let Some(rv) = precondition
            && rv != kv.mod_revision
        {
            return Err(self.storage_err(StorageError::conflict("", rv, kv.mod_revision), name));
        }
        let old = self.decode_kv(&kv)?;
        let value = self
            .checked_update(ns, name, obj, &old, kv.mod_revision, target, &opts)
            .await?;
        Ok(Outcome { value, warnings })
    }

    /// Allocation, metadata rules, validation and the CAS write of one update attempt.
    #[allow(clippy::too_many_arguments)]
    async fn checked_update(
        &self,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        old: &Value,
        mod_revision: i64,
        target: UpdateTarget,
        opts: &WriteOptions,
    ) -> Result<Value> {
        if target == UpdateTarget::Main {
            self.allocate(&mut obj, Some(old), opts.dry_run).await?;
        }
        // An apply recorded managedFields on the object it hands in; a subresource write
        // otherwise keeps the stored metadata.
        let applied = match opts.writer.as_deref() {
            Some(w) if w.operation == Operation::Apply => {
                obj.pointer("/metadata/managedFields").cloned()
            }
            _ => None,
        };
        let result = match self.prepare_update(obj.clone(), old, target) {
            Ok(mut new) => {
                if let Some(mf) = applied {
                    meta_mut(&mut new).insert("managedFields".into(), mf);
                }
                self.record_update(Some(old), &mut new, target, opts);
                self.write_update(ns, name, new, old, mod_revision, opts.dry_run)
                    .await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(new) => self.release(old, Some(new), opts.dry_run).await,
            Err(_) => self.release(&obj, Some(old), opts.dry_run).await,
        }
        result
    }

    /// Read-modify-write with retries on conflict (patches, scale, controllers).
    ///
    /// `mutate` gets the current object and returns the desired one; it runs again after a
    /// conflict, as upstream's GuaranteedUpdate does for patches without a resourceVersion.
    pub async fn update_with<F>(
        &self,
        ns: Option<&str>,
        name: &str,
        target: UpdateTarget,
        opts: WriteOptions,
        mutate: F,
    ) -> Result<Outcome<Value>>
    where
        F: Fn(&Value) -> Result<Value>,
    {
        for _ in 0..UPDATE_RETRIES {
            let kv = self.get_kv(ns, name).await?;
            let old = self.decode_kv(&kv)?;
            let desired = mutate(&old)?;
            if let Some(rv) = meta_str(&desired, "resourceVersion")
                && parse_rv(rv)? != kv.mod_revision
            {
                return Err(self.storage_err(StorageError::conflict("", 0, kv.mod_revision), name));
            }
            let (mut obj, warnings) = self.admit_body(desired, &opts)?;
            {
                let m = meta_mut(&mut obj);
                m.insert("name".into(), Value::String(name.into()));
                if let (true, Some(ns)) = (self.info().namespaced, ns) {
                    m.insert("namespace".into(), Value::String(ns.into()));
                }
            }
            match self
                .checked_update(ns, name, obj, &old, kv.mod_revision, target, &opts)
                .await
            {
                Err(RegistryError::Conflict { .. }) => continue,
                other => return other.map(|value| Outcome { value, warnings }),
            }
        }
        Err(self.storage_err(StorageError::conflict("", 0, 0), name))
    }

    /// Records an Update by the request's writer (or the server) in the object's
    /// managedFields; applies recorded theirs already.
    fn record_update(
        &self,
        old: Option<&Value>,
        new: &mut Value,
        target: UpdateTarget,
        opts: &WriteOptions,
    ) {
        let server;
        let writer = match opts.writer.as_deref() {
            Some(w) if w.operation == Operation::Apply => return,
            Some(w) => w,
            None => {
                server = self.writer(
                    SERVER_MANAGER.into(),
                    Operation::Update,
                    target.subresource(),
                );
                &server
            }
        };
        let scope = target.scope(self.info().has_status());
        managed_fields::record_update(old, new, writer, scope, &now_rfc3339());
    }

    /// The writer of a write for managedFields: its manager, the kind's field types.
    pub fn writer(&self, manager: String, operation: Operation, subresource: &str) -> Arc<Writer> {
        Arc::new(Writer {
            manager,
            operation,
            api_version: self.info().api_version(),
            subresource: subresource.to_string(),
            types: self.field_types.clone(),
        })
    }

    /// Applies the metadata rules of an update and validates it.
    fn prepare_update(&self, mut new: Value, old: &Value, target: UpdateTarget) -> Result<Value> {
        let info = self.info().clone();
        let name = meta_str(old, "name").unwrap_or("").to_string();
        if let UpdateTarget::Subresource { owns: owned, .. } = target {
            // A subresource changes only the fields it owns; everything else stays as stored.
            let mut merged = old.clone();
            for ptr in owned {
                copy_pointer(&mut merged, &new, ptr);
            }
            new = merged;
        } else {
            if info.has_status() {
                if let (Some(o), Some(s)) = (new.as_object_mut(), old.get("status")) {
                    o.insert("status".into(), s.clone());
                } else if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
            self.strategy.prepare_for_update(&mut new, old);
        }
        {
            let old_meta = meta(old).clone();
            let m = meta_mut(&mut new);
            // Fields only the server sets are carried over from the stored object.
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(k) {
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
        }
        if self.strategy.tracks_generation() && spec_part(&new) != spec_part(old) {
            let generation = meta(old)
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        self.strategy.default(&mut new);
        let mut errs = self.validate_meta(&new);
        if meta(old).get("deletionTimestamp").is_some() {
            // A terminating object may lose finalizers but gain none.
            let old_f = finalizers(old);
            for f in finalizers(&new) {
                if !old_f.contains(&f) {
                    errs.push(FieldError::forbidden("metadata.finalizers", format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{f:?}}}")));
                }
            }
        }
        errs.extend(self.strategy.validate_update(&new, old));
        if !errs.is_empty() {
            return Err(self.invalid(&name, errs));
        }
        Ok(new)
    }

    /// Writes an update with CAS on `mod_revision`; a no-op update writes nothing, and an
    /// update that removes the last finalizer of a terminating object deletes it.
    async fn write_update(
        &self,
        ns: Option<&str>,
        name: &str,
        mut new: Value,
        old: &Value,
        mod_revision: i64,
        dry_run: bool,
    ) -> Result<Value> {
        meta_mut(&mut new).insert(
            "resourceVersion".into(),
            Value::String(mod_revision.to_string()),
        );
        if new == *old || dry_run {
            return Ok(new);
        }
        let key = self.key(ns, name);
        if meta(&new).get("deletionTimestamp").is_some()
            && finalizers(&new).is_empty()
            && !self.strategy.blocks_deletion(&new)
        {
            let kv = self
                .storage
                .delete(&key, Some(mod_revision))
                .await
                .map_err(|e| self.storage_err(e, name))?;
            // The last finalizer is gone: the object is deleted, so are its allocations.
            self.release(&new, None, false).await;
            meta_mut(&mut new).insert(
                "resourceVersion".into(),
                Value::String(kv.mod_revision.to_string()),
            );
            return Ok(new);
        }
        let kv = self
            .storage
            .guaranteed_update(&key, Some(mod_revision), self.encode(&new))
            .await
            .map_err(|e| self.storage_err(e, name))?;
        meta_mut(&mut new).insert(
            "resourceVersion".into(),
            Value::String(kv.mod_revision.to_string()),
        );
        Ok(new)
    }

    /// Replaces an object's status through its status subresource, as a controller writes it.
    pub async fn replace_status(
        &self,
        ns: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Outcome<Value>> {
        self.update_with(
            ns,
            name,
            UpdateTarget::STATUS,
            WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                next["status"] = status.clone();
                Ok(next)
            },
        )
        .await
    }

    /// Deletes an object, or marks it for deletion while finalizers remain.
    pub async fn delete(
        &self,
        ns: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Deleted> {
        let key = self.key(ns, name);
        for _ in 0..UPDATE_RETRIES {
            let kv = self
                .storage
                .get(&key)
                .await
                .map_err(|e| self.storage_err(e, name))?
                .ok_or_else(|| self.not_found(name))?;
            let obj = self.decode_kv(&kv)?;
            if let Some(uid) = &params.precondition_uid {
                let actual = meta_str(&obj, "uid").unwrap_or("");
                if uid != actual {
                    return Err(RegistryError::Conflict {
                        resource: self.info().group_resource(),
                        name: name.into(),
                        message: format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                        ),
                    });
                }
            }
            if let Some(rv) = &params.precondition_resource_version
                && parse_rv(rv)? != kv.mod_revision
            {
                return Err(RegistryError::Conflict {
                    resource: self.info().group_resource(),
                    name: name.into(),
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                });
            }
            let mut fins = finalizers(&obj);
            match params.propagation_policy.as_deref() {
                Some("Orphan") if !fins.iter().any(|f| f == FINALIZER_ORPHAN) => {
                    fins.push(FINALIZER_ORPHAN.into())
                }
                Some("Foreground") if !fins.iter().any(|f| f == FINALIZER_FOREGROUND) => {
                    fins.push(FINALIZER_FOREGROUND.into())
                }
                _ => {}
            }
            let grace = self
                .strategy
                .deletion_grace_period(&obj, params.grace_period_seconds);
            if fins.is_empty() && !self.strategy.blocks_deletion(&obj) && grace.is_none() {
                if params.dry_run {
                    return Ok(Deleted::Gone(obj));
                }
                match self.storage.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        self.release(&obj, None, false).await;
                        return Ok(Deleted::Gone(obj));
                    }
                    Err(e) if e.code == ErrorCode::Conflict => continue,
                    Err(e) => return Err(self.storage_err(e, name)),
                }
            }
            let mut pending = obj.clone();
            {
                let m = meta_mut(&mut pending);
                if fins.is_empty() {
                    m.remove("finalizers");
                } else {
                    m.insert("finalizers".into(), json!(fins));
                }
                let current = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
                let wanted = grace.unwrap_or(0);
                let first = !m.contains_key("deletionTimestamp");
                if first {
                    m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(wanted));
                } else if current.is_some_and(|c| wanted < c) {
                    // A second delete may shorten the grace period, never lengthen it.
                    m.insert("deletionGracePeriodSeconds".into(), json!(wanted));
                }
                m.remove("resourceVersion");
                if first {
                    self.strategy.prepare_for_delete(&mut pending);
                }
            }
            if params.dry_run || pending == obj {
                return Ok(Deleted::Pending(obj));
            }
            match self
                .storage
                .guaranteed_update(&key, Some(kv.mod_revision), self.encode(&pending))
                .await
            {
                Ok(kv) => {
                    meta_mut(&mut pending).insert(
                        "resourceVersion".into(),
                        Value::String(kv.mod_revision.to_string()),
                    );
                    return Ok(Deleted::Pending(pending));
                }
                Err(e) if e.code == ErrorCode::Conflict => continue,
                Err(e) => return Err(self.storage_err(e, name)),
            }
        }
        Err(self.storage_err(StorageError::conflict("", 0, 0), name))
    }

    /// Deletes every object a list selects; returns what was deleted or marked.
    pub async fn delete_collection(
        &self,
        ns: Option<&str>,
        list: &ListParams,
        params: &DeleteParams,
    ) -> Result<Vec<Value>> {
        let page = self
            .list(
                ns,
                &ListParams {
                    limit: 0,
                    continue_token: None,
                    ..list.clone()
                },
            )
            .await?;
        // Several deletes in flight let the storage commit them together (one fsync for a
        // batch on the embedded store), as upstream's --delete-collection-workers does.
        let mut deletes = futures::stream::iter(page.items)
            .map(|obj| async move {
                let name = meta_str(&obj, "name").unwrap_or("").to_string();
                let obj_ns = meta_str(&obj, "namespace").map(str::to_string);
                self.delete(obj_ns.as_deref().or(ns), &name, params).await
            })
            .buffered(DELETE_COLLECTION_WORKERS);
        let mut out = Vec::new();
        while let Some(result) = deletes.next().await {
            match result {
                Ok(Deleted::Gone(o) | Deleted::Pending(o)) => out.push(o),
                // Deleted by someone else meanwhile: that is what we wanted.
                Err(RegistryError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn bookmark(&self, revision: i64, initial_events_end: bool) -> Event {
        let info = self.info();
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        Event::new(
            "BOOKMARK",
            json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": metadata}),
        )
    }

    /// Watches objects in `ns`: optional initial ADDED events, then changes in revision order.
    pub async fn watch(
        self: &Arc<Self>,
        ns: Option<&str>,
        params: WatchParams,
    ) -> Result<BoxStream<'static, Event>> {
        self.check_field_selector(&params.list.fields)?;
        let rv = params.list.resource_version.clone().unwrap_or_default();
        let send_initial = params
            .send_initial_events
            .unwrap_or(rv.is_empty() || rv == "0");
        if params.send_initial_events == Some(true)
            && params.list.resource_version_match.as_deref() != Some("NotOlderThan")
        {
            return Err(RegistryError::BadRequest(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            ));
        }
        let mut initial = Vec::new();
        let start = if send_initial {
            let list_params = ListParams {
                limit: 0,
                continue_token: None,
                resource_version_match: None,
                ..params.list.clone()
            };
            let page = self.list(ns, &list_params).await?;
            initial = page
                .items
                .into_iter()
                .map(|object| Event::new("ADDED", object))
                .collect();
            page.resource_version.parse::<i64>().unwrap_or(0)
        } else {
            parse_rv(&rv)?
        };
        if params.send_initial_events == Some(true) && params.bookmarks {
            initial.push(self.bookmark(start, true));
        }
        let from = if start == 0 {
            self.storage
                .current_revision()
                .await
                .map_err(|e| self.storage_err(e, ""))?
        } else {
            start
        };
        let events = self.storage.watch(&self.prefix(ns), from).await;
        let events = match events {
            Ok(events) => events,
            // Upstream answers a watch from a compacted revision with one ERROR event, not an HTTP error.
            Err(e) if e.code == ErrorCode::Compacted => {
                return Ok(futures::stream::iter([expired_event(from, e.revision)]).boxed());
            }
            Err(e) => return Err(self.storage_err(e, "")),
        };
        let store = self.clone();
        let list = params.list.clone();
        // Translated synchronously: no per-event clones of the store or the selectors.
        let changes =
            events.filter_map(move |ev| std::future::ready(store.translate(ev, &list, from)));
        let changes: BoxStream<'static, Event> = if params.bookmarks {
            with_bookmarks(changes, self.clone(), from).boxed()
        } else {
            changes.boxed()
        };
        Ok(futures::stream::iter(initial).chain(changes).boxed())
    }

    /// One storage event as the client should see it after selectors, or an ERROR for expiry.
    fn translate(
        &self,
        ev: storage::Result<storage::WatchEvent>,
        list: &ListParams,
        from: i64,
    ) -> Option<Event> {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) if e.code == ErrorCode::Compacted => {
                return Some(expired_event(from, e.revision));
            }
            Err(e) => {
                tracing::debug!(error = %e, "watch ended");
                return None;
            }
        };
        let change = self.decoded_change(&ev)?;
        let (now, before) = if list.labels.is_empty() && list.fields.is_empty() {
            // Without selectors everything matches: the previous value need not be decoded.
            (true, ev.prev_value.is_some())
        } else {
            let prev = change.prev.get_or_init(|| {
                ev.prev_value
                    .as_ref()
                    .and_then(|p| self.decode_stored(p, ev.revision).ok())
            });
            (
                self.matches(&change.object, list),
                prev.as_ref().is_some_and(|p| self.matches(p, list)),
            )
        };
        let kind = match ev.kind {
            EventKind::Added if now => "ADDED",
            EventKind::Modified if now && before => "MODIFIED",
            EventKind::Modified if now => "ADDED",
            EventKind::Modified if before => "DELETED",
            EventKind::Deleted if now || before => "DELETED",
            _ => return None,
        };
        Some(Event {
            kind,
            object: change.object.clone(),
            frames: Some(change.frames.clone()),
        })
    }

    /// `ev` decoded, shared with the other watchers of this store that see the same change.
    fn decoded_change(&self, ev: &storage::WatchEvent) -> Option<Arc<DecodedChange>> {
        let lock = || self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        // Newest first: a watcher is usually at or near the latest change.
        let find = |recent: &VecDeque<Arc<DecodedChange>>| {
            recent
                .iter()
                .rev()
                .find(|c| c.revision == ev.revision && c.key == ev.key)
                .cloned()
        };
        if let Some(change) = find(&lock()) {
            return Some(change);
        }
        // Decoded outside the lock: other watchers may be reading other changes meanwhile.
        let object = self.decode_stored(&ev.value, ev.revision).ok()?;
        let mut recent = lock();
        // Keep the first copy if another watcher decoded it meanwhile, so frames are shared too.
        if let Some(change) = find(&recent) {
            return Some(change);
        }
        let change = Arc::new(DecodedChange {
            key: ev.key.clone(),
            revision: ev.revision,
            object: Arc::new(object),
            prev: OnceLock::new(),
            frames: Arc::default(),
        });
        recent.push_back(change.clone());
        if recent.len() > DECODED_CHANGES {
            recent.pop_front();
        }
        Some(change)
    }
}

/// The ERROR event of a watch whose start revision `from` was compacted (at `compacted`).
fn expired_event(from: i64, compacted: i64) -> Event {
    Event::new(
        "ERROR",
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({compacted})"), "reason": "Expired", "code": 410
        }),
    )
}

/// Interleaves a BOOKMARK at the last delivered revision every [`BOOKMARK_INTERVAL`].
fn with_bookmarks(
    changes: impl Stream<Item = Event> + Send + 'static,
    store: Arc<Store>,
    start: i64,
) -> impl Stream<Item = Event> + Send {
    let ticker = tokio_stream_interval(BOOKMARK_INTERVAL);
    futures::stream::unfold(
        (changes.boxed(), ticker, start),
        move |(mut changes, mut ticker, last)| {
            let store = store.clone();
            async move {
                tokio::select! {
                    ev = changes.next() => {
                        let ev = ev?;
                        let rv = ev.object.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(last);
                        Some((ev, (changes, ticker, rv)))
                    }
                    _ = ticker.tick() => Some((store.bookmark(last, false), (changes, ticker, last))),
                }
            }
        },
    )
}

fn tokio_stream_interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

impl ResourceInfo {
    /// Whether metadata.generation counts spec changes (kinds with a spec/status split).
    pub fn tracks_generation(&self) -> bool {
        self.has_status()
            && !matches!(
                &*self.kind,
                "Namespace"
                    | "Node"
                    | "PersistentVolume"
                    | "PersistentVolumeClaim"
                    | "Pod"
                    | "Service"
                    | "ResourceQuota"
                    | "CertificateSigningRequest"
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_version_4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
    }

    #[test]
    fn generated_suffixes_use_upstreams_alphabet() {
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}

#[cfg(test)]
mod watch_sharing_tests {
    use super::*;
    use crate::registry::selectors::LabelSelector;
    use crate::storage::embedded::{EmbeddedOptions, EmbeddedStorage};

    fn configmap(label: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "labels": {"a": label}}, "data": {"k": label}})
    }

    /// Watchers share each change's decoded object, and the event type stays per watcher:
    /// a change that leaves a selector is DELETED for that watcher and MODIFIED for others.
    #[tokio::test]
    async fn watchers_share_decoded_changes_but_keep_their_own_event_types() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            EmbeddedStorage::open(dir.path().join("db"), EmbeddedOptions::default()).unwrap();
        let strategy = crate::registry::kinds::builtin()
            .into_iter()
            .find(|s| &*s.info().kind == "ConfigMap" && s.info().group.is_empty())
            .unwrap();
        let store = Arc::new(Store::new(
            strategy,
            Arc::new(storage),
            KeyBuilder::new("/registry/"),
            TypeRef::untyped(),
        ));
        let from = store.storage.current_revision().await.unwrap().to_string();
        let watch = |labels: &str| {
            let params = WatchParams {
                list: ListParams {
                    labels: LabelSelector::parse(labels).unwrap(),
                    resource_version: Some(from.clone()),
                    ..ListParams::default()
                },
                ..WatchParams::default()
            };
            let store = store.clone();
            async move { store.watch(Some("default"), params).await.unwrap() }
        };
        let (mut all, mut selected) = (watch("").await, watch("a=1").await);
        let opts = WriteOptions::default;
        store
            .create(Some("default"), configmap("1"), opts())
            .await
            .unwrap();
        store
            .update(
                Some("default"),
                "cm",
                configmap("2"),
                UpdateTarget::Main,
                opts(),
            )
            .await
            .unwrap();
        let (a1, a2) = (all.next().await.unwrap(), all.next().await.unwrap());
        let (s1, s2) = (
            selected.next().await.unwrap(),
            selected.next().await.unwrap(),
        );
        assert_eq!((a1.kind, a2.kind), ("ADDED", "MODIFIED"));
        assert_eq!((s1.kind, s2.kind), ("ADDED", "DELETED"));
        assert!(Arc::ptr_eq(&a1.object, &s1.object));
        assert!(Arc::ptr_eq(&a2.object, &s2.object));
        assert_eq!(s2.object["metadata"]["labels"]["a"], "2");
    }
}
