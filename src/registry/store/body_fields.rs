//! The fields of a JSON request body in document order, duplicates marked: what upstream's strict
//! decoder (sigs.k8s.io/json) reports as `duplicate field "spec.replicas"`, which a parsed
//! `Value` can no longer show (the last value won).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Every key of a body as a field path (`spec.template.spec.containers[0].name`), in the order
/// they appear, each marked when its object already had that key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFields(Vec<(String, bool)>);

impl BodyFields {
    /// Scans a JSON body; `None` when it is not JSON (the decoder then reports why).
    pub fn scan(body: &[u8]) -> Option<Self> {
        let mut fields = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(body);
        Walker {
            path: String::new(),
            out: &mut fields,
        }
        .deserialize(&mut de)
        .ok()?;
        Some(Self(fields))
    }

    /// Upstream's strict decoding errors for this body: its duplicate fields and the fields the
    /// kind does not know (`unknown`, as found by decoding), each once. A typed kind's decoder
    /// meets both in document order and skips an unknown field's value; a custom resource's
    /// JSON decode finds the duplicates before pruning finds the unknown fields (`typed` false).
    /// Unknown fields the scan did not meet come last.
    pub fn strict_errors(&self, unknown: &[String], typed: bool) -> Vec<String> {
        let inside_unknown = |path: &str| {
            unknown.iter().any(|u| {
                path.strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
        };
        let mut errors: Vec<String> = Vec::new();
        let mut push = |e: String| {
            if !errors.contains(&e) {
                errors.push(e);
            }
        };
        for (path, duplicate) in &self.0 {
            if inside_unknown(path) {
                continue;
            }
            if *duplicate {
                push(format!("duplicate field {path:?}"));
            }
            if typed && unknown.contains(path) {
                push(format!("unknown field {path:?}"));
            }
        }
        for path in unknown {
            push(format!("unknown field {path:?}"));
        }
        errors
    }
}

/// Walks one value at `path`, recording the keys below it.
struct Walker<'a> {
    path: String,
    out: &'a mut Vec<(String, bool)>,
}

impl<'de> DeserializeSeed<'de> for Walker<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walker<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let duplicate = !seen.insert(key);
            self.out.push((path.clone(), duplicate));
            map.next_value_seed(Walker {
                path,
                out: self.out,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walker {
                path: format!("{}[{i}]", self.path),
                out: self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_unknown_fields_come_in_document_order() {
        let body = br#"{"spec":{"zeta":1,"replicas":1,"alpha":{"x":1,"x":2},"replicas":2,
            "containers":[{"name":"a","name":"b"}]},"metadata":{"labels":{"a":"1","a":"2"}}}"#;
        let fields = BodyFields::scan(body).unwrap();
        let unknown = ["spec.zeta".to_string(), "spec.alpha".to_string()];
        assert_eq!(
            fields.strict_errors(&unknown, true),
            [
                r#"unknown field "spec.zeta""#,
                r#"unknown field "spec.alpha""#,
                r#"duplicate field "spec.replicas""#,
                r#"duplicate field "spec.containers[0].name""#,
                r#"duplicate field "metadata.labels.a""#,
            ]
        );
        assert_eq!(BodyFields::scan(b"{").map(|_| ()), None);
        assert_eq!(
            fields.strict_errors(&unknown, false)[..2],
            [
                r#"duplicate field "spec.replicas""#,
                r#"duplicate field "spec.containers[0].name""#,
            ]
        );
        assert!(
            BodyFields::scan(br#"{"a":1}"#)
                .unwrap()
                .strict_errors(&[], true)
                .is_empty()
        );
    }
}
