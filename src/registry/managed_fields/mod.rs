//! `metadata.managedFields` and server-side apply, as upstream's fieldmanager
//! (k8s.io/apimachinery/pkg/util/managedfields/internal) over structured-merge-diff.
//!
//! It lives in the registry, not in endpoints, because ownership is computed from the object
//! the store is about to write (after defaults and the strategy's rules) against the exact
//! revision it replaces, inside the store's retry loop; endpoints only say who writes and
//! hand in the kind's field types ([`TypeRef`]).

pub mod fieldpath;
pub mod typed;

use fieldpath::{FieldSet, Path, PathElement, field};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;
pub use typed::{Comparison, Field, ListType, Node, Schema, TypeId, TypeRef, TypedError};

/// The manager recorded for fields an object held before its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The most Update entries an object keeps (upstream `DefaultMaxUpdateManagers`).
const MAX_UPDATE_MANAGERS: usize = 10;
/// The entry the oldest Update entries are merged into beyond that.
const ANCIENT_CHANGES: &str = "ancient-changes";
/// The annotation `kubectl apply` (client-side) keeps.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A managedFields entry's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply: the entry owns exactly the applied configuration.
    Apply,
    /// Any other write: the entry owns what the manager's writes changed.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes, and the field types of what is written.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The field manager: `?fieldManager=`, else the User-Agent's product.
    pub manager: String,
    /// Apply (the caller merged and recorded already) or Update (the store records).
    pub operation: Operation,
    /// `group/version` of the request.
    pub api_version: String,
    /// The subresource written (`status`), empty for the main resource.
    pub subresource: String,
    /// The kind's field types.
    pub types: TypeRef,
}

/// Which fields a write may change (upstream's reset fields): nobody gains or loses
/// ownership of the others.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// The main resource; with a status subresource, status is not its to change.
    Main {
        /// Whether the kind has a status subresource.
        has_status: bool,
    },
    /// A subresource that writes only these JSON pointers (`/status`).
    Only(&'static [&'static str]),
}

fn pointer_path(ptr: &str) -> Vec<PathElement> {
    ptr.split('/')
        .filter(|s| !s.is_empty())
        .map(field)
        .collect()
}

impl Scope {
    fn filter(&self, set: &mut FieldSet) {
        match self {
            Scope::Main { has_status: true } => set.remove_subtree(&[field("status")]),
            Scope::Main { has_status: false } => {}
            Scope::Only(ptrs) => {
                let paths: Vec<Vec<PathElement>> = ptrs.iter().map(|p| pointer_path(p)).collect();
                let refs: Vec<&[PathElement]> = paths.iter().map(Vec::as_slice).collect();
                set.retain_subtrees(&refs);
            }
        }
    }

    fn filter_comparison(&self, c: &mut Comparison) {
        self.filter(&mut c.added);
        self.filter(&mut c.modified);
        self.filter(&mut c.removed);
    }
}

/// Fields the server owns, never recorded (upstream `DefaultExcludedFields`).
fn stripped() -> &'static FieldSet {
    static SET: OnceLock<FieldSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = FieldSet::default();
        for p in [&["apiVersion"][..], &["kind"], &["metadata"]] {
            set.insert(&p.iter().map(|f| field(f)).collect::<Vec<_>>());
        }
        for f in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            set.insert(&[field("metadata"), field(f)]);
        }
        set
    })
}

/// One decoded managedFields entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: Operation,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: FieldSet,
}

