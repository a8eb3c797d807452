//! Strategic merge patch, with the semantics of upstream's
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (`StrategicMergeMapPatch`): maps merge
//! recursively, lists merge by key or as sets where the schema says `patchStrategy: merge` and
//! are replaced otherwise, and the `$patch`, `$retainKeys`, `$setElementOrder/…` and
//! `$deleteFromPrimitiveList/…` directives are honoured.

use super::{PatchError, Result};
use crate::registry::schema::graph::{FieldMeta, Ty};
use serde_json::{Map, Value};
use std::mem::discriminant;

const DIRECTIVE: &str = "$patch";
const REPLACE: &str = "replace";
const DELETE: &str = "delete";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Applies a strategic merge `patch` to `original`, an object of type `ty`.
pub(super) fn strategic_merge_patch(
    original: Value,
    patch: Map<String, Value>,
    ty: Ty,
) -> Result<Value> {
    let original = match original {
        Value::Object(map) => map,
        // Upstream decodes the stored object into a map first; anything else starts empty.
        _ => Map::new(),
    };
    merge_map(original, patch, Some(ty)).map(Value::Object)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Option<Ty>,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(unknown_directive(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, ty)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (
                extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)
                    .ok_or(PatchError::BadPrimitiveListFormat)?
                    .to_string(),
                true,
            )
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let (field_ty, meta) = field(ty, &key);
        let Some(original_value) = original.remove(&key) else {
            // Upstream would store the deletion list itself as the field here; deleting from
            // a list that does not exist is a no-op instead.
            if !is_delete_list {
                original.insert(key, new_value(patch_value, field_ty, meta)?);
            }
            continue;
        };
        let merged = if discriminant(&original_value) != discriminant(&patch_value) {
            patch_value
        } else {
            match (original_value, patch_value) {
                (Value::Object(o), Value::Object(p)) if !meta.replace => {
                    Value::Object(merge_map(o, p, field_ty)?)
                }
                (Value::Array(o), Value::Array(p)) if meta.merge => Value::Array(merge_slice(
                    o,
                    p,
                    field_ty.and_then(|t| t.element()),
                    meta.merge_key.unwrap_or(""),
                    is_delete_list,
                )?),
                (_, p) => p,
            }
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A value the patch adds where the original has none: merged into an empty value so that
/// directives and nulls inside it are applied rather than stored (upstream drops them when it
/// decodes the result into a typed object; a `Value` would keep them).
fn new_value(patch_value: Value, ty: Option<Ty>, meta: FieldMeta) -> Result<Value> {
    Ok(match patch_value {
        Value::Object(p) if !meta.replace => Value::Object(merge_map(Map::new(), p, ty)?),
        Value::Array(p) if meta.merge => Value::Array(merge_slice(
            Vec::new(),
            p,
            ty.and_then(|t| t.element()),
            meta.merge_key.unwrap_or(""),
            false,
        )?),
        other => other,
    })
}

fn field(ty: Option<Ty>, key: &str) -> (Option<Ty>, FieldMeta<'static>) {
    match ty {
        Some(ty) => ty.field(key),
        None => (None, FieldMeta::default()),
    }
}

/// `$deleteFromPrimitiveList/finalizers` → `finalizers`; `None` when the prefix is not
/// followed by exactly one `/`.
fn extract_key<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let (head, rest) = key.split_once('/')?;
    (head == prefix).then_some(rest)
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let retained = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(key) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Merges each list named by a `$setElementOrder/<list>` directive together with the patch's
/// `<list>`, then orders the result: `$setElementOrder` first, then the live order.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Option<Ty>,
) -> Result<()> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let order = patch.remove(&directive).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(wrong_type("[]interface {}", &order));
        };
        let key = extract_key(&directive, SET_ELEMENT_ORDER)
            .ok_or(PatchError::BadSetElementOrderFormat)?
            .to_string();
        let original_list = match original.get(&key) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(wrong_type("[]interface {}", other)),
        };
        let patch_list = match patch.remove(&key) {
            None => None,
            Some(Value::Array(list)) => Some(list),
            Some(other) => return Err(wrong_type("[]interface {}", &other)),
        };
        let (field_ty, meta) = field(ty, &key);
        let merge_key = meta.merge_key.unwrap_or("");
        validate_patch_with_set_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;

        let merged = match (&original_list, patch_list.clone()) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => p,
            (Some(o), Some(p)) if meta.merge => merge_slice(
                o.clone(),
                p,
                field_ty.and_then(|t| t.element()),
                merge_key,
                false,
            )?,
            (Some(_), Some(p)) => p,
            (None, None) => continue,
        };
        let original_list = original_list.unwrap_or_default();
        let patch_list = patch_list.unwrap_or_default();
        let Some(kind) = element_kind(&[&original_list, &patch_list])? else {
            original.insert(key, Value::Array(merged));
            continue;
        };
        let (patch_items, server_only) = partition(merged, &order, merge_key, kind)?;
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &original_list,
            merge_key,
            kind,
        )?;
        original.insert(key, Value::Array(ordered));
    }
    Ok(())
}

