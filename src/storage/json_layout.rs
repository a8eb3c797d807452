//! Where the members of a stored JSON object lie. A list item is the stored object with its
//! resourceVersion stamped in and, for typed kinds, without apiVersion and kind; parsing every
//! object again to find those places was most of the time a large LIST from the watch cache
//! took. The watch cache keeps each version's layout ([`LayoutMemo`]), as upstream's cache keeps
//! each object decoded, so lists only copy byte ranges.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// Top-level or metadata members of a JSON object, unparsed below the first level, sorted by
/// key. Borrowed keys fail on escaped names, and a repeated key fails too (a decoded map keeps
/// only its last value): both are left to decoding.
pub struct Members<'a> {
    /// The members in key order.
    pub members: Vec<(&'a str, &'a RawValue)>,
    /// Whether they were in key order in the text already.
    pub in_order: bool,
}

impl<'a> Members<'a> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(16);
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                // What kubeboot stores is sorted already (serde_json writes a map so); what
                // others wrote may not be.
                let in_order = members.is_sorted_by(|a, b| a.0 < b.0);
                if !in_order {
                    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    if members.windows(2).any(|w| w[0].0 == w[1].0) {
                        return Err(A::Error::custom("a repeated key"));
                    }
                }
                Ok(Members { members, in_order })
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// How `metadata.resourceVersion` is written into an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// Its stored value is replaced.
    Replace,
    /// It goes before the member that follows it in key order.
    BeforeMember,
    /// It goes after the last member.
    AfterLast,
    /// It is the only member of an empty `metadata`.
    Only,
}

/// The layout of a compact JSON object whose top-level and metadata members are in key order,
/// as serde_json writes a map: offsets into the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLayout {
    /// Length of the bytes this layout describes.
    len: u32,
    /// The `apiVersion` and `kind` members, each with the comma after it (metadata follows
    /// both in key order); an empty range when the member is absent.
    type_meta: [(u32, u32); 2],
    /// The range `stamp` replaces: the stored resourceVersion value, or an empty range where
    /// the member goes.
    rv: (u32, u32),
    stamp: Stamp,
}

/// Where `part`, borrowed from the text starting at address `base`, starts in that text.
fn offset_in(base: usize, part: &str) -> usize {
    part.as_ptr() as usize - base
}

/// Spans of the members of one compact object: (key start at its quote, value end).
fn compact_spans(text: &str, base: usize, members: &Members) -> Option<Vec<(usize, usize)>> {
    let bytes = text.as_bytes();
    let at = |s: &str| offset_in(base, s);
    let start = at(text);
    if !members.in_order || bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return None;
    }
    let mut spans = Vec::with_capacity(members.members.len());
    // Where the next member's opening quote must be when nothing separates the members.
    let mut expected = start + 1;
    for (key, value) in &members.members {
        let key_start = at(key).checked_sub(1)?;
        let value_start = at(value.get());
        if key_start != expected || value_start != key_start + key.len() + 3 {
            return None;
        }
        let value_end = value_start + value.get().len();
        spans.push((key_start, value_end));
        expected = value_end + 1;
    }
    // Separators and the closing brace: exactly one byte after each value.
    let end = start + bytes.len();
    if members.members.is_empty() {
        return (bytes.len() == 2).then_some(spans);
    }
    (expected == end).then_some(spans)
}

impl JsonLayout {
    /// The layout of `stored`, or `None` when it is not a compact JSON object with an object
    /// `metadata` whose members are in key order; such an object is spliced by parsing it.
    pub fn of(stored: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(stored).ok()?;
        let base = text.as_ptr() as usize;
        let top: Members = serde_json::from_str(text).ok()?;
        let top_spans = compact_spans(text, base, &top)?;
        let meta_text = top.get("metadata")?.get();
        let meta: Members = serde_json::from_str(meta_text).ok()?;
        let meta_spans = compact_spans(meta_text, base, &meta)?;
        let offset = |n: usize| u32::try_from(n).ok();
        let mut type_meta = [(0, 0); 2];
        for (slot, name) in type_meta.iter_mut().zip(["apiVersion", "kind"]) {
            if let Some(i) = top.members.iter().position(|(k, _)| *k == name) {
                // Metadata sorts after both, so a next member exists.
                let next = top_spans.get(i + 1)?.0;
                *slot = (offset(top_spans[i].0)?, offset(next)?);
            }
        }
        const RV: &str = "resourceVersion";
        let meta_start = offset_in(base, meta_text);
        let (rv, stamp) = match meta.members.iter().position(|(k, _)| *k >= RV) {
            Some(i) if meta.members[i].0 == RV => {
                let value = meta.members[i].1.get();
                let start = offset_in(base, value);
                ((start, start + value.len()), Stamp::Replace)
            }
            Some(i) => ((meta_spans[i].0, meta_spans[i].0), Stamp::BeforeMember),
            None if meta.members.is_empty() => ((meta_start + 1, meta_start + 1), Stamp::Only),
            None => {
                let close = meta_start + meta_text.len() - 1;
                ((close, close), Stamp::AfterLast)
            }
        };
        Some(Self {
            len: offset(stored.len())?,
            type_meta,
            rv: (offset(rv.0)?, offset(rv.1)?),
            stamp,
        })
    }

