//! Field types for structured merge (structured-merge-diff's `schema` and `typed` packages):
//! which values are structs, granular maps, or lists of which kind, and the walks apply needs
//! over JSON values of those types: field sets, comparison, merge and removal.

use super::fieldpath::{FieldSet, OrdValue, PathElement};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

/// Index of a type in a [`Schema`].
pub type TypeId = usize;

/// How a list merges, as `x-kubernetes-list-type`.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced as a whole (`atomic`).
    Atomic,
    /// Scalars merged as a set (`set`).
    Set,
    /// Objects merged by key fields (`map` with `x-kubernetes-list-map-keys`); a key may have
    /// a default for items that omit it (a port's protocol is TCP).
    Map(Vec<(String, Option<Value>)>),
}

/// A declared field of a struct.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    /// Its type.
    pub ty: TypeId,
    /// Serialized even when empty (a Go field without `omitempty`, e.g. a pod's containers),
    /// so upstream never sees it added or removed as a whole, only its contents.
    pub always_present: bool,
}

/// One type of a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar, or a struct, map or anything else that is replaced as a whole.
    Leaf,
    /// An object with declared fields; undeclared fields are leaves.
    Struct(HashMap<String, Field>),
    /// An object whose every key holds a value of one type, merged key by key.
    Map(TypeId),
    /// A list of one type.
    List(TypeId, ListType),
    /// A value whose type is not known (a custom resource without schema): objects merge
    /// key by key, lists are atomic, as upstream's deduced type.
    Untyped,
}

/// A set of types referring to each other by [`TypeId`]; built-in kinds and, later, custom
/// resources each produce one.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    nodes: Vec<Node>,
}

impl Default for Schema {
    fn default() -> Self {
        Self::new()
    }
}

impl Schema {
    /// The id of the shared [`Node::Leaf`].
    pub const LEAF: TypeId = 0;
    /// The id of the shared [`Node::Untyped`].
    pub const UNTYPED: TypeId = 1;

    /// A schema holding only the leaf and untyped types.
    pub fn new() -> Self {
        Schema {
            nodes: vec![Node::Leaf, Node::Untyped],
        }
    }

    /// Adds a type and returns its id.
    pub fn add(&mut self, node: Node) -> TypeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Replaces the type `id` (for recursive types, added first as a placeholder).
    pub fn set(&mut self, id: TypeId, node: Node) {
        self.nodes[id] = node;
    }

    fn node(&self, id: TypeId) -> &Node {
        self.nodes.get(id).unwrap_or(&Node::Leaf)
    }
}

/// The type of a kind's objects: a schema and its root type; what callers hand the store.
#[derive(Debug, Clone)]
pub struct TypeRef {
    schema: Arc<Schema>,
    root: TypeId,
}

impl TypeRef {
    /// The type `root` of `schema`.
    pub fn new(schema: Arc<Schema>, root: TypeId) -> Self {
        Self { schema, root }
    }

    /// The deduced type of objects nothing describes.
    pub fn untyped() -> Self {
        static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
        Self::new(
            SCHEMA.get_or_init(|| Arc::new(Schema::new())).clone(),
            Schema::UNTYPED,
        )
    }

    pub(crate) fn root(&self) -> Ty<'_> {
        Ty {
            schema: &self.schema,
            id: self.root,
        }
    }
}

/// Why a value does not fit its type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TypedError {
    /// Two items of a set or map list with the same key.
    #[error("{path}: duplicate entries for key {key}")]
    Duplicate {
        /// The list.
        path: String,
        /// The key, as a path element.
        key: String,
    },
    /// A map-list item without one of its key fields.
    #[error(
        "{path}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingKey {
        /// The list.
        path: String,
        /// The key field.
        key: String,
    },
    /// A map-list item that is not an object, or a set item that is not a scalar.
    #[error("{path}: expected an item of a {expected} list, got {got}")]
    BadItem {
        /// The list.
        path: String,
        /// `map` or `set`.
        expected: &'static str,
        /// The item, as JSON.
        got: String,
    },
}