impl Entry {
    /// Upstream's manager identifier: appliers are one entry whatever their apiVersion.
    fn same_manager(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        // Go's omitempty: a request with neither fieldManager nor User-Agent names no manager.
        if !self.manager.is_empty() {
            m.insert("manager".into(), json!(self.manager));
        }
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

/// Why managedFields could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a list of objects.
    #[error("managedFields must be a list of entries")]
    NotAList,
    /// An entry with a fieldsType other than FieldsV1.
    #[error("cannot decode managed fields of type {0:?}")]
    FieldsType(String),
    /// An operation other than Apply or Update.
    #[error("unknown managed fields operation {0:?}")]
    Operation(String),
    /// A malformed fieldsV1.
    #[error(transparent)]
    Fields(#[from] fieldpath::DecodeError),
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?
        .get("managedFields")
        .filter(|v| !v.is_null())
}

fn decode(value: Option<&Value>) -> Result<Vec<Entry>, DecodeError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value.as_array().ok_or(DecodeError::NotAList)?;
    let mut entries: Vec<Entry> = Vec::with_capacity(list.len());
    for item in list {
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let fields_type = s("fieldsType");
        if fields_type != "FieldsV1" {
            return Err(DecodeError::FieldsType(fields_type));
        }
        let operation = match s("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(DecodeError::Operation(other.to_string())),
        };
        let set = match item.get("fieldsV1") {
            Some(v) => FieldSet::from_fields_v1(v)?,
            None => FieldSet::default(),
        };
        let entry = Entry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: item.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            set,
        };
        // A later entry with the same identifier replaces an earlier one, as upstream's map.
        entries.retain(|e| {
            !e.same_manager(
                &entry.manager,
                entry.operation,
                &entry.api_version,
                &entry.subresource,
            )
        });
        entries.push(entry);
    }
    Ok(entries)
}

/// Writes `entries` into the object, sorted as upstream: Apply first, then by time, manager,
/// apiVersion and subresource; no entries, no field.
fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
        return;
    }
    entries.sort_by(|a, b| {
        (
            a.operation,
            a.time.as_deref().unwrap_or(""),
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                b.time.as_deref().unwrap_or(""),
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    meta.insert(
        "managedFields".into(),
        Value::Array(entries.iter().map(Entry::to_json).collect()),
    );
}

fn take_managed_fields(obj: &mut Value) -> Option<Value> {
    obj.get_mut("metadata")?
        .as_object_mut()?
        .remove("managedFields")
}

/// `[]` or `[{}]`: the client asks to clear managedFields (upstream `isResetManagedFields`).
fn is_reset(value: Option<&Value>) -> bool {
    match value.and_then(Value::as_array) {
        Some(list) if list.is_empty() => true,
        Some(list) => list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty),
        None => false,
    }
}

/// Records in `new`'s managedFields an Update by `writer` of `old` (`None`: a create).
///
/// As upstream: managedFields the client sent replace the stored ones (on the main resource;
/// `[]` clears them), the writer owns what it changed, others lose what it changed or removed,
/// and an object without managedFields is not tracked until its first apply.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    writer: &Writer,
    scope: Scope,
    now: &str,
) {
    let sent = take_managed_fields(new);
    let stored = || decode(old.and_then(managed_fields_of)).unwrap_or_default();
    let mut entries = if !writer.subresource.is_empty() {
        stored()
    } else if is_reset(sent.as_ref()) {
        Vec::new()
    } else {
        match decode(sent.as_ref()) {
            Ok(e) if !e.is_empty() => e,
            _ => stored(),
        }
    };
    if entries.is_empty() && old.is_some() {
        return;
    }
    let mut cmp = typed::compare(writer.types.root(), old, Some(new));
    scope.filter_comparison(&mut cmp);
    track(&mut entries, cmp, writer, Operation::Update, now);
    cap_update_managers(&mut entries);
    encode(new, entries);
}

/// Merges the oldest Update entries, per apiVersion, into one `ancient-changes` entry until
/// at most [`MAX_UPDATE_MANAGERS`] remain (upstream `capManagersManager`), so that objects
/// many clients touch do not grow without bound.
fn cap_update_managers(entries: &mut Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    let is_update = |e: &Entry| e.operation == Operation::Update;
    let mut remaining = entries.iter().filter(|e| is_update(e)).count();
    if remaining <= MAX_UPDATE_MANAGERS {
        return;
    }
    let mut oldest: Vec<usize> = (0..entries.len())
        .filter(|&i| is_update(&entries[i]))
        .collect();
    oldest.sort_by(|&a, &b| {
        let key = |e: &Entry| (e.time.clone().unwrap_or_default(), e.manager.clone());
        key(&entries[a]).cmp(&key(&entries[b]))
    });
    let mut buckets: HashMap<String, usize> = HashMap::new();
    let mut merged = vec![false; entries.len()];
    for i in oldest {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        match buckets.get(&version) {
            Some(&b) => {
                let set = std::mem::take(&mut entries[i].set);
                let time = entries[i].time.clone();
                let bucket = &mut entries[b];
                bucket.manager = ANCIENT_CHANGES.into();
                bucket.subresource.clear();
                bucket.set.union_with(&set);
                // The merged update is the more recent one.
                bucket.time = time;
                merged[i] = true;
                remaining -= 1;
            }
            None => {
                buckets.insert(version, i);
            }
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        !merged[i - 1]
    });
}

