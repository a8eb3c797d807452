//! Delete (upstream's `Store.Delete` and `DeleteCollection`): preconditions, admission,
//! finalizers and propagation policies, graceful deletion, and deletecollection's workers.

use super::metadata::{
    finalizers, meta_mut, meta_str, now_rfc3339, parse_rv, set_resource_version,
};
use super::{ListParams, Result, Store, UPDATE_RETRIES};
use crate::registry::admit::Admit;
use crate::registry::errors::RegistryError;
use crate::storage::{ErrorCode, StorageError};
use futures::StreamExt;
use serde_json::{Value, json};

/// How many deletes of one deletecollection are in flight at once.
const DELETE_COLLECTION_WORKERS: usize = 16;

/// Delete parameters (the DeleteOptions body and query).
#[derive(Clone, Default)]
pub struct DeleteParams<'a> {
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
    /// The admission the request passes; `None` for the server's own deletes.
    pub admission: Option<&'a dyn Admit>,
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

impl Store {
    /// Deletes an object, or marks it for deletion while finalizers or a grace period remain.
    pub async fn delete(
        &self,
        ns: Option<&str>,
        name: &str,
        params: &DeleteParams<'_>,
    ) -> Result<Deleted> {
        let key = self.key(ns, name);
        for _ in 0..UPDATE_RETRIES {
            let kv = self.get_kv(ns, name).await?;
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
            if let Some(admission) = params.admission {
                admission.delete(&obj).await?;
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
                .guaranteed_update(&key, Some(kv.mod_revision), self.encode(&pending)?)
                .await
            {
                Ok(kv) => {
                    set_resource_version(&mut pending, kv.mod_revision);
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
        params: &DeleteParams<'_>,
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
}