/// A position in a schema.
#[derive(Clone, Copy)]
pub(crate) struct Ty<'a> {
    schema: &'a Schema,
    id: TypeId,
}

/// How a value is walked at a type.
enum Walk<'a> {
    Leaf,
    Object {
        named: Option<&'a HashMap<String, Field>>,
        values: TypeId,
        strukt: bool,
    },
    List(TypeId, &'a ListType),
}

impl<'a> Ty<'a> {
    fn at(&self, id: TypeId) -> Ty<'a> {
        Ty {
            schema: self.schema,
            id,
        }
    }

    /// How values `a` and `b` (either may be absent or null) walk at this type; values of the
    /// wrong JSON type are leaves.
    fn walk(&self, a: Option<&Value>, b: Option<&Value>) -> Walk<'a> {
        let fits = |want: fn(&Value) -> bool| {
            [a, b].into_iter().flatten().all(|v| v.is_null() || want(v))
                && [a, b].into_iter().flatten().any(|v| !v.is_null())
        };
        match self.schema.node(self.id) {
            Node::Struct(fields) if fits(Value::is_object) => Walk::Object {
                named: Some(fields),
                values: Schema::LEAF,
                strukt: true,
            },
            Node::Map(values) if fits(Value::is_object) => Walk::Object {
                named: None,
                values: *values,
                strukt: false,
            },
            Node::Untyped if fits(Value::is_object) => Walk::Object {
                named: None,
                values: Schema::UNTYPED,
                strukt: false,
            },
            Node::List(items, kind) if *kind != ListType::Atomic && fits(Value::is_array) => {
                Walk::List(*items, kind)
            }
            _ => Walk::Leaf,
        }
    }

    /// The type of `key` in an object, and its declaration if it is a struct field.
    fn child(
        named: Option<&HashMap<String, Field>>,
        values: TypeId,
        key: &str,
    ) -> (TypeId, Option<Field>) {
        match named {
            Some(fields) => match fields.get(key) {
                Some(f) => (f.ty, Some(*f)),
                None => (Schema::LEAF, None),
            },
            None => (values, None),
        }
    }
}