/// Moves ownership of what `cmp` changed to `writer` (an Update), taking it from the others.
fn track(
    entries: &mut Vec<Entry>,
    cmp: Comparison,
    writer: &Writer,
    operation: Operation,
    now: &str,
) {
    let Comparison {
        mut added,
        modified,
        removed,
    } = cmp;
    added.union_with(&modified);
    for e in entries.iter_mut() {
        e.set.subtract(&added);
        e.set.subtract(&removed);
    }
    added.subtract(stripped());
    if added.is_empty() {
        return;
    }
    let slot = entries.iter_mut().find(|e| {
        e.same_manager(
            &writer.manager,
            operation,
            &writer.api_version,
            &writer.subresource,
        )
    });
    match slot {
        Some(e) => {
            e.set.union_with(&added);
            e.time = Some(now.to_string());
        }
        None => entries.push(Entry {
            manager: writer.manager.clone(),
            operation,
            api_version: writer.api_version.clone(),
            time: Some(now.to_string()),
            subresource: writer.subresource.clone(),
            set: added,
        }),
    }
}

/// One field another manager owns with a different value than the applied one.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The manager, as upstream prints it: `"m" using apps/v1`.
    pub manager: String,
    /// The field, e.g. `.spec.replicas`.
    pub field: String,
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is not an object of the request's kind (400).
    #[error("{0}")]
    BadRequest(String),
    /// The configuration does not fit the kind's field types (500, as upstream).
    #[error("failed to create typed patch object ({object}): {source}")]
    Typed {
        /// `group/version, Kind=…` and the object's name.
        object: String,
        /// What does not fit.
        source: TypedError,
    },
    /// The live object's managedFields cannot be read (500).
    #[error("failed to decode managed fields: {0}")]
    Decode(#[from] DecodeError),
}

/// Upstream's conflict message: one line for one conflict, grouped by manager for several.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        lines.extend(
            conflicts
                .iter()
                .filter(|c| c.manager == m)
                .map(|c| format!("- {}", c.field)),
        );
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// What an apply is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The applied configuration, an object of the request's kind.
    pub config: &'a Value,
    /// `?force=true`: take fields from other managers instead of failing.
    pub force: bool,
    /// The fields the write may change.
    pub scope: Scope,
    /// `kind` of the request's resource.
    pub kind: &'a str,
    /// The time to record.
    pub now: &'a str,
}

