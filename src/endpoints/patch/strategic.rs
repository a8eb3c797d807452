//! Strategic merge patch, with the semantics of upstream's
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (`StrategicMergeMapPatch`): maps merge
//! recursively, lists merge by key or as sets where the schema says `patchStrategy: merge` and
//! are replaced otherwise, and the `$patch`, `$retainKeys`, `$setElementOrder/…` and
//! `$deleteFromPrimitiveList/…` directives are honoured.

use super::schema::{FieldMeta, Ty};
use super::{PatchError, Result};
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
