//! List items spliced from the stored bytes. When a kind stores its objects as it serves them,
//! a list item is the stored JSON with its resourceVersion stamped in (and, for typed kinds,
//! without apiVersion/kind), so a large list need not build and re-encode a `Value` per
//! object: that decoding and encoding was most of the time a big LIST took.

use crate::storage::json_layout::Members;
use std::collections::BTreeMap;
use std::io::Write;

/// Appends the list item for a stored object to `out`, keys in the order serde_json writes
/// a `Value` (sorted), so the bytes equal the decoded path's. Returns `false`, leaving `out`
/// as it was, when the bytes are not an object with an object `metadata`; the caller then
/// decodes the object instead.
pub fn append_item(out: &mut Vec<u8>, stored: &[u8], revision: i64, omit_type_meta: bool) -> bool {
    let Ok(top) = serde_json::from_slice::<Members>(stored) else {
        return false;
    };
    let Some(meta) = top
        .get("metadata")
        .and_then(|m| serde_json::from_str::<Members>(m.get()).ok())
    else {
        return false;
    };
    out.push(b'{');
    let mut first = true;
    for (key, value) in &top.members {
        if omit_type_meta && (*key == "apiVersion" || *key == "kind") {
            continue;
        }
        push_key(out, key, &mut first);
        if *key == "metadata" {
            append_metadata(out, &meta, revision);
        } else {
            out.extend_from_slice(value.get().as_bytes());
        }
    }
    out.push(b'}');
    true
}

/// The labels of a stored JSON object, read without decoding the rest of it; `None` when the
/// bytes are not JSON with string labels, and the object must be decoded to find them.
pub fn stored_labels(stored: &[u8]) -> Option<BTreeMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Metadata,
    }
    #[derive(serde::Deserialize, Default)]
    struct Metadata {
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let object: Object = serde_json::from_slice(stored).ok()?;
    Some(object.metadata.labels.unwrap_or_default())
}

/// Turns a decoded object into a list item, as [`append_item`] writes one from stored bytes.
pub fn to_list_item(obj: &mut serde_json::Value, omit_type_meta: bool) {
    if omit_type_meta && let Some(o) = obj.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
}

/// Metadata with `resourceVersion` set to `revision`, in its sorted place.
fn append_metadata(out: &mut Vec<u8>, meta: &Members, revision: i64) {
    const RV: &str = "resourceVersion";
    let stamp = |out: &mut Vec<u8>, first: &mut bool| {
        push_key(out, RV, first);
        write!(out, "\"{revision}\"").expect("writing to a Vec cannot fail");
    };
    out.push(b'{');
    let mut first = true;
    let mut stamped = false;
    for (key, value) in &meta.members {
        if !stamped && *key >= RV {
            stamp(out, &mut first);
            stamped = true;
        }
        if *key == RV {
            continue;
        }
        push_key(out, key, &mut first);
        out.extend_from_slice(value.get().as_bytes());
    }
    if !stamped {
        stamp(out, &mut first);
    }
    out.push(b'}');
}

