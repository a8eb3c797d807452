//! Evaluating compiled rules on an object: the walk over the value and its old value (correlating
//! list items and map entries), the conversion of JSON to CEL values, and failures reported as
//! field errors worded as upstream's.

use super::library::env;
use super::schema::{Node, escape, metadata_node};
use crate::registry::errors::{ErrorList, FieldError};
use ::cel::objects::{Key, Map, OptionalValue};
use ::cel::{Context, ExecutionError, Program, Value};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// The longest evaluated messageExpression upstream accepts (`MaxEvaluatedMessageExpressionSizeBytes`).
const MAX_MESSAGE_EXPRESSION_BYTES: usize = 5 * 1024;

/// Validates the value `obj` at `path` against `node` and everything below it.
pub(super) fn validate_node(
    node: &Node,
    path: &str,
    obj: &Json,
    old: Option<&Json>,
    errs: &mut ErrorList,
) {
    if !node.has_rules || obj.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !node.rules.is_empty() {
        eval_rules(node, path, obj, old, errs);
    }
    match obj {
        Json::Array(items) => {
            let Some(item_node) = &node.items else { return };
            let old_items = old.and_then(Json::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = old_items.and_then(|o| correlate(node, item_node, item, o));
                validate_node(item_node, &format!("{path}[{i}]"), item, old_item, errs);
            }
        }
        Json::Object(map) => {
            // Maps correlate by key: granular and atomic ones both do (upstream's MapIsCorrelatable).
            let correlatable =
                matches!(node.map_type.as_deref(), None | Some("granular" | "atomic"));
            let old_map = old.and_then(Json::as_object).filter(|_| correlatable);
            for (k, v) in map {
                let old_v = old_map.and_then(|o| o.get(k));
                if let Some(child) = node.properties.get(k) {
                    validate_node(child, &child_path(path, k), v, old_v, errs);
                } else if let Some(add) = &node.additional {
                    validate_node(add, &format!("{path}[{k}]"), v, old_v, errs);
                }
            }
        }
        _ => {}
    }
}

/// The old item a map-type list's `item` correlates with (same values of the map keys), if any.
fn correlate<'o>(list: &Node, items: &Node, item: &Json, old: &'o [Json]) -> Option<&'o Json> {
    if list.list_type.as_deref() != Some("map") || list.map_keys.is_empty() {
        return None;
    }
    let key_of = |v: &Json| -> Vec<Option<Json>> {
        list.map_keys
            .iter()
            .map(|k| {
                v.get(k)
                    .cloned()
                    .or_else(|| items.properties.get(k).and_then(|p| p.default.clone()))
            })
            .collect()
    };
    let key = key_of(item);
    old.iter().find(|o| key_of(o) == key)
}

fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The path as upstream prints it: the root is `<nil>`.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_string()
    } else {
        path.to_string()
    }
}

/// Evaluates the rules of `node` on `obj`.
fn eval_rules(node: &Node, path: &str, obj: &Json, old: Option<&Json>, errs: &mut ErrorList) {
    let self_val = to_cel(obj, Some(node));
    let old_val = old.map(|o| to_cel(o, Some(node)));
    for rule in &node.rules {
        let optional = rule.rule.optional_old_self == Some(true);
        if rule.uses_old_self && old_val.is_none() && !optional {
            continue;
        }
        let mut ctx = Context::with_env(env().clone());
        ctx.add_variable_from_value("self", self_val.clone());
        let old_binding = match (&old_val, optional) {
            (Some(v), false) => Some(v.clone()),
            (Some(v), true) => Some(Value::Opaque(Arc::new(OptionalValue::of(v.clone())))),
            (None, true) => Some(Value::Opaque(Arc::new(OptionalValue::none()))),
            (None, false) => None,
        };
        if let Some(v) = old_binding {
            ctx.add_variable_from_value("oldSelf", v);
        }
        let rule_str = rule_error_string(&rule.rule);
        match rule.program.execute(&ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let at = match &rule.field_path {
                    Some(fp) => child_path(path, fp),
                    None => path.to_string(),
                };
                let detail = rule
                    .message
                    .as_ref()
                    .and_then(|m| message_expression(m, &self_val, old_val.as_ref()))
                    .unwrap_or_else(|| match rule.rule.message.as_deref() {
                        Some(m) if !m.is_empty() => m.trim().to_string(),
                        _ => format!("failed rule: {rule_str}"),
                    });
                errs.push(error_for_reason(
                    rule.rule.reason.as_deref(),
                    shown(&at),
                    &node.ty,
                    detail,
                ));
            }
            Ok(_) => errs.push(FieldError::invalid(
                shown(path),
                node.ty.as_str(),
                "rule compile error: cel expression must evaluate to a bool",
            )),
            Err(ExecutionError::NoSuchOverload(_)) => errs.push(FieldError::invalid(
                shown(path),
                node.ty.as_str(),
                format!("'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {rule_str}"),
            )),
            Err(e) => errs.push(FieldError::invalid(
                shown(path),
                node.ty.as_str(),
                format!("{} evaluating rule: {rule_str}", runtime_error(&e)),
            )),
        }
    }
}

