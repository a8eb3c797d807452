//! The rules every write applies to `metadata`, whatever the kind (upstream's `BeforeCreate` and
//! `BeforeUpdate` in `k8s.io/apiserver/pkg/registry/rest`): system fields set on create and
//! carried over on update, generateName, generation, finalizers of terminating objects.

use crate::registry::errors::{ErrorList, FieldError, RegistryError};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Fields only the server sets: a create resets them, an update keeps the stored ones.
const SYSTEM_FIELDS: [&str; 5] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// The current time as upstream renders `metav1.Time`: RFC 3339 in UTC, whole seconds.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats as RFC 3339")
}

/// The current time as upstream renders `metav1.MicroTime` (audit events, Lease renewals): RFC
/// 3339 in UTC with microseconds.
pub fn now_micro() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// A random UUID (version 4), as upstream assigns `metadata.uid`.
pub fn new_uid() -> String {
    uuid::Builder::from_random_bytes(crate::random::bytes())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A 5-character suffix from upstream's alphabet (no vowels, no look-alikes), as its
/// `names.SimpleNameGenerator` appends.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    crate::random::bytes::<5>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// An object's metadata, `Null` when it has none.
pub(super) fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

/// A non-empty string field of an object's metadata.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An object's metadata for writing, made an object if it was missing or not one.
pub(super) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
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

/// Stamps the storage revision an object was read or written at.
pub(super) fn set_resource_version(obj: &mut Value, revision: i64) {
    meta_mut(obj).insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
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

/// An object's finalizers.
pub(super) fn finalizers(obj: &Value) -> Vec<String> {
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

/// Parses a resourceVersion a client sent.
pub(super) fn parse_rv(s: &str) -> Result<i64, RegistryError> {
    s.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| RegistryError::BadRequest(format!("invalid resource version: {s:?}")))
}

/// What a create sets before the kind's rules run (upstream's `FillObjectMetaSystemFields`
/// and the namespace rules of `BeforeCreate`): the request's namespace, a new uid and
/// creation time, generation 1 for kinds that count it; fields clients may not set are dropped.
pub(super) fn prepare_for_create(
    obj: &mut Value,
    ns: Option<&str>,
    namespaced: bool,
    tracks_generation: bool,
) {
    let m = meta_mut(obj);
    match (namespaced, ns) {
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
    if tracks_generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
}

/// Whether a create asks for a generated name: generateName without a name.
pub(super) fn wants_generated_name(obj: &Value) -> bool {
    meta_str(obj, "name").is_none() && meta_str(obj, "generateName").is_some()
}

/// Names the object `<generateName><random suffix>`.
pub(super) fn generate_name(obj: &mut Value) {
    let prefix = meta_str(obj, "generateName").unwrap_or("").to_string();
    meta_mut(obj).insert(
        "name".into(),
        Value::String(format!("{prefix}{}", name_suffix())),
    );
}

/// What an update takes from the stored object whatever the client sent: the system fields.
pub(super) fn carry_over_system_fields(new: &mut Value, old: &Value) {
    let old_meta = meta(old);
    let m = meta_mut(new);
    for k in SYSTEM_FIELDS {
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

/// Bumps metadata.generation when the update changes anything but metadata and status.
pub(super) fn bump_generation(new: &mut Value, old: &Value) {
    if spec_part(new) != spec_part(old) {
        let generation = meta(old)
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(new).insert("generation".into(), json!(generation));
    }
}

/// A terminating object may lose finalizers but gain none.
pub(super) fn validate_finalizers_while_terminating(new: &Value, old: &Value) -> ErrorList {
    if meta(old).get("deletionTimestamp").is_none() {
        return Vec::new();
    }
    let old_f = finalizers(old);
    finalizers(new)
        .into_iter()
        .filter(|f| !old_f.contains(f))
        .map(|f| {
            FieldError::forbidden(
                "metadata.finalizers",
                format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{f:?}}}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_version_4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, new_uid());
    }

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2006-01-02T15:04:05Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn generated_suffixes_use_upstreams_alphabet() {
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