    /// Appends the list item of `stored` at `revision` to `out`: the bytes the decoding path
    /// would write, keys sorted. `false`, leaving `out` alone, when `stored` is not the value
    /// this layout was found in.
    pub fn append_item(
        &self,
        out: &mut Vec<u8>,
        stored: &[u8],
        revision: i64,
        omit_type_meta: bool,
    ) -> bool {
        if stored.len() != self.len as usize {
            return false;
        }
        let mut at = 0;
        if omit_type_meta {
            for &(start, end) in &self.type_meta {
                if start < end {
                    out.extend_from_slice(&stored[at..start as usize]);
                    at = end as usize;
                }
            }
        }
        out.extend_from_slice(&stored[at..self.rv.0 as usize]);
        let quoted = |out: &mut Vec<u8>| {
            write!(out, "\"{revision}\"").expect("writing to a Vec cannot fail")
        };
        match self.stamp {
            Stamp::Replace => quoted(out),
            Stamp::BeforeMember | Stamp::Only => {
                out.extend_from_slice(b"\"resourceVersion\":");
                quoted(out);
                if self.stamp == Stamp::BeforeMember {
                    out.push(b',');
                }
            }
            Stamp::AfterLast => {
                out.extend_from_slice(b",\"resourceVersion\":");
                quoted(out);
            }
        }
        out.extend_from_slice(&stored[self.rv.1 as usize..]);
        true
    }
}

/// A stored value's [`JsonLayout`], found at most once and shared by every copy of the
/// [`KeyValue`](super::KeyValue) that carries it. Only the watch cache keeps one: a value read
/// from a backend is listed once, so finding its layout would only add work.
#[derive(Clone, Default)]
pub struct LayoutMemo(Option<Arc<OnceLock<Option<JsonLayout>>>>);

impl LayoutMemo {
    /// A memo that keeps the layout once found.
    pub fn kept() -> Self {
        Self(Some(Arc::default()))
    }

    /// A memo holding the layout of `stored`, found now.
    pub fn found(stored: &[u8]) -> Self {
        Self(Some(Arc::new(OnceLock::from(JsonLayout::of(stored)))))
    }

    /// The layout of `stored`, found now unless already known; `None` when nothing keeps it.
    pub fn layout(&self, stored: &[u8]) -> Option<JsonLayout> {
        *self.0.as_ref()?.get_or_init(|| JsonLayout::of(stored))
    }
}

/// A memo is not part of a value's identity.
impl PartialEq for LayoutMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LayoutMemo {}

impl std::fmt::Debug for LayoutMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayoutMemo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_that_are_not_compact_and_in_key_order_have_no_layout() {
        for stored in [
            &br#"{"metadata": {}}"#[..],
            br#"{ "metadata":{}}"#,
            br#"{"metadata":{} }"#,
            br#"{"metadata":{"a":1 ,"b":2}}"#,
            br#"{"metadata":{"b":1,"a":2}}"#,
            br#"{"spec":{},"metadata":{}}"#,
            br#"{"metadata":[]}"#,
            br#"{"kind":"X"}"#,
            b"[]",
            b"\xff",
        ] {
            assert_eq!(
                JsonLayout::of(stored),
                None,
                "{}",
                String::from_utf8_lossy(stored)
            );
        }
    }

    #[test]
    fn a_layout_refuses_other_bytes_and_a_memo_finds_it_once() {
        let stored = br#"{"kind":"ConfigMap","metadata":{"name":"a"}}"#;
        let layout = JsonLayout::of(stored).unwrap();
        let mut out = Vec::new();
        assert!(!layout.append_item(&mut out, b"{}", 1, true));
        assert!(out.is_empty());
        assert!(layout.append_item(&mut out, stored, 7, true));
        assert_eq!(out, br#"{"metadata":{"name":"a","resourceVersion":"7"}}"#);

        assert_eq!(LayoutMemo::default().layout(stored), None);
        let memo = LayoutMemo::kept();
        let copy = memo.clone();
        assert_eq!(memo.layout(stored), Some(layout));
        // The copy shares what the first lookup found, even for other bytes.
        assert_eq!(copy.layout(b"{}"), Some(layout));
    }
}