/// Checks that the patch list's items appear in the `$setElementOrder` list, in its order.
fn validate_patch_with_set_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        let mut kept = Vec::new();
        for item in patch {
            let Value::Object(map) = item else {
                return Err(wrong_type("map[string]interface {}", item));
            };
            if map.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE) {
                kept.push(item);
            }
        }
        kept
    };
    let (mut p, mut o) = (0, 0);
    while p < non_delete.len() && o < order.len() {
        if non_delete[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(non_delete[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < non_delete.len() && o >= order.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: Value::Array(patch.to_vec()).to_string(),
            order: Value::Array(order.to_vec()).to_string(),
        });
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let l = merge_key_value(left, merge_key)?;
    let r = merge_key_value(right, merge_key)?;
    Ok(l == r)
}

fn merge_key_value<'a>(item: &'a Value, merge_key: &str) -> Result<&'a Value> {
    let Value::Object(map) = item else {
        return Err(wrong_type("map[string]interface {}", item));
    };
    map.get(merge_key)
        .ok_or_else(|| missing_merge_key(item, merge_key))
}

/// What the elements of a list are; lists in a merged list must all be of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Scalar(std::mem::Discriminant<Value>),
}

/// The kind shared by every element of `lists`, `None` when they are all empty.
fn element_kind(lists: &[&[Value]]) -> Result<Option<Kind>> {
    let mut kind = None;
    for value in lists.iter().flat_map(|l| l.iter()) {
        let this = match value {
            Value::Array(_) => return Err(PatchError::ListOfLists),
            Value::Object(_) => Kind::Map,
            other => Kind::Scalar(discriminant(other)),
        };
        match kind {
            None => kind = Some(this),
            Some(k) if k != this => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::WrongType(format!(
                    "list element types are not identical: {}",
                    Value::Array(all)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    element_ty: Option<Ty>,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    let Some(kind) = element_kind(&[&original, &patch])? else {
        return Ok(original);
    };
    let (original, patch, merged) = if kind != Kind::Map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        // Merging primitive lists is a set union; the order is fixed below.
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::WrongType(
                "cannot merge lists without merge key for type map".into(),
            ));
        }
        let (original, patch) = merge_slice_special_elements(original, patch, merge_key)?;
        let merged = merge_slice_by_key(original.clone(), &patch, merge_key, element_ty)?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = partition(merged, &patch, merge_key, kind)?;
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// Applies the `$patch` list items: `delete` removes the elements with its key, `replace`
/// makes the rest of the patch list the whole list. Returns the new original and the patch
/// without directive items.
fn merge_slice_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let value = merge_key_value(&item, merge_key)?;
                original.retain(|o| o.get(merge_key) != Some(value));
            }
            // Keep going: other directive items must still be pruned from the patch.
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(PatchError::MergeDirectiveInList),
            _ => {
                let map = item.as_object().cloned().unwrap_or_default();
                return Err(unknown_directive(directive, &map));
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merges each patch element into the original element with the same merge key value, or
/// appends it.
fn merge_slice_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    element_ty: Option<Ty>,
) -> Result<Vec<Value>> {
    for item in patch {
        let value = merge_key_value(item, merge_key)?;
        let mut found = None;
        for (i, o) in original.iter().enumerate() {
            let Value::Object(map) = o else {
                return Err(PatchError::WrongType(format!(
                    "value for key {i} is not a map."
                )));
            };
            if map.get(merge_key) == Some(value) {
                found = Some(i);
                break;
            }
        }
        let Value::Object(patch_map) = item.clone() else {
            return Err(wrong_type("map[string]interface {}", item));
        };
        match found {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut original[i]) else {
                    unreachable!("checked to be a map above");
                };
                original[i] = Value::Object(merge_map(o, patch_map, element_ty)?);
            }
            None => original.push(Value::Object(merge_map(Map::new(), patch_map, element_ty)?)),
        }
    }
    Ok(original)
}

