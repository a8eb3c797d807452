//! Update (upstream's `Store.Update` and its GuaranteedUpdate loop): PUT with optimistic
//! concurrency, read-modify-write for patches and controllers, and the spec/status split.

use super::metadata::{
    self, finalizers, meta, meta_mut, meta_str, now_rfc3339, parse_rv, set_resource_version,
};
use super::{Outcome, Result, SERVER_MANAGER, Store, UPDATE_RETRIES, WriteOptions};
use crate::registry::errors::{FieldError, RegistryError};
use crate::registry::managed_fields::{self, Operation, Scope, Writer};
use crate::storage::StorageError;
use serde_json::{Value, json};
use std::sync::Arc;

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
            // In-place resize: container resources and resize policies (the pod strategy
            // keeps every other container field as stored).
            "resize" => Some(Self::Subresource {
                name: "resize",
                owns: &["/spec/containers", "/spec/initContainers"],
            }),
            // kubectl debug adds ephemeral containers to a running pod.
            "ephemeralcontainers" => Some(Self::Subresource {
                name: "ephemeralcontainers",
                owns: &["/spec/ephemeralContainers"],
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

impl Store {
    /// Replaces an object (PUT), on the main resource or its status.
    pub async fn update(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        target: UpdateTarget,
        opts: WriteOptions<'_>,
    ) -> Result<Outcome<Value>> {
        let (mut obj, warnings) = self.decode_body(body, &opts)?;
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
        // Without a resourceVersion the update applies to whatever is current: a write that
        // lands between the read and the CAS (a controller's status update) is retried over,
        // as upstream's GuaranteedUpdate does.
        for _ in 0..UPDATE_RETRIES {
            let kv = self.get_kv(ns, name).await?;
            if let Some(rv) = precondition
                && rv != kv.mod_revision
            {
                return Err(self.storage_err(StorageError::conflict("", rv, kv.mod_revision), name));
            }
            let old = self.decode_kv(&kv)?;
            match self
                .checked_update(ns, name, obj.clone(), &old, kv.mod_revision, target, &opts)
                .await
            {
                Err(RegistryError::Conflict { .. }) if precondition.is_none() => continue,
                result => return result.map(|value| Outcome { value, warnings }),
            }
        }
        Err(self.storage_err(StorageError::conflict("", 0, 0), name))
    }

    /// Mutating admission, allocation, metadata rules, validation, validating admission and
    /// the CAS write of one update attempt.
    #[allow(clippy::too_many_arguments)]
    async fn checked_update(
        &self,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        old: &Value,
        mod_revision: i64,
        target: UpdateTarget,
        opts: &WriteOptions<'_>,
    ) -> Result<Value> {
        if let Some(admission) = opts.admission {
            admission.mutate(&mut obj, Some(old)).await?;
        }
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
        let result = async {
            let mut new = self.prepare_update(obj.clone(), old, target, opts.direct)?;
            if let Some(mf) = applied {
                meta_mut(&mut new).insert("managedFields".into(), mf);
            }
            self.record_update(Some(old), &mut new, target, opts);
            if let Some(admission) = opts.admission {
                admission.validate(&new, Some(old)).await?;
            }
            self.write_update(ns, name, new, old, mod_revision, opts.dry_run)
                .await
        }
        .await;
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
    /// Its failures come back as they are, in the caller's error type.
    pub async fn update_with<F, E>(
        &self,
        ns: Option<&str>,
        name: &str,
        target: UpdateTarget,
        opts: WriteOptions<'_>,
        mutate: F,
    ) -> Result<Outcome<Value>, E>
    where
        F: Fn(&Value) -> Result<Value, E>,
        E: From<RegistryError>,
    {
        for _ in 0..UPDATE_RETRIES {
            let kv = self.get_kv(ns, name).await?;
            let old = self.decode_kv(&kv)?;
            let desired = mutate(&old)?;
            if let Some(rv) = meta_str(&desired, "resourceVersion")
                && parse_rv(rv)? != kv.mod_revision
            {
                return Err(self
                    .storage_err(StorageError::conflict("", 0, kv.mod_revision), name)
                    .into());
            }
            let (mut obj, warnings) = self.decode_body(desired, &opts)?;
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
                Err(e) => return Err(e.into()),
                Ok(value) => return Ok(Outcome { value, warnings }),
            }
        }
        Err(self
            .storage_err(StorageError::conflict("", 0, 0), name)
            .into())
    }

    /// Records an Update by the request's writer (or the server) in the object's
    /// managedFields; applies recorded theirs already.
    pub(super) fn record_update(
        &self,
        old: Option<&Value>,
        new: &mut Value,
        target: UpdateTarget,
        opts: &WriteOptions<'_>,
    ) {
        if opts.direct {
            return;
        }
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
    fn prepare_update(
        &self,
        mut new: Value,
        old: &Value,
        target: UpdateTarget,
        direct: bool,
    ) -> Result<Value> {
        let info = self.info().clone();
        let name = meta_str(old, "name").unwrap_or("").to_string();
        if let UpdateTarget::Subresource {
            owns: owned,
            name: subresource,
        } = target
        {
            // A subresource changes only the fields it owns; everything else stays as stored.
            let mut merged = old.clone();
            for ptr in owned {
                copy_pointer(&mut merged, &new, ptr);
            }
            new = merged;
            self.strategy
                .prepare_for_subresource_update(subresource, &mut new, old);
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
        metadata::carry_over_system_fields(&mut new, old);
        // Upstream decodes (and so defaults) before it compares specs: an update that only
        // leaves out what defaulting fills in changes nothing.
        self.strategy.default(&mut new);
        if self.strategy.tracks_generation() {
            metadata::bump_generation(&mut new, old);
        }
        let mut errs = self.validate_meta(&new);
        errs.extend(metadata::validate_finalizers_while_terminating(&new, old));
        if !direct {
            errs.extend(match target {
                UpdateTarget::Main => self.strategy.validate_update(&new, old),
                UpdateTarget::Subresource { name, .. } => {
                    self.strategy.validate_subresource_update(name, &new, old)
                }
            });
        }
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
        set_resource_version(&mut new, mod_revision);
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
            set_resource_version(&mut new, kv.mod_revision);
            return Ok(new);
        }
        let kv = self
            .update_key(&key, Some(mod_revision), self.encode(&new)?)
            .await
            .map_err(|e| self.storage_err(e, name))?;
        set_resource_version(&mut new, kv.mod_revision);
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
}