/// Evaluates a messageExpression; None (the rule's message is used) when it fails or gives
/// no usable message, as upstream.
fn message_expression(
    program: &Program,
    self_val: &Value,
    old_val: Option<&Value>,
) -> Option<String> {
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable_from_value("self", self_val.clone());
    if let Some(v) = old_val {
        ctx.add_variable_from_value("oldSelf", v.clone());
    }
    let Ok(Value::String(s)) = program.execute(&ctx) else {
        return None;
    };
    let s = s.trim();
    (!s.is_empty() && s.len() <= MAX_MESSAGE_EXPRESSION_BYTES && !s.contains('\n'))
        .then(|| s.to_string())
}

/// A runtime error worded as cel-go's.
pub(super) fn runtime_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(v) => format!("index out of bounds: {}", plain(v)),
        ExecutionError::UndeclaredReference(n) => format!("no such attribute: {n}"),
        other => other.to_string(),
    }
}

/// A CEL value printed bare (ints and strings as they are).
fn plain(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

fn rule_error_string(rule: &ValidationRule) -> String {
    match rule.message.as_deref() {
        Some(m) if !m.is_empty() => m.trim().to_string(),
        _ => rule.rule.trim().to_string(),
    }
}

/// The field error a failed rule gives, by its `reason` (upstream's `fieldErrorForReason`).
fn error_for_reason(reason: Option<&str>, path: String, ty: &str, detail: String) -> FieldError {
    match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
        Some("FieldValueRequired") => FieldError::required(path, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(path, ty),
        _ => FieldError::invalid(path, ty, detail),
    }
}

/// Converts a JSON value to CEL as upstream's `UnstructuredToVal` does for its schema node:
/// integers stay int, numbers are double, properties are named as escaped, and a resource
/// root shows only apiVersion, kind, metadata.name and metadata.generateName.
pub(super) fn to_cel(v: &Json, node: Option<&Node>) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Number(n) => match node.map(|n| n.ty.as_str()) {
            Some("number") => Value::Float(n.as_f64().unwrap_or_default()),
            Some("integer") => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Int(n.as_f64().unwrap_or_default() as i64),
            },
            _ => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(u)) => Value::UInt(u),
                _ => Value::Float(n.as_f64().unwrap_or_default()),
            },
        },
        Json::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            Value::List(Arc::new(
                items.iter().map(|i| to_cel(i, item_node)).collect(),
            ))
        }
        Json::Object(map) => {
            let mut out: HashMap<Key, Value> = HashMap::new();
            let root = node.is_some_and(|n| n.resource_root);
            for (k, val) in map {
                if root {
                    match k.as_str() {
                        "apiVersion" | "kind" => {
                            out.insert(k.clone().into(), to_cel(val, None));
                            continue;
                        }
                        "metadata" => {
                            out.insert(k.clone().into(), to_cel(val, Some(metadata_node())));
                            continue;
                        }
                        _ => {}
                    }
                }
                match node {
                    Some(n) if !n.properties.is_empty() => {
                        if let (Some(child), Some(name)) = (n.properties.get(k), escape(k)) {
                            out.insert(name.into(), to_cel(val, Some(child)));
                        }
                    }
                    Some(n) if n.additional.is_some() => {
                        out.insert(k.clone().into(), to_cel(val, n.additional.as_deref()));
                    }
                    Some(n) if !n.preserve_unknown && n.ty == "object" && !root => {}
                    _ => {
                        out.insert(k.clone().into(), to_cel(val, None));
                    }
                }
            }
            Value::Map(Map { map: Arc::new(out) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn a_rule_on_spec_passes_when_true_and_fails_with_the_default_message_when_false() {
        let v = validator(replicas_schema(
            json!({"rule": "self.replicas <= self.maxReplicas"}),
        ));
        assert!(!v.is_empty());
        assert!(
            v.validate(&obj(json!({"replicas": 2, "maxReplicas": 3})), None)
                .is_empty()
        );
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(
            messages(&errs),
            ["spec: Invalid value: \"object\": failed rule: self.replicas <= self.maxReplicas"]
        );
    }

    #[test]
    fn a_failed_rule_reports_its_message_trimmed() {
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": " replicas must not exceed maxReplicas ",
        })));
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(
            messages(&errs),
            ["spec: Invalid value: \"object\": replicas must not exceed maxReplicas"]
        );
    }

    #[test]
    fn a_message_expression_wins_over_the_message_and_falls_back_when_it_fails() {
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "static",
            "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.maxReplicas)",
        })));
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(
            messages(&errs),
            ["spec: Invalid value: \"object\": replicas 5 exceeds 3"]
        );
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "static",
            "messageExpression": "'  '",
        })));
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(messages(&errs), ["spec: Invalid value: \"object\": static"]);
    }

    #[test]
    fn an_immutable_field_rule_runs_on_update_only() {
        let v = validator(spec_schema(
            json!({"name": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "name is immutable"}
            ]}}),
            json!([]),
        ));
        assert!(v.validate(&obj(json!({"name": "a"})), None).is_empty());
        let old = obj(json!({"name": "a"}));
        assert!(
            v.validate(&obj(json!({"name": "a"})), Some(&old))
                .is_empty()
        );
        let errs = v.validate(&obj(json!({"name": "b"})), Some(&old));
        assert_eq!(
            messages(&errs),
            ["spec.name: Invalid value: \"string\": name is immutable"]
        );
        // No old value at that position: the transition rule does not run.
        let old = obj(json!({}));
        assert!(
            v.validate(&obj(json!({"name": "b"})), Some(&old))
                .is_empty()
        );
    }

    #[test]
    fn an_optional_old_self_rule_runs_on_create_with_an_absent_old_self() {
        let v = validator(spec_schema(
            json!({"name": {"type": "string", "x-kubernetes-validations": [
                {"rule": "!oldSelf.hasValue() || self == oldSelf.value()", "optionalOldSelf": true, "message": "immutable"}
            ]}}),
            json!([]),
        ));
        assert!(v.validate(&obj(json!({"name": "a"})), None).is_empty());
        let old = obj(json!({"name": "a"}));
        assert_eq!(
            messages(&v.validate(&obj(json!({"name": "b"})), Some(&old))),
            ["spec.name: Invalid value: \"string\": immutable"]
        );
    }

    #[test]
    fn rules_on_array_items_report_the_item_index() {
        let v = validator(spec_schema(
            json!({"ports": {"type": "array", "items": {
                "type": "object",
                "properties": {"port": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.port > 0 && self.port < 65536", "message": "bad port"}],
            }}}),
            json!([]),
        ));
        let errs = v.validate(
            &obj(json!({"ports": [{"port": 80}, {"port": 0}, {"port": 70000}]})),
            None,
        );
        assert_eq!(
            messages(&errs),
            [
                "spec.ports[1]: Invalid value: \"object\": bad port",
                "spec.ports[2]: Invalid value: \"object\": bad port",
            ]
        );
    }

    #[test]
    fn map_list_items_correlate_with_old_items_by_their_keys_and_set_items_do_not() {
        let items = json!({
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.value >= oldSelf.value", "message": "value may not decrease"}],
        });
        let v = validator(spec_schema(
            json!({"entries": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"], "items": items}}),
            json!([]),
        ));
        let old = obj(json!({"entries": [{"name": "a", "value": 5}, {"name": "b", "value": 1}]}));
        let new = obj(
            json!({"entries": [{"name": "b", "value": 2}, {"name": "c", "value": 0}, {"name": "a", "value": 4}]}),
        );
        assert_eq!(
            messages(&v.validate(&new, Some(&old))),
            ["spec.entries[2]: Invalid value: \"object\": value may not decrease"]
        );
        let errs = compile_errors(spec_schema(
            json!({"entries": {"type": "array", "items": items}}),
            json!([]),
        ));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].properties[entries].items.x-kubernetes-validations[0].rule: Invalid value: \"self.value >= oldSelf.value\": oldSelf cannot be used on the uncorrelatable portion of the schema within {AT}.properties[spec].properties[entries]"
            )]
        );
    }

    #[test]
    fn additional_properties_correlate_by_key_and_report_the_key_path() {
        let v = validator(spec_schema(
            json!({"limits": {"type": "object", "additionalProperties": {
                "type": "integer",
                "x-kubernetes-validations": [{"rule": "self >= oldSelf"}],
            }}}),
            json!([]),
        ));
        let old = obj(json!({"limits": {"cpu": 4, "mem": 8}}));
        let new = obj(json!({"limits": {"cpu": 2, "mem": 9, "gpu": 0}}));
        assert_eq!(
            messages(&v.validate(&new, Some(&old))),
            ["spec.limits[cpu]: Invalid value: \"integer\": failed rule: self >= oldSelf"]
        );
    }

    #[test]
    fn reason_and_field_path_shape_the_reported_error() {
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "too many",
            "reason": "FieldValueForbidden",
            "fieldPath": ".replicas",
        })));
        let bad = obj(json!({"replicas": 5, "maxReplicas": 3}));
        assert_eq!(
            messages(&v.validate(&bad, None)),
            ["spec.replicas: Forbidden: too many"]
        );
        let errs = v.validate(&bad, None);
        assert_eq!(errs[0].reason(), "FieldValueForbidden");
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "missing",
            "reason": "FieldValueRequired",
        })));
        assert_eq!(
            messages(&v.validate(&bad, None)),
            ["spec: Required value: missing"]
        );
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "reason": "FieldValueDuplicate",
            "fieldPath": "['maxReplicas']",
        })));
        assert_eq!(
            messages(&v.validate(&bad, None)),
            ["spec.maxReplicas: Duplicate value: \"object\""]
        );
    }

    #[test]
    fn a_missing_field_is_a_runtime_error_and_has_guards_it() {
        let v = validator(replicas_schema(
            json!({"rule": "self.replicas <= self.maxReplicas"}),
        ));
        assert_eq!(
            messages(&v.validate(&obj(json!({"replicas": 5})), None)),
            [
                "spec: Invalid value: \"object\": no such key: maxReplicas evaluating rule: self.replicas <= self.maxReplicas"
            ]
        );
        let v = validator(replicas_schema(
            json!({"rule": "!has(self.maxReplicas) || self.replicas <= self.maxReplicas"}),
        ));
        assert!(v.validate(&obj(json!({"replicas": 5})), None).is_empty());
    }

    #[test]
    fn root_rules_see_the_name_and_are_reported_at_nil() {
        let v = validator(json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {"prefix": {"type": "string"}}}},
            "x-kubernetes-validations": [
                {"rule": "self.metadata.name.startsWith(self.spec.prefix)", "messageExpression": "'name must start with ' + self.spec.prefix"}
            ],
        }));
        assert!(v.validate(&obj(json!({"prefix": "fo"})), None).is_empty());
        assert_eq!(
            messages(&v.validate(&obj(json!({"prefix": "ba"})), None)),
            ["<nil>: Invalid value: \"object\": name must start with ba"]
        );
        let errs = compile_errors(json!({
            "type": "object",
            "x-kubernetes-validations": [{"rule": "has(self.metadata.labels)"}],
        }));
        assert!(errs[0].contains("undefined field 'labels'"), "{}", errs[0]);
    }

    #[test]
    fn integers_stay_int_numbers_are_double_and_int_or_string_keeps_ints() {
        let v = validator(spec_schema(
            json!({
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "port": {"x-kubernetes-int-or-string": true},
            }),
            json!([
                {"rule": "type(self.count) == int && self.count / 2 == 1"},
                {"rule": "type(self.ratio) == double && self.ratio > 0.5"},
                {"rule": "type(self.port) == int || self.port.endsWith('%')"},
            ]),
        ));
        assert!(
            v.validate(&obj(json!({"count": 3, "ratio": 1, "port": 8080})), None)
                .is_empty()
        );
        assert!(
            v.validate(
                &obj(json!({"count": 2, "ratio": 0.75, "port": "50%"})),
                None
            )
            .is_empty()
        );
        assert_eq!(
            messages(&v.validate(&obj(json!({"count": 3, "ratio": 0.75, "port": "50"})), None)),
            [
                "spec: Invalid value: \"object\": failed rule: type(self.port) == int || self.port.endsWith('%')"
            ]
        );
    }
}
