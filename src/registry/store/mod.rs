//! The generic store (upstream's `registry/generic/registry.Store`): metadata rules, optimistic
//! concurrency, finalizers, dry-run, selectors, pagination and watch, for any [`Strategy`].
//! One file per verb; [`metadata`] holds the rules every write applies to `metadata`.

mod body_fields;
mod create;
mod delete;
mod get;
mod list;
mod metadata;
mod update;
mod watch;

pub use body_fields::BodyFields;
pub use delete::{DeleteParams, Deleted, FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
pub use list::{ListPage, ListParams, SplicedPage};
pub use metadata::{labels_of, meta_str, name_suffix, new_uid, now_micro, now_rfc3339};
pub use update::UpdateTarget;
pub use watch::{Event, FrameCache, INITIAL_EVENTS_END, WatchParams};

use super::admit::Admit;
use super::errors::{ErrorList, RegistryError};
use super::managed_fields::{TypeRef, Writer};
use super::strategy::{ResourceInfo, Strategy};
use super::validation;
use crate::protobuf;
use crate::storage::{KeyBuilder, KeyValue, Storage, StorageError};
use bytes::Bytes;
use metadata::{meta, meta_mut, set_resource_version};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watch::DecodedChange;

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
#[derive(Clone, Default)]
pub struct WriteOptions<'a> {
    /// `?dryRun=All`: do everything but write.
    pub dry_run: bool,
    /// `?fieldValidation=`.
    pub field_validation: FieldValidation,
    /// Who writes, for managedFields; `None` for the server's own writes, which record an
    /// Update by [`SERVER_MANAGER`] as upstream's loopback client does.
    pub writer: Option<Arc<Writer>>,
    /// The admission the request passes; `None` for the server's own writes.
    pub admission: Option<&'a dyn Admit>,
    /// Written as upstream's REST storages that write straight to storage (pod binding): no
    /// field manager is recorded and the kind's update validation does not run; the metadata
    /// rules still do.
    pub direct: bool,
    /// The request body's fields, for strict field validation's duplicate fields and order;
    /// `None` when the body was not JSON or validation is off.
    pub body_fields: Option<Arc<BodyFields>>,
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
    /// How long an object lives after its last create or update, kept by the backend.
    ttl: Option<Duration>,
    /// Recently decoded changes, newest last (see [`watch::DECODED_CHANGES`]).
    decoded: Mutex<VecDeque<Arc<DecodedChange>>>,
    /// Whether objects with a protobuf message are written as protobuf rather than JSON.
    protobuf: bool,
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
            ttl: None,
            decoded: Mutex::default(),
            protobuf: false,
        }
    }

    /// The same store writing objects as kube-apiserver does with its default
    /// `--storage-media-type`: protobuf for kinds that have a message, JSON for the rest
    /// (custom resources). Reads take either encoding whatever this says.
    pub fn with_protobuf(mut self) -> Self {
        self.protobuf = true;
        self
    }

    /// The same store with allocation hooks.
    pub fn with_hooks(mut self, hooks: Arc<dyn StoreHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// The same store with its objects expiring `ttl` after their last create or update, as
    /// upstream's `TTLFunc` (Events' `--event-ttl`); the backend must
    /// [expire keys](crate::storage::Storage::expires_keys).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Writes a new object's key, expiring when the store has a TTL.
    async fn create_key(&self, key: &str, value: Bytes) -> crate::storage::Result<i64> {
        match self.ttl {
            Some(ttl) => self.storage.create_expiring(key, value, ttl).await,
            None => self.storage.create(key, value).await,
        }
    }

    /// Replaces an object's key, its TTL starting again when the store has one.
    async fn update_key(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
    ) -> crate::storage::Result<KeyValue> {
        match self.ttl {
            Some(ttl) => {
                self.storage
                    .update_expiring(key, expected_mod_revision, value, ttl)
                    .await
            }
            None => {
                self.storage
                    .guaranteed_update(key, expected_mod_revision, value)
                    .await
            }
        }
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
        let mut obj = self.parse(value)?;
        if let Some(conversion) = self.strategy.storage_conversion() {
            conversion.decode(&mut obj)?;
        }
        set_resource_version(&mut obj, revision);
        Ok(obj)
    }

    /// Decodes the stored values of a page, converted together.
    fn decode_kvs(&self, kvs: &[KeyValue]) -> Result<Vec<Value>> {
        let mut objs = kvs
            .iter()
            .map(|kv| self.parse(&kv.value))
            .collect::<Result<Vec<_>>>()?;
        if let Some(conversion) = self.strategy.storage_conversion() {
            conversion.decode_all(&mut objs)?;
        }
        for (obj, kv) in objs.iter_mut().zip(kvs) {
            set_resource_version(obj, kv.mod_revision);
        }
        Ok(objs)
    }

    /// A stored object as [`parse_stored`] reads it; a protobuf one of a kind that
    /// [defaults what it reads](Strategy::defaults_stored) is defaulted.
    fn parse(&self, value: &[u8]) -> Result<Value> {
        let mut obj = parse_stored(value)?;
        if self.strategy.defaults_stored() && protobuf::is_protobuf(value) {
            // Only what defaulting adds: its typed round trip would also drop the `null`s
            // (zero times) that Go writes and protobuf decoding keeps.
            let mut defaulted = obj.clone();
            self.strategy.default(&mut defaulted);
            add_missing(&mut obj, defaulted);
        }
        Ok(obj)
    }

    fn decode_kv(&self, kv: &KeyValue) -> Result<Value> {
        self.decode_stored(&kv.value, kv.mod_revision)
    }

    fn encode(&self, obj: &Value) -> Result<Bytes> {
        let mut o = obj.clone();
        if let Some(conversion) = self.strategy.storage_conversion() {
            conversion.encode(&mut o)?;
        }
        // The revision is the storage's, never part of the stored bytes.
        meta_mut(&mut o).remove("resourceVersion");
        let api_version = o.get("apiVersion").and_then(Value::as_str);
        let kind = o.get("kind").and_then(Value::as_str);
        if self.protobuf
            && let (Some(api_version), Some(kind)) = (api_version, kind)
            && protobuf::supports(api_version, kind)
        {
            // Exact-size allocations: the watch cache holds these bytes for the object's life.
            return protobuf::encode(&o)
                .map(|v| Bytes::from(v.into_boxed_slice()))
                .map_err(|e| RegistryError::Internal(format!("encoding {kind} as protobuf: {e}")));
        }
        Ok(Bytes::from(
            serde_json::to_vec(&o)
                .expect("JSON values serialize")
                .into_boxed_slice(),
        ))
    }

    /// Checks a body's kind and apiVersion, decodes it against the kind's schema and applies the
    /// unknown-field policy; returns the normalized object and warnings.
    fn decode_body(&self, body: Value, opts: &WriteOptions) -> Result<(Value, Vec<String>)> {
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
        let typed = info.is_builtin();
        let strict_errors = match &opts.body_fields {
            Some(fields) => fields.strict_errors(&decoded.unknown_fields, typed),
            None => BodyFields::default().strict_errors(&decoded.unknown_fields, typed),
        };
        let mut warnings = Vec::new();
        if !strict_errors.is_empty() {
            match opts.field_validation {
                FieldValidation::Ignore => {}
                FieldValidation::Warn => warnings = strict_errors,
                FieldValidation::Strict => {
                    return Err(RegistryError::BadRequest(format!(
                        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                        strict_errors.join(", "),
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
}

/// Adds to `to` the fields of `from` it lacks, at every depth (lists of equal length item by item).
fn add_missing(to: &mut Value, from: Value) {
    match (to, from) {
        (Value::Object(to), Value::Object(from)) => {
            for (key, value) in from {
                match to.get_mut(&key) {
                    Some(existing) => add_missing(existing, value),
                    None => {
                        to.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(to), Value::Array(from)) if to.len() == from.len() => {
            for (to, from) in to.iter_mut().zip(from) {
                add_missing(to, from);
            }
        }
        _ => {}
    }
}

/// A stored object, in either encoding: JSON, or protobuf behind its `k8s\0` magic.
pub fn parse_stored(value: &[u8]) -> Result<Value> {
    if protobuf::is_protobuf(value) {
        return protobuf::decode(value)
            .map_err(|e| RegistryError::Internal(format!("stored object is not readable: {e}")));
    }
    if let Some(rest) = value.strip_prefix(crate::storage::encryption::ENCRYPTED) {
        // Written by a server with --encryption-provider-config; this one cannot read it.
        let provider: String = rest
            .split(|b| *b == b':')
            .take(3)
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(":");
        return Err(RegistryError::Internal(format!(
            "stored object is encrypted (k8s:enc:{provider}) and no provider of --encryption-provider-config decrypts it"
        )));
    }
    serde_json::from_slice(value)
        .map_err(|e| RegistryError::Internal(format!("stored object is not JSON: {e}")))
}
