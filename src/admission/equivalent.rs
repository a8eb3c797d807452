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

    /// The request's objects converted: the new object and the old one.
    pub fn objects(
        &self,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(Option<Value>, Option<Value>), RegistryError> {
        let object = object.map(|o| self.to_matched(o)).transpose()?;
        let old = old.map(|o| self.to_matched(o)).transpose()?;
        Ok((object, old))
    }

    /// An AdmissionRequest built for the matched resource (`converted`, the request's
    /// attributes as made to it), told what `original` asked for.
    pub fn request(
        converted: &Attributes<'_>,
        original: &Attributes<'_>,
        uid: &str,
        object: Option<&Value>,
    ) -> Value {
        let mut request = converted.request(uid, object);
        let (group, version, kind) = original.kind();
        request["requestKind"] = json!({"group": group, "version": version, "kind": kind});
        let info = original.resource;
        request["requestResource"] =
            json!({"group": info.group, "version": info.version, "resource": info.resource});
        request
    }
}
