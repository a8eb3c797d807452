//! Sets of field paths (structured-merge-diff's `fieldpath.Set`) and their `FieldsV1` encoding.
//!
//! A set is a tree: each node says whether its own path is a member and holds its children,
//! ordered as upstream orders path elements, so that encoding needs no sorting.

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A JSON value with upstream's total order (`value.Compare`): numbers, strings, booleans,
/// lists, maps, null.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdValue(pub Value);

impl Eq for OrdValue {}

impl PartialOrd for OrdValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdValue {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_values(&self.0, &other.0)
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (x, y) in x.iter().zip(y) {
                let c = compare_values(x, y);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        // Maps compare rarely (never as keys of built-in lists); their text is a stable order.
        (Value::Object(_), Value::Object(_)) => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// One step of a path, ordered as upstream's `PathElement.Compare`: fields, then keys, then
/// values, then indexes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    /// A struct field or map key (`f:name`).
    Field(String),
    /// An item of a map list by its key fields, sorted by name (`k:{"name":"c"}`).
    Key(Vec<(String, OrdValue)>),
    /// An item of a set list (`v:"x"`).
    Value(OrdValue),
    /// An item of a list by position (`i:0`).
    Index(usize),
}

impl fmt::Display for PathElement {
    /// As upstream's `PathElement.String()`: `.name`, `[k=v,…]`, `[=v]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k}={}", v.0)).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", v.0),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let map: Map<String, Value> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect();
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(v) => format!("v:{}", v.0),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(key: &str) -> Option<PathElement> {
        let (kind, rest) = key.split_once(':')?;
        Some(match kind {
            "f" => PathElement::Field(rest.to_string()),
            "k" => match serde_json::from_str(rest).ok()? {
                Value::Object(map) => {
                    PathElement::Key(map.into_iter().map(|(k, v)| (k, OrdValue(v))).collect())
                }
                _ => return None,
            },
            "v" => PathElement::Value(OrdValue(serde_json::from_str(rest).ok()?)),
            "i" => PathElement::Index(rest.parse().ok()?),
            _ => return None,
        })
    }
}

/// A path from the root of an object, e.g. `.spec.containers[name="c"].image`.
pub struct Path<'a>(pub &'a [PathElement]);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A set of paths, as a tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// Whether the path of this node is itself in the set (meaningless at the root).
    pub member: bool,
    /// The sets below each child.
    pub children: BTreeMap<PathElement, FieldSet>,
}

/// Why a `FieldsV1` value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A key that is not `.`, `f:`, `k:`, `v:` or `i:`.
    #[error("parsing JSON: unrecognized path element {0:?}")]
    BadElement(String),
    /// A value that is not an object.
    #[error("expected an object, got {0}")]
    NotAnObject(String),
}

impl FieldSet {
    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The node at `path`, created on the way.
    pub fn node_mut(&mut self, path: &[PathElement]) -> &mut FieldSet {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node
    }

    /// Adds `path` as a member.
    pub fn insert(&mut self, path: &[PathElement]) {
        if !path.is_empty() {
            self.node_mut(path).member = true;
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let mut node = self;
        for pe in path {
            match node.children.get(pe) {
                Some(n) => node = n,
                None => return false,
            }
        }
        !path.is_empty() && node.member
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (pe, theirs) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_with(theirs);
        }
    }

    /// Removes every member of `other`; nodes left with nothing are dropped.
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                mine.subtract(theirs);
                if !mine.member && mine.children.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// The members both sets have.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (pe, mine) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = mine.intersection(theirs);
                if both.member || !both.children.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Drops the subtree at `path` (the path and everything below it).
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for pe in parents {
            match node.children.get_mut(pe) {
                Some(n) => node = n,
                None => return,
            }
        }
        node.children.remove(last);
    }

    /// Keeps only the subtrees at `paths`.
    pub fn retain_subtrees(&mut self, paths: &[&[PathElement]]) {
        let mut kept = FieldSet::default();
        for path in paths {
            let mut node = &*self;
            let mut found = true;
            for pe in *path {
                match node.children.get(pe) {
                    Some(n) => node = n,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if found && !path.is_empty() {
                *kept.node_mut(path) = node.clone();
            }
        }
        *self = kept;
    }

    /// Calls `f` with every member path, in order.
    pub fn for_each_member(&self, f: &mut impl FnMut(&[PathElement])) {
        fn walk(set: &FieldSet, path: &mut Vec<PathElement>, f: &mut impl FnMut(&[PathElement])) {
            for (pe, child) in &set.children {
                path.push(pe.clone());
                if child.member {
                    f(path);
                }
                walk(child, path, f);
                path.pop();
            }
        }
        walk(self, &mut Vec::new(), f);
    }

    /// The `FieldsV1` JSON of this set, as upstream's `SetToFields`.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        // A member without children is `{}` itself; with children it says so with `.`.
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            map.insert(pe.encode(), child.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Reads a `FieldsV1` JSON value.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, DecodeError> {
        let Value::Object(map) = value else {
            return Err(DecodeError::NotAnObject(value.to_string()));
        };
        let mut set = FieldSet::default();
        for (key, child) in map {
            if key == "." {
                set.member = true;
                continue;
            }
            let pe =
                PathElement::decode(key).ok_or_else(|| DecodeError::BadElement(key.clone()))?;
            let mut child = FieldSet::from_fields_v1(child)?;
            // A leaf (`{}`) is a member; a node with children is one only if it says `.`.
            if child.children.is_empty() {
                child.member = true;
            }
            set.children.insert(pe, child);
        }
        Ok(set)
    }
}

/// A path element naming a field.
pub fn field(name: &str) -> PathElement {
    PathElement::Field(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(names: &[&str]) -> Vec<PathElement> {
        names.iter().map(|n| field(n)).collect()
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_members_that_have_children() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}},
                       "f:finalizers": {"v:\"x\"": {}}}
        });
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert!(set.has(&path(&["metadata", "labels"])));
        assert!(!set.has(&path(&["metadata"])));
        assert!(set.has(&path(&["metadata", "labels", "app"])));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn elements_order_fields_before_keys_before_values_and_print_as_upstream() {
        let key = PathElement::Key(vec![
            ("containerPort".into(), OrdValue(json!(80))),
            ("protocol".into(), OrdValue(json!("TCP"))),
        ]);
        assert!(field("z") < key);
        assert!(key < PathElement::Value(OrdValue(json!("a"))));
        assert_eq!(key.encode(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        let p = vec![field("spec"), field("ports"), key];
        assert_eq!(
            Path(&p).to_string(),
            r#".spec.ports[containerPort=80,protocol="TCP"]"#
        );
    }

    #[test]
    fn difference_and_intersection_work_member_by_member() {
        let mut a = FieldSet::default();
        a.insert(&path(&["spec", "replicas"]));
        a.insert(&path(&["spec", "paused"]));
        let mut b = FieldSet::default();
        b.insert(&path(&["spec", "replicas"]));
        b.insert(&path(&["spec"]));
        assert!(a.intersection(&b).has(&path(&["spec", "replicas"])));
        a.subtract(&b);
        assert!(!a.has(&path(&["spec", "replicas"])));
        assert!(a.has(&path(&["spec", "paused"])));
        a.subtract(&a.clone());
        assert!(a.is_empty());
    }
}