/// The path element of a list item.
fn item_element(
    kind: &ListType,
    item: &Value,
    path: &dyn Fn() -> String,
) -> Result<PathElement, TypedError> {
    match kind {
        ListType::Map(keys) => {
            let Value::Object(obj) = item else {
                return Err(TypedError::BadItem {
                    path: path(),
                    expected: "map",
                    got: item.to_string(),
                });
            };
            let mut fields = Vec::with_capacity(keys.len());
            for (key, default) in keys {
                let value = match (obj.get(key), default) {
                    (Some(v), _) => v.clone(),
                    (None, Some(d)) => d.clone(),
                    (None, None) => {
                        return Err(TypedError::MissingKey {
                            path: path(),
                            key: key.clone(),
                        });
                    }
                };
                fields.push((key.clone(), OrdValue(value)));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListType::Set if !item.is_object() && !item.is_array() => {
            Ok(PathElement::Value(OrdValue(item.clone())))
        }
        ListType::Set => Err(TypedError::BadItem {
            path: path(),
            expected: "set",
            got: item.to_string(),
        }),
        ListType::Atomic => unreachable!("atomic lists are leaves"),
    }
}

/// The path elements of a list's items, and where each first occurs; `allow_duplicates` keeps
/// going past a repeated key (live objects may hold them), which then maps to `None`.
#[allow(clippy::type_complexity)]
fn index_items<'v>(
    kind: &ListType,
    items: &'v [Value],
    allow_duplicates: bool,
    path: &dyn Fn() -> String,
) -> Result<(Vec<PathElement>, BTreeMap<PathElement, Option<&'v Value>>), TypedError> {
    let mut pes = Vec::with_capacity(items.len());
    let mut seen = BTreeMap::new();
    for item in items {
        let pe = item_element(kind, item, path)?;
        if let Some(slot) = seen.get_mut(&pe) {
            if !allow_duplicates {
                return Err(TypedError::Duplicate {
                    path: path(),
                    key: pe.to_string(),
                });
            }
            *slot = None;
        } else {
            seen.insert(pe.clone(), Some(item));
        }
        pes.push(pe);
    }
    Ok((pes, seen))
}

/// The set of fields a value sets (upstream `ToFieldSet`): leaves, map entries and list items
/// are members; struct fields only when null or empty, since their children say the rest.
pub(crate) fn to_field_set(ty: Ty<'_>, value: &Value) -> Result<FieldSet, TypedError> {
    let mut path = Vec::new();
    let mut set = field_set_of(ty, value, &mut path)?;
    set.member = false;
    Ok(set)
}

fn field_set_of(
    ty: Ty<'_>,
    value: &Value,
    path: &mut Vec<PathElement>,
) -> Result<FieldSet, TypedError> {
    let mut set = FieldSet::default();
    match ty.walk(Some(value), None) {
        Walk::Leaf => set.member = true,
        Walk::Object { named, values, .. } => {
            for (key, v) in value.as_object().into_iter().flatten() {
                let (child, declared) = Ty::child(named, values, key);
                let pe = PathElement::Field(key.clone());
                path.push(pe.clone());
                let mut sub = field_set_of(ty.at(child), v, path)?;
                path.pop();
                if declared.is_none() || v.is_null() || v.as_object().is_some_and(Map::is_empty) {
                    sub.member = true;
                }
                if sub.member || !sub.children.is_empty() {
                    set.children.insert(pe, sub);
                }
            }
        }
        Walk::List(items, kind) => {
            let list = value.as_array().map(Vec::as_slice).unwrap_or_default();
            let p = path_string(path);
            let (pes, _) = index_items(kind, list, false, &|| p.clone())?;
            for (pe, item) in pes.into_iter().zip(list) {
                path.push(pe.clone());
                let mut sub = field_set_of(ty.at(items), item, path)?;
                path.pop();
                sub.member = true;
                set.children.insert(pe, sub);
            }
        }
    }
    Ok(set)
}

fn path_string(path: &[PathElement]) -> String {
    super::fieldpath::Path(path).to_string()
}

/// What changed between two versions of an object (upstream `typed.Comparison`).
#[derive(Debug, Default)]
pub struct Comparison {
    /// Paths only the new version has.
    pub added: FieldSet,
    /// Leaves whose value changed.
    pub modified: FieldSet,
    /// Paths only the old version has.
    pub removed: FieldSet,
}

impl Comparison {
    fn adopt(&mut self, pe: PathElement, child: Comparison) {
        for (mine, theirs) in [
            (&mut self.added, child.added),
            (&mut self.modified, child.modified),
            (&mut self.removed, child.removed),
        ] {
            if theirs.member || !theirs.children.is_empty() {
                mine.children.insert(pe.clone(), theirs);
            }
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        [&self.added, &self.modified, &self.removed]
            .iter()
            .all(|s| !s.member && s.is_empty())
    }
}

/// Compares `old` with `new` (absent `old`: a create).
///
/// A struct field present on one side only gets no mark of its own when it has fields, nor
/// does a field that is always present: Go decodes non-pointer structs and fields without
/// omitempty as present, so upstream sees them on both sides and only their contents change.
pub(crate) fn compare(ty: Ty<'_>, old: Option<&Value>, new: Option<&Value>) -> Comparison {
    let mut out = compare_at(ty, old, new, None);
    // The root is the object itself, never a field.
    out.added.member = false;
    out.modified.member = false;
    out.removed.member = false;
    out
}

fn compare_at(
    ty: Ty<'_>,
    old: Option<&Value>,
    new: Option<&Value>,
    declared: Option<Field>,
) -> Comparison {
    let mut out = Comparison::default();
    // Most of an updated object is unchanged: equal values need no walk.
    if let (Some(a), Some(b)) = (old, new)
        && a == b
    {
        return out;
    }
    match ty.walk(old, new) {
        Walk::Leaf => {
            match (old, new) {
                (None, Some(_)) => out.added.member = true,
                (Some(_), None) => out.removed.member = true,
                (Some(a), Some(b)) if a != b => out.modified.member = true,
                _ => {}
            }
            return out;
        }
        Walk::Object {
            named,
            values,
            strukt,
        } => {
            let (a, b) = (
                old.and_then(Value::as_object),
                new.and_then(Value::as_object),
            );
            let visit = |key: &String, out: &mut Comparison| {
                let (child, declared) = Ty::child(named, values, key);
                let sub = compare_at(
                    ty.at(child),
                    a.and_then(|m| m.get(key)),
                    b.and_then(|m| m.get(key)),
                    declared,
                );
                if !sub.is_empty() {
                    out.adopt(PathElement::Field(key.clone()), sub);
                }
            };
            for key in a.into_iter().flatten().map(|(k, _)| k) {
                visit(key, &mut out);
            }
            for key in b.into_iter().flatten().map(|(k, _)| k) {
                if !a.is_some_and(|m| m.contains_key(key)) {
                    visit(key, &mut out);
                }
            }
            let has_fields =
                |v: Option<&Value>| v.and_then(Value::as_object).is_some_and(|m| !m.is_empty());
            if declared.is_some() && strukt && (has_fields(old) || has_fields(new)) {
                return out;
            }
        }
        Walk::List(items, kind) => {
            fn index<'v>(
                kind: &ListType,
                v: Option<&'v Value>,
            ) -> Result<BTreeMap<PathElement, Option<&'v Value>>, TypedError> {
                let list = v
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                index_items(kind, list, true, &String::new).map(|(_, seen)| seen)
            }
            let (Ok(a), Ok(b)) = (index(kind, old), index(kind, new)) else {
                // Items without keys cannot be told apart: compare the list as a whole.
                out.modified.member = true;
                return out;
            };
            for (pe, item) in &a {
                let sub = compare_at(ty.at(items), *item, b.get(pe).copied().flatten(), None);
                if !sub.is_empty() {
                    out.adopt(pe.clone(), sub);
                }
            }
            for (pe, item) in b {
                if !a.contains_key(&pe) {
                    let sub = compare_at(ty.at(items), None, item, None);
                    out.adopt(pe, sub);
                }
            }
        }
    }
    if declared.is_some_and(|f| f.always_present) {
        return out;
    }
    match (old, new) {
        (None, Some(_)) => out.added.member = true,
        (Some(_), None) => out.removed.member = true,
        _ => {}
    }
    out
}

