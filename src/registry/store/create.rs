//! Create (upstream's `Store.Create`): decode, mutating admission, metadata, the kind's rules,
//! validation, validating admission, then the write; generateName retries a collision.

use super::metadata::{self, generate_name, meta_str, set_resource_version, wants_generated_name};
use super::{Outcome, Result, Store, UpdateTarget, WriteOptions};
use crate::registry::errors::RegistryError;
use crate::storage::ErrorCode;
use serde_json::Value;

/// How many times a create with generateName retries a name collision (upstream: 7).
const GENERATE_NAME_RETRIES: usize = 7;

impl Store {
    /// Refuses a body whose namespace is not the request's, as upstream's create handler does
    /// before admission (`EnsureObjectNamespaceMatchesRequestNamespace`).
    pub fn check_namespace(&self, ns: Option<&str>, body: &Value) -> Result<()> {
        let body_ns = meta_str(body, "namespace");
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
        opts: WriteOptions<'_>,
    ) -> Result<Outcome<Value>> {
        let info = self.info();
        self.check_namespace(ns, &body)?;
        let (mut obj, warnings) = self.decode_body(body, &opts)?;
        if let Some(admission) = opts.admission {
            admission.mutate(&mut obj, None).await?;
        }
        metadata::prepare_for_create(
            &mut obj,
            ns,
            info.namespaced,
            self.strategy.tracks_generation(),
        );
        if info.has_status()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        let generate = wants_generated_name(&obj);
        let base = obj;
        for attempt in 0..=GENERATE_NAME_RETRIES {
            // The name comes first, so rules that derive from it (a Job's selector labels) see it;
            // a retry after a collision starts again from the request's object.
            let mut obj = base.clone();
            if generate {
                generate_name(&mut obj);
            }
            self.strategy.prepare_for_create(&mut obj);
            if let Some(user) = opts.admission.and_then(|a| a.user()) {
                self.strategy.prepare_for_create_by(&mut obj, user);
            }
            self.strategy.default(&mut obj);
            self.record_update(None, &mut obj, UpdateTarget::Main, &opts);
            let name = meta_str(&obj, "name").unwrap_or("").to_string();
            self.allocate(&mut obj, None, opts.dry_run).await?;
            let mut errs = self.validate_meta(&obj);
            errs.extend(self.strategy.validate(&obj));
            let admitted = if !errs.is_empty() {
                Err(self.invalid(&name, errs))
            } else if let Some(admission) = opts.admission {
                admission.validate(&obj, None).await
            } else {
                Ok(())
            };
            if let Err(e) = admitted {
                self.release(&obj, None, opts.dry_run).await;
                return Err(e);
            }
            if opts.dry_run {
                return Ok(Outcome {
                    value: obj,
                    warnings,
                });
            }
            match self
                .create_key(&self.key(ns, &name), self.encode(&obj)?)
                .await
            {
                Ok(rev) => {
                    set_resource_version(&mut obj, rev);
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
}