/// Applies a configuration over `live` (`None`: the object does not exist yet) and returns the
/// object to write, with managedFields recorded (upstream `FieldManager.Apply`).
pub fn apply(
    live: Option<&Value>,
    writer: &Writer,
    req: ApplyRequest<'_>,
) -> Result<Value, ApplyError> {
    let config = req.config;
    let gvk = |v: &Value| {
        let av = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let (g, ver) = av.rsplit_once('/').unwrap_or(("", av));
        format!(
            "{g}/{ver}, Kind={}",
            v.get("kind").and_then(Value::as_str).unwrap_or("")
        )
    };
    let (group, version) = writer
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &writer.api_version));
    let expected = format!("{group}/{version}, Kind={}", req.kind);
    if gvk(config) != expected {
        return Err(ApplyError::BadRequest(format!(
            "invalid object type: {}",
            gvk(config)
        )));
    }
    if managed_fields_of(config).is_some() {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let ty = writer.types.root();
    let mut entries = decode(live.and_then(managed_fields_of))?;
    let stored = live;
    let mut live = live.cloned();
    if let Some(l) = live.as_mut() {
        take_managed_fields(l);
        if entries.is_empty() {
            // Fields set before the first apply belong to someone: record them so that the
            // applier does not silently take or prune them.
            let mut cmp = typed::compare(ty, None, Some(l));
            req.scope.filter_comparison(&mut cmp);
            let first = Writer {
                manager: BEFORE_FIRST_APPLY.into(),
                ..writer.clone()
            };
            track(&mut entries, cmp, &first, Operation::Update, req.now);
        }
    }
    let typed_err = |source| ApplyError::Typed {
        object: format!(
            "{}; {}",
            gvk(config),
            config
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        source,
    };
    let mut applied = typed::to_field_set(ty, config).map_err(typed_err)?;
    req.scope.filter(&mut applied);
    let mut merged = typed::merge(ty, live.as_ref(), config).map_err(typed_err)?;

    let mine = entries
        .iter()
        .position(|e| e.same_manager(&writer.manager, Operation::Apply, "", &writer.subresource));
    if let Some(i) = mine {
        prune(ty, &mut merged, &entries, i, &applied);
    }

    let mut cmp = typed::compare(ty, live.as_ref(), Some(&merged));
    req.scope.filter_comparison(&mut cmp);
    let mut changed = cmp.added.clone();
    changed.union_with(&cmp.modified);
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        e.set.intersection(&changed).for_each_member(&mut |p| {
            conflicts.push((
                Conflict {
                    manager: e.describe(),
                    field: Path(p).to_string(),
                },
                p.to_vec(),
            ))
        });
    }
    if !conflicts.is_empty() && !req.force {
        // kubectl moving from client-side to server-side apply may take what its
        // last-applied configuration set and the object still holds (upstream
        // `lastAppliedManager`).
        if writer.manager == "kubectl"
            && let Some(allowed) = stored.and_then(|l| allowed_by_last_applied(ty, l, writer))
        {
            conflicts.retain(|(_, p)| !allowed.has(p));
        }
        if !conflicts.is_empty() {
            return Err(ApplyError::Conflicts(
                conflicts.into_iter().map(|(c, _)| c).collect(),
            ));
        }
    }
    let previous_time = mine.and_then(|i| entries[i].time.clone());
    if let Some(i) = mine {
        entries.remove(i);
    }
    for e in entries.iter_mut() {
        e.set.subtract(&changed);
        e.set.subtract(&cmp.removed);
    }
    applied.subtract(stripped());
    entries.push(Entry {
        manager: writer.manager.clone(),
        operation: Operation::Apply,
        api_version: writer.api_version.clone(),
        // The time moves only when the object changes, as upstream.
        time: if cmp.is_empty() {
            previous_time
        } else {
            Some(req.now.to_string())
        },
        subresource: writer.subresource.clone(),
        set: applied,
    });
    if writer.manager == "kubectl" {
        sync_last_applied(&mut merged, config);
    }
    if merged.get("metadata").is_none()
        && let Some(o) = merged.as_object_mut()
    {
        o.insert("metadata".into(), json!({}));
    }
    encode(&mut merged, entries);
    Ok(merged)
}

/// Removes from `merged` what the applier owned before and owns no more, unless another
/// manager owns it (upstream `Updater.prune`); a dropped struct goes with its defaults.
fn prune(
    ty: typed::Ty<'_>,
    merged: &mut Value,
    entries: &[Entry],
    mine: usize,
    applied: &FieldSet,
) {
    let mut last = entries[mine].set.clone();
    if last.is_empty() {
        return;
    }
    let mut owned = applied.clone();
    for (i, e) in entries.iter().enumerate() {
        if i != mine {
            owned.union_with(&e.set);
        }
    }
    typed::ensure_named_fields_are_members(ty, &mut last);
    typed::ensure_named_fields_are_members(ty, &mut owned);
    last.subtract(&owned);
    // What the server owns is never the applier's to remove.
    last.subtract(stripped());
    typed::remove_items(ty, merged, &last);
}

/// The fields of the live object's last-applied annotation that still hold their values.
fn allowed_by_last_applied(ty: typed::Ty<'_>, live: &Value, writer: &Writer) -> Option<FieldSet> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(writer.api_version.as_str()) {
        return None;
    }
    let mut set = typed::to_field_set(ty, &last).ok()?;
    let cmp = typed::compare(ty, Some(&last), Some(live));
    set.subtract(&cmp.modified);
    set.subtract(&cmp.added);
    set.subtract(&cmp.removed);
    Some(set)
}