/// `"key":`, after a comma unless it is the first member. A key that borrowed from the
/// input has no escapes, so it holds nothing JSON would escape and is written as it is.
fn push_key(out: &mut Vec<u8>, key: &str, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::json_layout::JsonLayout;
    use serde_json::{Value, json};

    /// What the decoding path produces from the stored bytes: the object with the revision
    /// stamped and, for typed kinds, no TypeMeta.
    fn decoded(stored: &[u8], revision: i64, omit: bool) -> Vec<u8> {
        let mut obj: Value = serde_json::from_slice(stored).unwrap();
        obj["metadata"]["resourceVersion"] = json!(revision.to_string());
        to_list_item(&mut obj, omit);
        serde_json::to_vec(&obj).unwrap()
    }

    fn spliced(stored: &[u8], revision: i64, omit: bool) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        let ok = append_item(&mut out, stored, revision, omit);
        if !ok {
            assert_eq!(out, b"prefix", "a refused item leaves the output alone");
            return None;
        }
        Some(out[b"prefix".len()..].to_vec())
    }

    #[test]
    fn splicing_gives_the_bytes_the_decoding_path_gives() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x\"\\\n\u{e9}", "z": "1"},
                "metadata": {"name": "c", "namespace": "d", "uid": "u", "labels": {"k": "v"},
                    "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {}}}]}}),
            // Keys sorting before and after resourceVersion, and none at all.
            json!({"kind": "Namespace", "metadata": {"annotations": {}, "uid": "u"}, "spec": {"finalizers": ["kubernetes"]}}),
            json!({"metadata": {"name": "n"}}),
            json!({"metadata": {}}),
            json!({"apiVersion": "v1", "metadata": {"name": "x"}, "zeta": 1}),
            json!({"metadata": {"zzz": 1, "resourceVersion": "7"}, "a": [1, 2.5, null, true]}),
            // Full-precision doubles survive the decoded path's parse and write unchanged
            // (serde_json's float_roundtrip), as the spliced bytes keep them.
            json!({"metadata": {}, "spec": {"minimum": 985.6906946328695, "x": 0.1, "y": 1e-7}}),
        ];
        // Top-level and metadata keys as Go writes them (struct order), which the decoded path
        // sorts. (Deeper members are copied as they are.)
        let go_order: &[&[u8]] = &[
            br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","uid":"u","namespace":"d","resourceVersion":"3"},"data":{"a":"2","z":"1"}}"#,
            br#"{"spec":{},"metadata":{"zzz":1,"annotations":{}},"apiVersion":"x/v1"}"#,
        ];
        for stored in go_order {
            for omit in [true, false] {
                assert_eq!(
                    String::from_utf8(spliced(stored, 42, omit).unwrap()).unwrap(),
                    String::from_utf8(decoded(stored, 42, omit)).unwrap(),
                    "{} omit={omit}",
                    String::from_utf8_lossy(stored)
                );
            }
        }
        for stored in go_order {
            assert_eq!(JsonLayout::of(stored), None, "keys out of order");
        }
        for obj in &objects {
            let stored = serde_json::to_vec(obj).unwrap();
            // What serde_json writes is compact and in key order: the layout the watch cache
            // keeps splices it too.
            let layout = JsonLayout::of(&stored).expect("a layout");
            for omit in [true, false] {
                let want = String::from_utf8(decoded(&stored, 42, omit)).unwrap();
                assert_eq!(
                    String::from_utf8(spliced(&stored, 42, omit).unwrap()).unwrap(),
                    want,
                    "{obj} omit={omit}"
                );
                let mut out = Vec::new();
                assert!(layout.append_item(&mut out, &stored, 42, omit));
                assert_eq!(String::from_utf8(out).unwrap(), want, "{obj} omit={omit}");
            }
        }
    }

    #[test]
    fn labels_are_read_from_stored_json_and_anything_else_is_left_to_decoding() {
        let labels = |stored: &[u8]| stored_labels(stored).map(|l| l.into_iter().collect());
        let pairs = |p: &[(&str, &str)]| -> Option<Vec<(String, String)>> {
            Some(
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            labels(br#"{"data":{"labels":{"x":"y"}},"metadata":{"labels":{"b":"2","a":"1"},"name":"n"}}"#),
            pairs(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(labels(br#"{"metadata":{"name":"n"}}"#), pairs(&[]));
        assert_eq!(labels(br#"{"metadata":{"labels":null}}"#), pairs(&[]));
        assert_eq!(labels(br#"{"kind":"X"}"#), pairs(&[]));
        assert_eq!(labels(br#"{"metadata":{"labels":{"a":1}}}"#), None);
        assert_eq!(labels(b"k8s\x00protobuf"), None);
    }

    #[test]
    fn what_cannot_be_spliced_is_refused() {
        for stored in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"kind":"X"}"#,
            br#"{"metadata":"x"}"#,
            br#"{"meta\u0064ata":{}}"#,
            br#"{"metadata":{"na\"me":"x"}}"#,
            br#"{"metadata":{}"#,
            // A decoded map keeps a repeated key's last value; splicing would keep both.
            br#"{"metadata":{},"data":1,"data":2}"#,
            br#"{"metadata":{"name":"a","name":"b"}}"#,
        ] {
            assert!(
                spliced(stored, 1, true).is_none(),
                "{}",
                String::from_utf8_lossy(stored)
            );
        }
    }
}
