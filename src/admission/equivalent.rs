//! `matchPolicy: Equivalent` (upstream's default): a webhook or policy whose rules name another
//! version of the requested resource (or a resource kept in the same storage) still sees the
//! request, its objects converted to the version its rules name, with `requestKind` and
//! `requestResource` telling what was asked.

use super::Attributes;
use crate::registry::equivalence::{EquivalentResources, convert};
use crate::registry::{RegistryError, ResourceInfo, Strategy};
use serde_json::{Value, json};
use std::sync::Arc;

/// The request's resource and an equivalent one a rule matched.
pub(super) struct Equivalent {
    own: Arc<dyn Strategy>,
    matched: Arc<dyn Strategy>,
}

impl Equivalent {
    /// The first resource equivalent to `a`'s for which `matches` holds of the request as if
    /// made to it. Subresources with a kind of their own (`scale`) have no equivalents here.
    pub fn find(
        equivalents: &EquivalentResources,
        a: &Attributes<'_>,
        matches: impl Fn(&Attributes<'_>) -> bool,
    ) -> Option<Equivalent> {
        if a.kind().2 != &*a.resource.kind {
            return None;
        }
        let (own, others) = equivalents.of(a.resource)?;
        let matched = others.into_iter().find(|s| {
            matches(&Attributes {
                resource: s.info(),
                ..a.clone()
            })
        })?;
        Some(Equivalent { own, matched })
    }

    /// The resource matched.
    pub fn info(&self) -> &ResourceInfo {
        self.matched.info()
    }

    /// `obj` as the matched resource serves it.
    pub fn to_matched(&self, obj: &Value) -> Result<Value, RegistryError> {
        convert(&*self.own, &*self.matched, obj)
    }

    /// `obj`, as the matched resource serves it, back as the request's resource serves it.
    pub fn back(&self, obj: &Value) -> Result<Value, RegistryError> {
        convert(&*self.matched, &*self.own, obj)
    }

    /// Calls `f` with the request as made to the matched resource: its attributes (the old
    /// object converted), its object converted, and its AdmissionRequest with `uid` — whose
    /// `requestKind` and `requestResource` still tell what was asked.
    pub fn seen<R>(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        uid: &str,
        f: impl FnOnce(&Attributes<'_>, Option<&Value>, Value) -> R,
    ) -> Result<R, RegistryError> {
        let object = object.map(|o| self.to_matched(o)).transpose()?;
        let old = a.old_object.map(|o| self.to_matched(o)).transpose()?;
        let seen = Attributes {
            resource: self.info(),
            old_object: old.as_ref(),
            ..a.clone()
        };
        let mut request = seen.request(uid, object.as_ref());
        let (group, version, kind) = a.kind();
        request["requestKind"] = json!({"group": group, "version": version, "kind": kind});
        let info = a.resource;
        request["requestResource"] =
            json!({"group": info.group, "version": info.version, "resource": info.resource});
        Ok(f(&seen, object.as_ref(), request))
    }
}