/// kubectl's client-side-apply annotation follows its server-side applies, so that switching
/// back works (upstream `lastAppliedUpdater`).
fn sync_last_applied(merged: &mut Value, config: &Value) {
    let has = merged
        .pointer(&format!(
            "/metadata/annotations/{}",
            LAST_APPLIED.replace('/', "~1")
        ))
        .is_some();
    if !has {
        return;
    }
    let mut last = config.clone();
    if let Some(a) = last
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            last["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
    }
    let text = format!("{last}\n");
    if let Some(a) = merged
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// The field manager of a request: `?fieldManager=`, else the User-Agent up to its first `/`
/// (upstream `prefixFromUserAgent`), at most 128 characters.
pub fn manager_from(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager.filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => {
            let prefix = user_agent.split('/').next().unwrap_or("");
            prefix.chars().take(128).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str, operation: Operation) -> Writer {
        Writer {
            manager: manager.into(),
            operation,
            api_version: "example/v1".into(),
            subresource: String::new(),
            types: typed::tests::sample(),
        }
    }

    fn obj(spec: Value) -> Value {
        json!({"apiVersion": "example/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec})
    }

    fn apply_as(
        live: Option<&Value>,
        manager: &str,
        config: &Value,
        force: bool,
    ) -> Result<Value, ApplyError> {
        apply(
            live,
            &writer(manager, Operation::Apply),
            ApplyRequest {
                config,
                force,
                scope: Scope::Main { has_status: false },
                kind: "Thing",
                now: "2026-01-01T00:00:00Z",
            },
        )
    }

    fn entries(obj: &Value) -> Vec<(String, String, Value)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["manager"].as_str().unwrap().to_string(),
                    e["operation"].as_str().unwrap().to_string(),
                    e["fieldsV1"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_create_records_an_update_entry_for_what_it_set() {
        let mut new = obj(json!({"replicas": 1}));
        new["metadata"]["labels"] = json!({"a": "b"});
        record_update(
            None,
            &mut new,
            &writer("kubectl", Operation::Update),
            Scope::Main { has_status: false },
            "2026-01-01T00:00:00Z",
        );
        let mf = &new["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl");
        assert_eq!(mf["operation"], "Update");
        assert_eq!(mf["apiVersion"], "example/v1");
        assert_eq!(mf["time"], "2026-01-01T00:00:00Z");
        assert_eq!(mf["fieldsType"], "FieldsV1");
        assert_eq!(
            mf["fieldsV1"],
            json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let mut first = obj(json!({"replicas": 1}));
        record_update(
            None,
            &mut first,
            &writer("a", Operation::Update),
            Scope::Main { has_status: false },
            "t1",
        );
        let mut second = first.clone();
        second["spec"]["replicas"] = json!(2);
        record_update(
            Some(&first),
            &mut second,
            &writer("b", Operation::Update),
            Scope::Main { has_status: false },
            "t2",
        );
        let e = entries(&second);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "b");
    }

    #[test]
    fn sending_an_empty_list_clears_managed_fields() {
        let mut first = obj(json!({"replicas": 1}));
        record_update(
            None,
            &mut first,
            &writer("a", Operation::Update),
            Scope::Main { has_status: false },
            "t1",
        );
        let mut second = first.clone();
        second["metadata"]["managedFields"] = json!([]);
        record_update(
            Some(&first),
            &mut second,
            &writer("a", Operation::Update),
            Scope::Main { has_status: false },
            "t2",
        );
        assert!(second["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn apply_owns_its_config_and_prunes_what_it_dropped() {
        let config = obj(json!({"replicas": 1, "finalizers": ["x", "y"]}));
        let created = apply_as(None, "m", &config, false).unwrap();
        assert_eq!(entries(&created)[0].1, "Apply");
        assert_eq!(
            entries(&created)[0].2,
            json!({"f:spec": {"f:finalizers": {"v:\"x\"": {}, "v:\"y\"": {}}, "f:replicas": {}}})
        );
        let again = apply_as(
            Some(&created),
            "m",
            &obj(json!({"finalizers": ["x"]})),
            false,
        )
        .unwrap();
        assert_eq!(again["spec"], json!({"finalizers": ["x"]}));
    }

    #[test]
    fn a_field_another_manager_owns_with_another_value_conflicts_unless_forced() {
        let mut live = obj(json!({"replicas": 1}));
        record_update(
            None,
            &mut live,
            &writer("kubectl-client-side-apply", Operation::Update),
            Scope::Main { has_status: false },
            "t1",
        );
        let err = apply_as(Some(&live), "m", &obj(json!({"replicas": 2})), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using example/v1: .spec.replicas"
        );
        // The same value is shared, not a conflict.
        let shared = apply_as(Some(&live), "m", &obj(json!({"replicas": 1})), false).unwrap();
        assert_eq!(entries(&shared).len(), 2);
        let forced = apply_as(Some(&live), "m", &obj(json!({"replicas": 2})), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        let e = entries(&forced);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "m");
    }

    #[test]
    fn a_dropped_field_another_manager_owns_stays() {
        let live = apply_as(
            None,
            "a",
            &obj(json!({"replicas": 1, "finalizers": ["x"]})),
            false,
        )
        .unwrap();
        let live = apply_as(Some(&live), "b", &obj(json!({"finalizers": ["x"]})), false).unwrap();
        let out = apply_as(Some(&live), "a", &obj(json!({"replicas": 1})), false).unwrap();
        assert_eq!(out["spec"], json!({"replicas": 1, "finalizers": ["x"]}));
    }

    #[test]
    fn apply_refuses_another_kind_and_managed_fields_in_the_config() {
        let mut config = obj(json!({}));
        config["kind"] = json!("Other");
        let err = apply_as(None, "m", &config, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid object type: example/v1, Kind=Other"
        );
        let mut config = obj(json!({}));
        config["metadata"]["managedFields"] = json!([]);
        assert!(matches!(
            apply_as(None, "m", &config, false),
            Err(ApplyError::BadRequest(_))
        ));
    }

    #[test]
    fn more_than_ten_update_managers_merge_the_oldest_into_ancient_changes() {
        let mut obj = obj(json!({}));
        for i in 0..12 {
            let old = obj.clone();
            obj["spec"][format!("f{i}")] = json!(i);
            let time = format!("2026-01-01T00:00:{i:02}Z");
            let w = writer(&format!("m{i:02}"), Operation::Update);
            record_update(
                Some(&old),
                &mut obj,
                &w,
                Scope::Main { has_status: false },
                &time,
            );
            if i == 0 {
                // record_update tracks nothing on objects without entries; seed one.
                record_update(None, &mut obj, &w, Scope::Main { has_status: false }, &time);
            }
        }
        let e = entries(&obj);
        assert_eq!(e.len(), 10, "{e:?}");
        assert_eq!(e[0].0, "ancient-changes");
        assert_eq!(
            e[0].2,
            json!({"f:spec": {"f:f0": {}, "f:f1": {}, "f:f2": {}}})
        );
        assert_eq!(e[1].0, "m03");
    }

    #[test]
    fn kubectl_takes_over_what_its_client_side_apply_set() {
        let mut live = obj(json!({"replicas": 1}));
        live["metadata"]["annotations"] =
            json!({LAST_APPLIED: obj(json!({"replicas": 1})).to_string()});
        record_update(
            None,
            &mut live,
            &writer("kubectl-client-side-apply", Operation::Update),
            Scope::Main { has_status: false },
            "t1",
        );
        let mut config = obj(json!({"replicas": 2}));
        config["metadata"]["annotations"] = live["metadata"]["annotations"].clone();
        let out = apply_as(Some(&live), "kubectl", &config, false).unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        // The annotation follows the applied configuration.
        let last: Value = serde_json::from_str(
            out["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(last["spec"]["replicas"], 2);
        assert!(apply_as(Some(&live), "other", &config, false).is_err());
    }

    #[test]
    fn fields_of_an_object_without_entries_belong_to_before_first_apply() {
        let live = obj(json!({"replicas": 1}));
        // Updates of such an object record nothing, as upstream.
        let mut updated = live.clone();
        updated["spec"]["replicas"] = json!(2);
        record_update(
            Some(&live),
            &mut updated,
            &writer("u", Operation::Update),
            Scope::Main { has_status: false },
            "t",
        );
        assert!(updated["metadata"].get("managedFields").is_none());
        let err = apply_as(Some(&live), "m", &obj(json!({"replicas": 3})), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"before-first-apply\" using example/v1: .spec.replicas"
        );
    }

    #[test]
    fn managers_default_to_the_user_agent_product() {
        assert_eq!(
            manager_from(None, "kubectl/v1.33.0 (linux/amd64)"),
            "kubectl"
        );
        assert_eq!(manager_from(Some("m"), "kubectl/v1.33.0"), "m");
    }
}