/// Splits `list` into the items present in `by` and the others, keeping their order.
fn partition(
    list: Vec<Value>,
    by: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = Vec::with_capacity(list.len());
    let mut absent = Vec::new();
    for item in list {
        let found = if kind == Kind::Map {
            let value = merge_key_value(&item, merge_key)?;
            let mut found = false;
            for candidate in by {
                if !candidate.is_object() {
                    return Err(wrong_type("map[string]interface {}", candidate));
                }
                if candidate.get(merge_key) == Some(value) {
                    found = true;
                    break;
                }
            }
            found
        } else {
            by.contains(&item)
        };
        if found {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// The position of `item` in `list`: by merge key value for maps, by value otherwise.
fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: Kind) -> Option<usize> {
    if kind == Kind::Map {
        let key = item.get(merge_key);
        list.iter().position(|v| v.get(merge_key) == key)
    } else {
        list.iter().position(|v| v == item)
    }
}

/// Orders patch items by the patch's order and server-only items by the live order, then
/// interleaves them keeping both relative orders, as upstream's `normalizeElementOrder`.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

fn normalize_slice_order(
    mut to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>> {
    if kind == Kind::Map {
        for item in to_sort.iter().chain(order.iter()) {
            merge_key_value(item, merge_key)?;
        }
    }
    // Items missing from `order` go last, in their current order; upstream's comparator is
    // not a strict order for them, and they do not occur once the patch has been validated.
    to_sort.sort_by_key(|item| index_of(order, item, merge_key, kind).unwrap_or(usize::MAX));
    Ok(to_sort)
}

/// Inserts each item of `left` into `right` before the first `right` item that comes after it
/// in `server_order`, keeping both lists' relative order.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = index_of(server_order, l, merge_key, kind);
                let ri = index_of(server_order, r, merge_key, kind);
                let left_first = matches!((li, ri), (Some(li), Some(ri)) if li < ri);
                if left_first {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

fn unknown_directive(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::UnknownDirective {
        directive: directive
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| directive.to_string()),
        item: Value::Object(map.clone()).to_string(),
    }
}

fn missing_merge_key(item: &Value, merge_key: &str) -> PatchError {
    PatchError::MissingMergeKey {
        item: item.to_string(),
        key: merge_key.to_string(),
    }
}

fn wrong_type(expected: &str, got: &Value) -> PatchError {
    PatchError::WrongType(format!("expected a {expected}, but received a {got}"))
}

#[cfg(test)]
mod tests {
    use super::super::{PatchType, apply_patch, schema_for_kind};
    use super::*;
    use crate::registry::schema::graph::{Graph, SchemaRef};
    use http::StatusCode;
    use serde_json::json;
    use std::sync::OnceLock;

    /// Upstream's test type `MergeItem` (patch_test.go), as a one-definition graph.
    fn merge_item() -> SchemaRef {
        static GRAPH: OnceLock<&'static Graph> = OnceLock::new();
        let graph = GRAPH.get_or_init(|| {
            let item = json!({"$ref": "#/$defs/mergeItem"});
            let ints = json!({"type": "array", "items": {"type": "integer"}});
            let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
            let defs = json!({
                "mergeItem": {"properties": {
                    "name": {"type": "string"}, "value": {"type": "string"}, "other": {"type": "string"},
                    "mergingList": {"type": "array", "items": item},
                    "nonMergingList": {"type": "array", "items": item},
                    "mergingIntList": ints, "nonMergingIntList": ints,
                    "mergeItemPtr": item, "simpleMap": strings,
                    "replacingItem": {"type": "object"},
                    "retainKeysMap": {"$ref": "#/$defs/retainKeysMergeItem"},
                    "retainKeysMergingList": {"type": "array", "items": item},
                }},
                "retainKeysMergeItem": {"properties": {
                    "name": {"type": "string"}, "value": {"type": "string"}, "other": {"type": "string"},
                    "simpleMap": strings, "mergingIntList": ints,
                    "mergingList": {"type": "array", "items": item},
                    "nonMergingList": {"type": "array", "items": item},
                }},
            });
            let meta = |_: &str, field: &str| {
                let (s, k) = match field {
                    "mergingList" | "mergeItemPtr" => ("merge", Some("name")),
                    "mergingIntList" => ("merge", None),
                    "replacingItem" => ("replace", None),
                    "retainKeysMap" => ("retainKeys", None),
                    "retainKeysMergingList" => ("merge,retainKeys", Some("name")),
                    _ => return None,
                };
                Some((s.to_string(), k.map(str::to_string)))
            };
            Box::leak(Box::new(Graph::from_definitions(
                defs.as_object().unwrap(),
                meta,
            )))
        });
        graph.root("mergeItem").unwrap()
    }

    fn smp(schema: &SchemaRef, original: Value, patch: Value) -> Result<Value> {
        apply_patch(
            PatchType::StrategicMerge,
            &original,
            patch.to_string().as_bytes(),
            Some(schema),
        )
    }

    fn item(original: Value, patch: Value) -> Value {
        smp(&merge_item(), original, patch).unwrap()
    }

    fn pod(original: Value, patch: Value) -> Value {
        smp(&schema_for_kind("", "v1", "Pod").unwrap(), original, patch).unwrap()
    }

    // Cases from upstream's customStrategicMergePatchTestCaseData.

    #[test]
    fn merging_a_primitive_merge_list_keeps_each_scalar_once() {
        let out = item(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
        );
        assert_eq!(out, json!({"mergingIntList": [1, 2, 3]}));
    }

    #[test]
    fn patch_delete_directive_on_a_nested_map_empties_it() {
        let out = item(
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
        );
        assert_eq!(out, json!({"simpleMap": {}}));
    }

    #[test]
    fn patch_replace_as_the_only_list_item_empties_a_merging_list() {
        let out = item(
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
        );
        assert_eq!(out, json!({"mergingList": []}));
    }

    #[test]
    fn patch_replace_on_the_root_map_keeps_only_the_patch_keys() {
        let out = item(
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
        );
        assert_eq!(out, json!({"other": "a"}));
        assert_eq!(
            item(json!({"name": 1}), json!({"$patch": "replace"})),
            json!({})
        );
    }

    #[test]
    fn patch_delete_items_remove_every_duplicate_with_that_key() {
        let out = item(
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
        );
        assert_eq!(out, json!({"mergingList": [{"name": 2, "value": "a"}]}));
    }

    #[test]
    fn a_retain_keys_map_merges_normally_without_the_directive() {
        let out = item(
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": null, "other": "b"}}),
        );
        assert_eq!(out, json!({"retainKeysMap": {"name": "foo", "other": "b"}}));
    }

    #[test]
    fn a_merging_list_takes_the_order_of_the_patch() {
        let out = item(
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
        );
        assert_eq!(
            out,
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]})
        );
    }

    #[test]
    fn server_only_items_keep_their_place_relative_to_patched_items() {
        let out = item(
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        );
        assert_eq!(
            out,
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]})
        );
        let out = item(
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
        );
        assert_eq!(out, json!({"mergingIntList": [2, 3, 1]}));
    }

    #[test]
    fn set_element_order_may_name_items_the_list_does_not_have() {
        let out = item(
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        );
        assert_eq!(
            out,
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})
        );
        let out = item(
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
        );
        assert_eq!(out, json!({"mergingIntList": [3, 1]}));
    }

    #[test]
    fn a_patch_list_out_of_set_element_order_is_rejected() {
        let err = smp(
            &merge_item(),
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("doesn't match"), "{err}");
        let err = smp(
            &merge_item(),
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("doesn't match"), "{err}");
    }

    #[test]
    fn a_patch_item_without_its_merge_key_is_an_internal_error_as_upstream() {
        let err = smp(
            &merge_item(),
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("does not contain declared merge key"),
            "{err}"
        );
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    // Cases from upstream's strategicMergePatchRawTestCases.

    #[test]
    fn delete_from_primitive_list_removes_every_copy_and_keeps_server_items() {
        let patch = json!({"$setElementOrder/mergingIntList": [1, 2],
                           "$deleteFromPrimitiveList/mergingIntList": [3]});
        assert_eq!(
            item(json!({"mergingIntList": [1, 2, 3, 3, 4]}), patch),
            json!({"mergingIntList": [1, 2, 4]})
        );
        let patch = json!({"$setElementOrder/mergingIntList": [1, 2, 4],
                           "$deleteFromPrimitiveList/mergingIntList": [3], "mergingIntList": [4]});
        assert_eq!(
            item(json!({"mergingIntList": [1, 2, 3]}), patch),
            json!({"mergingIntList": [1, 2, 4]})
        );
    }

    #[test]
    fn set_element_order_places_new_and_existing_items_of_a_merging_list() {
        let out = item(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
        );
        assert_eq!(
            out,
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
                                   {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]})
        );
    }

    #[test]
    fn null_values_delete_fields_and_are_not_stored_when_absent() {
        let out = item(
            json!({"name": 2, "other": "a"}),
            json!({"name": 1, "value": 1, "other": null}),
        );
        assert_eq!(out, json!({"name": 1, "value": 1}));
        let out = item(json!({}), json!({"simpleMap": {"key": null, "kept": "v"}}));
        assert_eq!(out, json!({"simpleMap": {"kept": "v"}}));
    }

    #[test]
    fn retain_keys_clears_fields_missing_from_the_list_and_rejects_patch_fields_outside_it() {
        let out = item(
            json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "b"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "simpleMap"], "simpleMap": {"k": "v"}}}),
        );
        assert_eq!(
            out,
            json!({"retainKeysMap": {"name": "foo", "simpleMap": {"k": "v"}}})
        );
        let err = smp(
            &merge_item(),
            json!({"retainKeysMap": {"name": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}}),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::BadRetainKeysFormat));
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_replace_strategy_field_is_replaced_rather_than_merged() {
        let out = item(
            json!({"replacingItem": {"a": 1, "b": 2}}),
            json!({"replacingItem": {"c": 3}}),
        );
        assert_eq!(out, json!({"replacingItem": {"c": 3}}));
    }

    #[test]
    fn lists_of_lists_in_a_merging_list_are_a_422() {
        let err = smp(
            &merge_item(),
            json!({"mergingIntList": [[1]]}),
            json!({"mergingIntList": [[2]]}),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn unknown_and_list_merge_directives_are_rejected() {
        let err = smp(
            &merge_item(),
            json!({}),
            json!({"simpleMap": {"$patch": "frob"}}),
        );
        assert!(matches!(err, Err(PatchError::UnknownDirective { .. })));
        let err = smp(
            &merge_item(),
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"name": 1, "$patch": "merge"}]}),
        );
        assert!(matches!(err, Err(PatchError::MergeDirectiveInList)));
        let err = smp(
            &merge_item(),
            json!({"mergingIntList": [1]}),
            json!({"$deleteFromPrimitiveList": [1]}),
        );
        assert!(matches!(err, Err(PatchError::BadPrimitiveListFormat)));
    }

    // Kubernetes types.

    fn nginx_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                         "finalizers": ["a.example.com/x", "b.example.com/y"]},
            "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25", "args": ["-g", "daemon off;"],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "busybox"}
            ]}
        })
    }

    #[test]
    fn containers_are_merged_by_name_keeping_unpatched_fields_and_containers() {
        let out = pod(
            nginx_pod(),
            json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}),
        );
        let containers = &out["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 2);
        assert_eq!(containers[0]["name"], "nginx");
        assert_eq!(containers[0]["image"], "nginx:1.27");
        assert_eq!(containers[0]["args"], json!(["-g", "daemon off;"]));
        assert_eq!(containers[1]["name"], "sidecar");
    }

    // Upstream's mergeSortedSlice puts patch items that the live list lacks before the
    // server-only items, so a new container comes first.
    #[test]
    fn a_new_container_goes_before_server_only_ones_and_a_patch_delete_item_removes_one() {
        let out = pod(
            nginx_pod(),
            json!({"spec": {"containers": [{"name": "debug", "image": "alpine"},
                                           {"name": "sidecar", "$patch": "delete"}]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["debug", "nginx"]);
    }

    #[test]
    fn ports_merge_by_container_port_and_env_merges_by_name() {
        let out = pod(
            nginx_pod(),
            json!({"spec": {"containers": [{"name": "nginx",
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}]}}),
        );
        let nginx = &out["spec"]["containers"][0];
        assert_eq!(
            nginx["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
        );
        assert_eq!(
            nginx["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
        );
    }

    #[test]
    fn a_list_without_merge_strategy_such_as_args_is_replaced_whole() {
        let out = pod(
            nginx_pod(),
            json!({"spec": {"containers": [{"name": "nginx", "args": ["-T"]}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["-T"]));
    }

    #[test]
    fn null_deletes_a_label_and_other_labels_stay() {
        let out = pod(
            nginx_pod(),
            json!({"metadata": {"labels": {"tier": null, "new": "x"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
    }

    #[test]
    fn patch_replace_on_a_map_replaces_the_labels() {
        let out = pod(
            nginx_pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes_one() {
        let out = pod(
            nginx_pod(),
            json!({"metadata": {"finalizers": ["b.example.com/y", "c.example.com/z"]}}),
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a.example.com/x", "b.example.com/y", "c.example.com/z"])
        );
        let out = pod(
            nginx_pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b.example.com/y"]));
        let out = pod(
            json!({"metadata": {"name": "web"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}}),
        );
        assert_eq!(out["metadata"], json!({"name": "web"}));
    }

    #[test]
    fn set_element_order_reorders_containers() {
        let out = pod(
            nginx_pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "nginx"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.25");
    }

    #[test]
    fn retain_keys_switches_a_deployment_from_rolling_update_to_recreate() {
        let deployment = schema_for_kind("apps", "v1", "Deployment").unwrap();
        let original = json!({"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}});
        let out = smp(
            &deployment,
            original,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"replicas": 2, "strategy": {"type": "Recreate"}}})
        );
    }

    #[test]
    fn retain_keys_inside_a_volume_item_swaps_its_source() {
        let out = pod(
            json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]}}),
            json!({"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"],
                                          "hostPath": {"path": "/srv"}}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/srv"}}, {"name": "cfg", "configMap": {"name": "c"}}])
        );
    }

    #[test]
    fn an_unknown_field_under_a_typed_object_is_merged_as_a_plain_map() {
        let out = pod(
            json!({"spec": {"futureField": {"a": 1, "list": [1, 2]}}}),
            json!({"spec": {"futureField": {"b": 2, "list": [3]}}}),
        );
        assert_eq!(
            out["spec"]["futureField"],
            json!({"a": 1, "b": 2, "list": [3]})
        );
    }

    #[test]
    fn conditions_merge_by_type_and_owner_references_by_uid() {
        let out = pod(
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "rs"}]},
                   "status": {"conditions": [{"type": "Ready", "status": "False"},
                                             {"type": "Initialized", "status": "True"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "other"}]},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "2", "name": "other"}, {"uid": "1", "name": "rs"}])
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let service = schema_for_kind("", "v1", "Service").unwrap();
        let out = smp(
            &service,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
    }

    #[test]
    fn a_strategic_patch_that_is_not_an_object_is_a_400() {
        let pod_schema = schema_for_kind("", "v1", "Pod").unwrap();
        let err = apply_patch(
            PatchType::StrategicMerge,
            &json!({}),
            b"[]",
            Some(&pod_schema),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let err = apply_patch(
            PatchType::StrategicMerge,
            &json!({}),
            b"{",
            Some(&pod_schema),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }
}