/// Merges an applied configuration into a live value (upstream `TypedValue.Merge`): the
/// configuration wins at leaves, objects merge key by key, set and map lists item by item in
/// the configuration's order with live-only items kept in place.
pub(crate) fn merge(ty: Ty<'_>, live: Option<&Value>, config: &Value) -> Result<Value, TypedError> {
    let mut path = Vec::new();
    merge_at(ty, live, config, &mut path)
}

fn merge_at(
    ty: Ty<'_>,
    live: Option<&Value>,
    config: &Value,
    path: &mut Vec<PathElement>,
) -> Result<Value, TypedError> {
    match ty.walk(live, Some(config)) {
        Walk::Leaf => Ok(config.clone()),
        Walk::Object { named, values, .. } => {
            let Some(cfg) = config.as_object() else {
                return Ok(live.cloned().unwrap_or(Value::Null));
            };
            let mut out = live.and_then(Value::as_object).cloned().unwrap_or_default();
            for (key, v) in cfg {
                let (child, _) = Ty::child(named, values, key);
                path.push(PathElement::Field(key.clone()));
                let merged = merge_at(ty.at(child), out.get(key), v, path)?;
                path.pop();
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        Walk::List(items, kind) => {
            let Some(rhs) = config.as_array() else {
                return Ok(live.cloned().unwrap_or(Value::Null));
            };
            let lhs = live
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let p = path_string(path);
            let (rpes, robs) = index_items(kind, rhs, false, &|| p.clone())?;
            let (lpes, lobs) = index_items(kind, lhs, true, &|| p.clone())?;
            merge_lists(ty.at(items), lhs, &lpes, &lobs, &rpes, &robs, path).map(Value::Array)
        }
    }
}

/// The item order of upstream's `mergingWalker.visitListItems`.
#[allow(clippy::too_many_arguments)]
fn merge_lists(
    items: Ty<'_>,
    lhs: &[Value],
    lpes: &[PathElement],
    lobs: &BTreeMap<PathElement, Option<&Value>>,
    rpes: &[PathElement],
    robs: &BTreeMap<PathElement, Option<&Value>>,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, TypedError> {
    let mut out = Vec::with_capacity(lpes.len().max(rpes.len()));
    let mut shared = rpes.iter().filter(|pe| lobs.contains_key(*pe));
    let mut next_shared = shared.next();
    let mut merged_rhs = std::collections::BTreeSet::new();
    let mut merge_item = |pe: &PathElement,
                          l: Option<&Value>,
                          r: Option<&Value>,
                          out: &mut Vec<Value>|
     -> Result<(), TypedError> {
        match r {
            Some(r) => {
                path.push(pe.clone());
                let v = merge_at(items, l, r, path)?;
                path.pop();
                out.push(v);
            }
            None => out.extend(l.cloned()),
        }
        Ok(())
    };
    let (mut li, mut ri) = (0, 0);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                merged_rhs.insert(pe.clone());
                merge_item(
                    pe,
                    lobs.get(pe).copied().flatten(),
                    robs.get(pe).copied().flatten(),
                    &mut out,
                )?;
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if robs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let pe = &lpes[li];
            if !robs.contains_key(pe) {
                merge_item(pe, Some(&lhs[li]), None, &mut out)?;
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            merged_rhs.insert(pe.clone());
            merge_item(
                pe,
                lobs.get(pe).copied().flatten(),
                robs.get(pe).copied().flatten(),
                &mut out,
            )?;
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// Removes the members of `set` from `value` (upstream `RemoveItems`).
pub(crate) fn remove_items(ty: Ty<'_>, value: &mut Value, set: &FieldSet) {
    match ty.walk(Some(value), None) {
        Walk::Leaf => {}
        Walk::Object { named, values, .. } => {
            let Some(obj) = value.as_object_mut() else {
                return;
            };
            for (pe, sub) in &set.children {
                let PathElement::Field(key) = pe else {
                    continue;
                };
                if sub.member {
                    obj.remove(key);
                } else if let Some(v) = obj.get_mut(key) {
                    let (child, _) = Ty::child(named, values, key);
                    remove_items(ty.at(child), v, sub);
                }
            }
        }
        Walk::List(items, kind) => {
            let Some(list) = value.as_array_mut() else {
                return;
            };
            list.retain_mut(|item| {
                let Ok(pe) = item_element(kind, item, &String::new) else {
                    return true;
                };
                match set.children.get(&pe) {
                    Some(sub) if sub.member => false,
                    Some(sub) => {
                        remove_items(ty.at(items), item, sub);
                        true
                    }
                    None => true,
                }
            });
        }
    }
}

/// Makes every struct field with members below it a member itself (upstream
/// `EnsureNamedFieldsAreMembers`), so that pruning removes a dropped struct as a whole.
pub(crate) fn ensure_named_fields_are_members(ty: Ty<'_>, set: &mut FieldSet) {
    for (pe, sub) in set.children.iter_mut() {
        let child = match (ty.schema.node(ty.id), pe) {
            (Node::Struct(fields), PathElement::Field(name)) => {
                let id = fields.get(name).map_or(Schema::LEAF, |f| f.ty);
                if !sub.children.is_empty() && fields.contains_key(name) {
                    sub.member = true;
                }
                id
            }
            (Node::Map(values), _) => *values,
            (Node::List(items, _), _) => *items,
            (Node::Untyped, _) => Schema::UNTYPED,
            _ => Schema::LEAF,
        };
        ensure_named_fields_are_members(ty.at(child), sub);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// `{metadata: {labels: map}, spec: {replicas, template: {containers: map list by name,
    /// finalizers: set, args: atomic}}}`.
    fn fields(list: &[(&str, TypeId)]) -> HashMap<String, Field> {
        list.iter()
            .map(|(n, ty)| {
                (
                    n.to_string(),
                    Field {
                        ty: *ty,
                        always_present: false,
                    },
                )
            })
            .collect()
    }

    pub(crate) fn sample() -> TypeRef {
        let mut s = Schema::new();
        let labels = s.add(Node::Map(Schema::LEAF));
        let meta = s.add(Node::Struct(fields(&[
            ("labels", labels),
            ("name", Schema::LEAF),
        ])));
        let args = s.add(Node::List(Schema::LEAF, ListType::Atomic));
        let container = s.add(Node::Struct(fields(&[
            ("name", Schema::LEAF),
            ("image", Schema::LEAF),
            ("args", args),
        ])));
        let containers = s.add(Node::List(
            container,
            ListType::Map(vec![("name".into(), None)]),
        ));
        let finalizers = s.add(Node::List(Schema::LEAF, ListType::Set));
        let spec = s.add(Node::Struct(fields(&[
            ("replicas", Schema::LEAF),
            ("containers", containers),
            ("finalizers", finalizers),
        ])));
        let root = s.add(Node::Struct(fields(&[("metadata", meta), ("spec", spec)])));
        TypeRef::new(Arc::new(s), root)
    }

    #[test]
    fn field_sets_mark_leaves_map_entries_and_list_items_but_not_struct_fields() {
        let t = sample();
        let set = to_field_set(
            t.root(),
            &json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "args": ["x"]}], "finalizers": ["f"]}}),
        )
        .unwrap();
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:a": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:args": {}, "f:name": {}}},
                           "f:finalizers": {"v:\"f\"": {}}}
            })
        );
    }

    #[test]
    fn duplicate_keys_in_a_configuration_are_refused() {
        let t = sample();
        let err = to_field_set(
            t.root(),
            &json!({"spec": {"containers": [{"name": "c"}, {"name": "c"}]}}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#".spec.containers: duplicate entries for key [name="c"]"#
        );
    }

    #[test]
    fn comparison_marks_added_maps_but_not_structs_with_fields() {
        let t = sample();
        let c = compare(
            t.root(),
            None,
            Some(&json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1}})),
        );
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {"f:replicas": {}}})
        );
        let c = compare(
            t.root(),
            Some(&json!({"spec": {"replicas": 1, "containers": [{"name": "c", "image": "a"}]}})),
            Some(&json!({"spec": {"replicas": 2, "containers": [{"name": "c", "image": "a"}]}})),
        );
        assert_eq!(
            c.modified.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert!(c.added.is_empty() && c.removed.is_empty());
    }

    #[test]
    fn merge_keeps_live_items_in_place_and_takes_config_values() {
        let t = sample();
        let live = json!({"spec": {"replicas": 1, "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], "finalizers": ["p"]}});
        let config = json!({"spec": {"containers": [{"name": "a", "image": "z"}, {"name": "c"}], "finalizers": ["q"]}});
        let out = merge(t.root(), Some(&live), &config).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"replicas": 1, "containers": [{"name": "a", "image": "z"}, {"name": "b", "image": "y"}, {"name": "c"}], "finalizers": ["p", "q"]}})
        );
    }

    #[test]
    fn remove_items_drops_members_and_list_items() {
        let t = sample();
        let mut v = json!({"spec": {"replicas": 1, "containers": [{"name": "a"}, {"name": "b"}]}});
        let set = to_field_set(
            t.root(),
            &json!({"spec": {"replicas": 1, "containers": [{"name": "b"}]}}),
        )
        .unwrap();
        remove_items(t.root(), &mut v, &set);
        assert_eq!(v, json!({"spec": {"containers": [{"name": "a"}]}}));
    }
}
