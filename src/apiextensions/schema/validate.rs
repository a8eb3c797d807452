//! Validation of custom objects against a [`Structural`]: upstream's kube-openapi schema validator
//! (with its error wording, converted to field errors as `kubeOpenAPIResultToFieldErrors` does),
//! followed by the embedded-resource checks and the list-type set/map uniqueness checks.

use super::formats::{self, go_float};
use super::{AdditionalProperties, Structural};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::validation::dns1035_label;
use serde_json::{Map, Value};

impl Structural {
    /// Validates an object (the whole custom object; root path "") as upstream's OpenAPI schema
    /// validator plus the x-kubernetes-* validators: type (with nullable), required, enum,
    /// minimum/maximum/exclusive*, multipleOf, minLength/maxLength, pattern, format (upstream's
    /// supported list; unknown formats ignored), minItems/maxItems, uniqueItems,
    /// minProperties/maxProperties, properties/additionalProperties, allOf/anyOf/oneOf/not,
    /// x-kubernetes-int-or-string, x-kubernetes-embedded-resource (apiVersion/kind required) and
    /// x-kubernetes-list-type set/map (duplicates → Duplicate). Field paths are upstream's:
    /// `spec.items[2].name`; keys of additionalProperties maps are `spec.labels.foo` in schema
    /// errors and `spec.labels[foo]` in list-type and embedded-resource errors.
    /// Metadata is skipped (the caller validates ObjectMeta) except for schema restrictions of
    /// `metadata.name` and `metadata.generateName`.
    pub fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = self.validate_schema_at("", obj, true);
        errs.extend(validate_embedded_tree("", obj, self, true));
        if let Value::Object(map) = obj {
            errs.extend(validate_list_sets_and_maps("", self, map, true));
        }
        errs
    }

    /// The kube-openapi schema validation alone, with error paths under `prefix` ("" for none).
    pub(super) fn validate_schema_at(&self, prefix: &str, obj: &Value, root: bool) -> ErrorList {
        let mut v = Validator {
            prefix,
            errs: Vec::new(),
        };
        v.node(self, obj, "", root);
        v.errs
    }
}

/// One run of the schema validator; `prefix` is upstream's `fldPath` (nil when empty).
struct Validator<'a> {
    prefix: &'a str,
    errs: ErrorList,
}

fn schema_type_of(data: &Value) -> (&'static str, &'static str) {
    match data {
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Null => ("null", ""),
    }
}

/// swag's `IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    if !f.is_finite() || f.abs() > 9_007_199_254_740_991.0 {
        return false;
    }
    if f == f.trunc() {
        return true;
    }
    let g = f.trunc();
    let diff = (f - g).abs();
    diff / (f.abs() + g.abs()) < 1e-9
}

/// JSON equality as upstream's enum check sees it: numbers compare by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

impl Validator<'_> {
    /// The field path of an error about openapi name `name` (upstream's `errPath`).
    fn path(&self, name: &str) -> String {
        let trimmed = name.strip_prefix('.').unwrap_or(name);
        if name.is_empty() || name == "." {
            if self.prefix.is_empty() {
                "<nil>".to_string()
            } else {
                self.prefix.to_string()
            }
        } else if self.prefix.is_empty() {
            trimmed.to_string()
        } else {
            format!("{}.{trimmed}", self.prefix)
        }
    }

    fn invalid(&mut self, name: &str, value: impl Into<Value>, detail: String) {
        let path = self.path(name);
        self.errs.push(FieldError::invalid(path, value, detail));
    }

    /// kube-openapi's `InvalidType`, which upstream turns into `field.TypeInvalid`.
    fn type_invalid(&mut self, name: &str, value: impl Into<Value>, type_name: &str) {
        let path = self.path(name);
        let value = value.into();
        let detail = type_msg(name, type_name, value.as_str().unwrap_or_default());
        self.errs
            .push(FieldError::type_invalid(path, value, detail));
    }

    /// An error that is not an `openapierrors.Validation` (anyOf/oneOf/allOf/not): reported at
    /// `fldPath` with an empty value.
    fn composite(&mut self, detail: String) {
        let path = if self.prefix.is_empty() {
            "<nil>".to_string()
        } else {
            self.prefix.to_string()
        };
        self.errs.push(FieldError::invalid(path, "", detail));
    }

    fn sub(&self, s: &Structural, data: &Value, name: &str) -> ErrorList {
        let mut v = Validator {
            prefix: self.prefix,
            errs: Vec::new(),
        };
        v.node(s, data, name, false);
        v.errs
    }

    /// upstream's `SchemaValidator.Validate` for one schema node at openapi path `name`.
    fn node(&mut self, s: &Structural, data: &Value, name: &str, root: bool) {
        let single = [s.type_.as_str()];
        let types: &[&str] = if s.int_or_string {
            &["integer", "string"]
        } else if s.type_.is_empty() {
            &[]
        } else {
            &single
        };
        if data.is_null() {
            if !types.is_empty() && !types.contains(&"null") && !s.nullable {
                self.type_invalid(name, "null", &types.join(","));
            }
            self.enum_check(s, data, name);
            return;
        }
        if !types.is_empty() || !s.format.is_empty() {
            self.type_check(s, types, data, name);
        }
        self.schema_props(s, data, name);
        if let Value::String(text) = data {
            self.string_check(s, text, name);
            if !s.format.is_empty() && !formats::validates(&s.format, text) {
                self.type_invalid(name, text.as_str(), &s.format);
            }
        }
        if let Value::Number(_) = data {
            self.number_check(s, data, name);
        }
        if let Value::Array(items) = data {
            self.slice_check(s, items, name);
        }
        self.enum_check(s, data, name);
        if let Value::Object(map) = data {
            self.object_check(s, map, name, root);
        }
    }

    fn type_check(&mut self, s: &Structural, types: &[&str], data: &Value, name: &str) {
        let (sch_type, format) = schema_type_of(data);
        let is_float_int = sch_type == "number"
            && data.as_f64().is_some_and(is_json_integer)
            && types.contains(&"integer");
        let is_int_float = sch_type == "integer" && types.contains(&"number");
        let stringish = matches!(data, Value::String(_) | Value::Array(_));
        let has_format = !s.format.is_empty();
        let type_matches = types.contains(&sch_type) || is_float_int || is_int_float;
        // A number or object whose type the format does not describe.
        let format_mismatch = !stringish && has_format && !type_matches && format != s.format;
        if format_mismatch {
            self.type_invalid(name, format, &s.format);
            return;
        }
        // Strings and arrays with a format pass unless the type is numeric.
        let numeric = types.contains(&"number") || types.contains(&"integer");
        if stringish && has_format && !numeric {
            return;
        }
        if !type_matches {
            self.type_invalid(name, sch_type, &types.join(","));
        }
    }

    fn schema_props(&mut self, s: &Structural, data: &Value, name: &str) {
        let v = &s.value;
        if !v.any_of.is_empty() {
            let mut best: Option<ErrorList> = None;
            let mut ok = false;
            for alt in &v.any_of {
                let r = self.sub(alt, data, name);
                if r.is_empty() {
                    ok = true;
                    best = None;
                    break;
                }
                best.get_or_insert(r);
            }
            if !ok {
                self.composite(format!(
                    "{name:?} must validate at least one schema (anyOf)"
                ));
            }
            self.errs.extend(best.unwrap_or_default());
        }
        if !v.one_of.is_empty() {
            let mut best: Option<ErrorList> = None;
            let mut valid = 0;
            for alt in &v.one_of {
                let r = self.sub(alt, data, name);
                if r.is_empty() {
                    valid += 1;
                    best = None;
                } else if valid == 0 && best.is_none() {
                    best = Some(r);
                }
            }
            if valid != 1 {
                let more = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                self.composite(format!(
                    "{name:?} must validate one and only one schema (oneOf). {more}"
                ));
                self.errs.extend(best.unwrap_or_default());
            }
        }
        if !v.all_of.is_empty() {
            let mut valid = 0;
            for alt in &v.all_of {
                let r = self.sub(alt, data, name);
                if r.is_empty() {
                    valid += 1;
                }
                self.errs.extend(r);
            }
            if valid != v.all_of.len() {
                let more = if valid == 0 { ". None validated" } else { "" };
                self.composite(format!(
                    "{name:?} must validate all the schemas (allOf){more}"
                ));
            }
        }
        if let Some(not) = &v.not
            && self.sub(not, data, name).is_empty()
        {
            self.composite(format!("{name:?} must not validate the schema (not)"));
        }
    }

    fn string_check(&mut self, s: &Structural, text: &str, name: &str) {
        let v = &s.value;
        let len = text.chars().count() as i64;
        if let Some(max) = v.max_length
            && len > max
        {
            let path = self.path(name);
            self.errs
                .push(FieldError::too_long(path, max.max(0) as usize));
            return;
        }
        if let Some(min) = v.min_length
            && len < min
        {
            self.invalid(
                name,
                text,
                format!("{name} in body should be at least {min} chars long"),
            );
            return;
        }
        if let Some((pattern, compiled)) = &v.pattern {
            match compiled {
                Ok(re) if re.is_match(text) => {}
                Ok(_) => self.invalid(
                    name,
                    text,
                    format!("{name} in body should match '{pattern}'"),
                ),
                Err(e) => self.invalid(
                    name,
                    text,
                    format!("{name} in body should match '{pattern}, but pattern is invalid: {e}'"),
                ),
            }
        }
    }

    fn number_check(&mut self, s: &Structural, data: &Value, name: &str) {
        let v = &s.value;
        let int = data.as_i64();
        let f = data.as_f64().unwrap_or(0.0);
        if let Some(factor) = v.multiple_of {
            match int {
                Some(i) if factor as i64 != 0 => {
                    let fi = factor as i64;
                    if fi < 0 {
                        self.invalid(
                            name,
                            fi,
                            format!("factor MultipleOf declared for {name} must be positive: {fi}"),
                        );
                    } else if i % fi != 0 {
                        self.invalid(
                            name,
                            i,
                            format!("{name} in body should be a multiple of {fi}"),
                        );
                    }
                }
                _ => {
                    if factor < 0.0 {
                        self.invalid(
                            name,
                            factor,
                            format!(
                                "factor MultipleOf declared for {name} must be positive: {}",
                                go_float(factor)
                            ),
                        );
                    } else {
                        let mult = if factor < 1.0 {
                            1.0 / factor * f
                        } else {
                            f / factor
                        };
                        if !is_json_integer(mult) {
                            self.invalid(
                                name,
                                data.clone(),
                                format!(
                                    "{name} in body should be a multiple of {}",
                                    go_float(factor)
                                ),
                            );
                        }
                    }
                }
            }
        }
        if let Some(min) = v.minimum {
            let excl = v.exclusive_minimum;
            let (fails, bound) = match int {
                Some(i) => {
                    let m = min as i64;
                    ((!excl && i < m) || (excl && i <= m), m.to_string())
                }
                None => ((!excl && f < min) || (excl && f <= min), go_float(min)),
            };
            if fails {
                let op = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.invalid(
                    name,
                    data.clone(),
                    format!("{name} in body should be {op} {bound}"),
                );
            }
        }
        if let Some(max) = v.maximum {
            let excl = v.exclusive_maximum;
            let (fails, bound) = match int {
                Some(i) => {
                    let m = max as i64;
                    ((!excl && i > m) || (excl && i >= m), m.to_string())
                }
                None => ((!excl && f > max) || (excl && f >= max), go_float(max)),
            };
            if fails {
                let op = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.invalid(
                    name,
                    data.clone(),
                    format!("{name} in body should be {op} {bound}"),
                );
            }
        }
    }

    fn slice_check(&mut self, s: &Structural, items: &[Value], name: &str) {
        if let Some(item_schema) = s.items.as_deref() {
            for (i, item) in items.iter().enumerate() {
                self.node(item_schema, item, &format!("{name}[{i}]"), false);
            }
        }
        let v = &s.value;
        let size = items.len();
        if let Some(min) = v.min_items
            && (size as i64) < min
        {
            self.invalid(
                name,
                size,
                format!("{name} in body should have at least {min} items"),
            );
        }
        if let Some(max) = v.max_items
            && size as i64 > max
        {
            let path = self.path(name);
            self.errs
                .push(FieldError::too_many(path, size, max.max(0) as usize));
        }
        if v.unique_items {
            let dup = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)));
            if dup {
                self.invalid(
                    name,
                    "",
                    format!("{name} in body shouldn't contain duplicates"),
                );
            }
        }
    }

    fn enum_check(&mut self, s: &Structural, data: &Value, name: &str) {
        let Some(values) = &s.value.enum_ else { return };
        if values.is_empty() || values.iter().any(|e| json_equal(e, data)) {
            return;
        }
        let allowed: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let path = self.path(name);
        self.errs
            .push(FieldError::not_supported(path, data.clone(), &refs));
    }

    fn object_check(&mut self, s: &Structural, map: &Map<String, Value>, name: &str, root: bool) {
        let v = &s.value;
        let n = map.len();
        if let Some(min) = v.min_properties
            && (n as i64) < min
        {
            self.invalid(
                name,
                n,
                format!("{name} in body should have at least {min} properties"),
            );
            return;
        }
        if let Some(max) = v.max_properties
            && n as i64 > max
        {
            let path = self.path(name);
            self.errs
                .push(FieldError::too_many(path, n, max.max(0) as usize));
            return;
        }
        match &s.additional_properties {
            Some(AdditionalProperties::Allows(false)) => {
                for k in map.keys().filter(|k| !s.properties.contains_key(*k)) {
                    self.invalid(
                        name,
                        k.as_str(),
                        format!("{name}.{k} in body is a forbidden property"),
                    );
                }
            }
            Some(AdditionalProperties::Schema(ap)) => {
                for (k, val) in map.iter().filter(|(k, _)| !s.properties.contains_key(*k)) {
                    self.node(ap, val, &format!("{name}.{k}"), false);
                }
            }
            _ => {}
        }
        for (pname, ps) in &s.properties {
            let Some(val) = map.get(pname) else { continue };
            let rname = if name.is_empty() {
                pname.clone()
            } else {
                format!("{name}.{pname}")
            };
            if root && pname == "metadata" {
                // ObjectMeta is the caller's; only name/generateName restrictions apply here.
                if let Value::Object(meta) = val {
                    for field in ["name", "generateName"] {
                        if let (Some(fs), Some(fv)) = (ps.properties.get(field), meta.get(field)) {
                            self.node(fs, fv, &format!("metadata.{field}"), false);
                        }
                    }
                }
                continue;
            }
            self.node(ps, val, &rname, false);
        }
        for k in &v.required {
            if !map.contains_key(k) {
                let path = self.path(&format!("{name}.{k}"));
                self.errs.push(FieldError::required(path, ""));
            }
        }
    }
}

/// kube-openapi's `InvalidType` message with data (always a string here).
fn type_msg(name: &str, type_name: &str, data: &str) -> String {
    format!("{name} in body must be of type {type_name}: {data:?}")
}

/// `field.Path.Child`.
pub(super) fn child_path(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// upstream's `objectmeta.Validate` without the ObjectMeta part: apiVersion and kind of every
/// embedded resource below the root.
pub(super) fn validate_embedded_tree(
    path: &str,
    x: &Value,
    s: &Structural,
    root: bool,
) -> ErrorList {
    let mut errs = Vec::new();
    match x {
        Value::Object(map) => {
            if s.embedded_resource && !root {
                errs.extend(validate_embedded_resource(path, map));
            }
            for (k, v) in map {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(prop) = s.properties.get(k) {
                    errs.extend(validate_embedded_tree(&child_path(path, k), v, prop, false));
                } else if let Some(ap) = s.additional_schema() {
                    errs.extend(validate_embedded_tree(
                        &format!("{path}[{k}]"),
                        v,
                        ap,
                        false,
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    errs.extend(validate_embedded_tree(
                        &format!("{path}[{i}]"),
                        v,
                        item_schema,
                        false,
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

fn validate_embedded_resource(path: &str, map: &Map<String, Value>) -> ErrorList {
    let mut errs = Vec::new();
    let api_version = child_path(path, "apiVersion");
    let kind_path = child_path(path, "kind");
    match map.get("apiVersion") {
        None => errs.push(FieldError::required(&api_version, "")),
        Some(Value::String(v)) if v.is_empty() => errs.push(FieldError::required(&api_version, "")),
        Some(Value::String(v)) => {
            if v != "/" && v.matches('/').count() > 1 {
                errs.push(FieldError::invalid(
                    &api_version,
                    v.as_str(),
                    format!("unexpected GroupVersion string: {v}"),
                ));
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            &api_version,
            other.clone(),
            "must be a string",
        )),
    }
    match map.get("kind") {
        None => errs.push(FieldError::required(&kind_path, "")),
        Some(Value::String(k)) if k.is_empty() => errs.push(FieldError::required(&kind_path, "")),
        Some(Value::String(k)) => {
            let msgs = dns1035_label(&k.to_lowercase());
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    &kind_path,
                    k.as_str(),
                    format!(
                        "may have mixed case, but should otherwise match: {}",
                        msgs.join(",")
                    ),
                ));
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            &kind_path,
            other.clone(),
            "must be a string",
        )),
    }
    errs
}

/// upstream's `listtype.ValidateListSetsAndMaps`.
fn validate_list_sets_and_maps(
    path: &str,
    s: &Structural,
    map: &Map<String, Value>,
    root: bool,
) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(ap) = s.additional_schema() {
        for (k, v) in map {
            errs.extend(list_sets_and_maps_value(&format!("{path}[{k}]"), ap, v));
        }
    }
    for (k, v) in map {
        if root && k == "metadata" {
            continue;
        }
        if let Some(sub) = s.properties.get(k) {
            errs.extend(list_sets_and_maps_value(&child_path(path, k), sub, v));
        }
    }
    errs
}

fn list_sets_and_maps_value(path: &str, s: &Structural, v: &Value) -> ErrorList {
    match v {
        Value::Array(items) => list_sets_and_maps_array(path, s, items),
        Value::Object(map) => validate_list_sets_and_maps(path, s, map, false),
        _ => Vec::new(),
    }
}

fn list_sets_and_maps_array(path: &str, s: &Structural, items: &[Value]) -> ErrorList {
    let mut errs = Vec::new();
    match s.list_type.as_deref() {
        Some("set") => {
            for i in first_duplicates(items) {
                errs.push(
                    FieldError::duplicate(format!("{path}[{i}]"), items[i].clone())
                        .with_go_value(crate::golang::unstructured(&items[i])),
                );
            }
        }
        Some("map") => errs.extend(validate_list_map(path, s, items)),
        _ => {}
    }
    if let Some(item_schema) = s.items.as_deref() {
        for (i, v) in items.iter().enumerate() {
            errs.extend(list_sets_and_maps_value(
                &format!("{path}[{i}]"),
                item_schema,
                v,
            ));
        }
    }
    errs
}

/// Indices of the second appearance of each non-unique value (upstream's `validateListSet`).
fn first_duplicates(items: &[Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, x) in items.iter().enumerate() {
        let seen = items[..i].iter().filter(|y| *y == x).count();
        if seen == 1 {
            out.push(i);
        }
    }
    out
}

fn validate_list_map(path: &str, s: &Structural, items: &[Value]) -> ErrorList {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            return vec![FieldError::invalid(
                format!("{path}[{i}]"),
                x.clone(),
                "must be an object for an array of list-type map",
            )];
        }
    }
    if items.len() <= 1 {
        return Vec::new();
    }
    // The key of each entry: the map-key fields it has (a missing key is unspecified).
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            if let Value::Object(m) = x {
                for k in &s.list_map_keys {
                    if let Some(v) = m.get(k) {
                        key.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(key)
        })
        .collect();
    first_duplicates(&keys)
        .into_iter()
        .map(|i| {
            FieldError::duplicate(format!("{path}[{i}]"), keys[i].clone())
                .with_go_value(crate::golang::unstructured(&keys[i]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::errors::aggregate;
    use serde_json::json;

    fn schema(v: Value) -> Structural {
        Structural::new(&serde_json::from_value(v).unwrap())
    }

    /// A root object schema with `spec` of the given schema.
    fn spec_schema(spec: Value) -> Structural {
        schema(json!({"type": "object", "properties": {"spec": spec}}))
    }

    /// The rendered errors of validating `{"spec": value}`, "" when valid.
    fn check(spec: Value, value: Value) -> String {
        let errs = spec_schema(spec).validate(&json!({"spec": value}));
        if errs.is_empty() {
            String::new()
        } else {
            aggregate(&errs)
        }
    }

    #[test]
    fn a_valid_object_has_no_errors() {
        let s = spec_schema(json!({"type": "object", "properties": {
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
            "name": {"type": "string", "minLength": 1}}}));
        assert!(
            s.validate(
                &json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"replicas": 3, "name": "n"}})
            )
            .is_empty()
        );
    }

    #[test]
    fn maximum_and_minimum_report_the_bound_in_upstream_wording() {
        let spec = json!({"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1, "maximum": 10}}});
        assert_eq!(
            check(spec.clone(), json!({"replicas": 20})),
            "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"
        );
        assert_eq!(
            check(spec, json!({"replicas": 0})),
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
        );
    }

    #[test]
    fn exclusive_bounds_and_float_values_use_strict_wording() {
        let spec = json!({"type": "object", "properties": {"ratio": {"type": "number",
            "minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true}}});
        assert_eq!(
            check(spec.clone(), json!({"ratio": 1.5})),
            "spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"
        );
        assert_eq!(
            check(spec, json!({"ratio": 0})),
            "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"
        );
    }

    #[test]
    fn multiple_of_reports_the_factor() {
        let spec =
            json!({"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}});
        assert_eq!(
            check(spec.clone(), json!({"n": 7})),
            "spec.n: Invalid value: 7: spec.n in body should be a multiple of 3"
        );
        assert_eq!(check(spec, json!({"n": 9})), "");
    }

    #[test]
    fn wrong_types_are_reported_with_the_found_type() {
        let spec = json!({"type": "object", "properties": {"replicas": {"type": "integer"}}});
        assert_eq!(
            check(spec.clone(), json!({"replicas": "three"})),
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        );
        // A float with an integral value is an integer.
        assert_eq!(check(spec, json!({"replicas": 2.0})), "");
        assert_eq!(
            check(json!({"type": "string"}), json!(5)),
            r#"spec: Invalid value: "integer": spec in body must be of type string: "integer""#
        );
    }

    #[test]
    fn null_is_rejected_unless_nullable() {
        let spec = json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string", "nullable": true}}});
        assert_eq!(
            check(spec.clone(), json!({"a": null})),
            r#"spec.a: Invalid value: "null": spec.a in body must be of type string: "null""#
        );
        assert_eq!(check(spec, json!({"b": null})), "");
    }

    #[test]
    fn required_fields_are_reported_at_their_path() {
        let s = schema(
            json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}),
        );
        assert_eq!(aggregate(&s.validate(&json!({}))), "spec: Required value");
        assert_eq!(
            aggregate(&s.validate(&json!({"spec": {}}))),
            "spec.name: Required value"
        );
    }

    #[test]
    fn enum_lists_the_supported_values() {
        let spec = json!({"type": "object", "properties": {
            "mode": {"type": "string", "enum": ["a", "b"]},
            "level": {"type": "integer", "enum": [1, 2]}}});
        assert_eq!(
            check(spec.clone(), json!({"mode": "x"})),
            r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#
        );
        assert_eq!(
            check(spec.clone(), json!({"level": 3})),
            r#"spec.level: Unsupported value: 3: supported values: "1", "2""#
        );
        assert_eq!(check(spec, json!({"mode": "b", "level": 2.0})), "");
    }

    #[test]
    fn string_length_and_pattern_use_upstream_wording() {
        let spec = json!({"type": "object", "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "^a"}}});
        assert_eq!(
            check(spec.clone(), json!({"name": "ab"})),
            r#"spec.name: Invalid value: "ab": spec.name in body should be at least 3 chars long"#
        );
        assert_eq!(
            check(spec.clone(), json!({"name": "abcdef"})),
            "spec.name: Too long: may not be more than 5 bytes"
        );
        assert_eq!(
            check(spec.clone(), json!({"name": "bcd"})),
            r#"spec.name: Invalid value: "bcd": spec.name in body should match '^a'"#
        );
        // Lengths count characters, not bytes.
        assert_eq!(check(spec, json!({"name": "aéé"})), "");
    }

    #[test]
    fn formats_are_checked_and_unknown_formats_ignored() {
        let spec = json!({"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"},
            "other": {"type": "string", "format": "my-own"},
            "count": {"type": "integer", "format": "int32"}}});
        assert_eq!(
            check(spec.clone(), json!({"id": "nope"})),
            r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#
        );
        assert_eq!(
            check(
                spec,
                json!({"other": "anything", "count": 5_000_000_000i64})
            ),
            ""
        );
    }

    #[test]
    fn item_counts_are_checked_and_items_get_indexed_paths() {
        let spec = json!({"type": "object", "properties": {"items": {"type": "array", "minItems": 2, "maxItems": 3,
            "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 2}}}}}});
        assert_eq!(
            check(spec.clone(), json!({"items": [{}]})),
            "spec.items: Invalid value: 1: spec.items in body should have at least 2 items"
        );
        assert_eq!(
            check(spec.clone(), json!({"items": [{}, {}, {}, {}]})),
            "spec.items: Too many: 4: must have at most 3 items"
        );
        assert_eq!(
            check(spec, json!({"items": [{}, {}, {"name": "long"}]})),
            "spec.items[2].name: Too long: may not be more than 2 bytes"
        );
    }

    #[test]
    fn a_maximum_of_one_item_is_worded_in_the_singular() {
        let spec = json!({"type": "object", "properties": {"one": {"type": "array", "maxItems": 1,
            "items": {"type": "string"}}}});
        assert_eq!(
            check(spec, json!({"one": ["a", "b"]})),
            "spec.one: Too many: 2: must have at most 1 item"
        );
    }

    #[test]
    fn property_counts_are_checked() {
        let spec = json!({"type": "object", "minProperties": 1, "maxProperties": 2,
            "additionalProperties": {"type": "string"}});
        assert_eq!(
            check(spec.clone(), json!({})),
            "spec: Invalid value: 0: spec in body should have at least 1 properties"
        );
        assert_eq!(
            check(spec, json!({"a": "1", "b": "2", "c": "3"})),
            "spec: Too many: 3: must have at most 2 items"
        );
    }

    #[test]
    fn additional_properties_values_are_validated_with_dotted_keys() {
        let spec = json!({"type": "object", "properties": {"labels": {"type": "object",
            "additionalProperties": {"type": "string", "maxLength": 3}}}});
        assert_eq!(
            check(spec, json!({"labels": {"foo": "abcd"}})),
            "spec.labels.foo: Too long: may not be more than 3 bytes"
        );
    }

    #[test]
    fn int_or_string_accepts_both_and_rejects_others() {
        let spec = json!({"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]}}});
        assert_eq!(check(spec.clone(), json!({"port": 80})), "");
        assert_eq!(check(spec.clone(), json!({"port": "http"})), "");
        assert_eq!(
            check(spec, json!({"port": true})),
            concat!(
                r#"[spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean", "#,
                r#"<nil>: Invalid value: "": "spec.port" must validate at least one schema (anyOf), "#,
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer: "boolean"]"#
            )
        );
    }

    #[test]
    fn one_of_all_of_and_not_report_composite_errors() {
        let spec = json!({"type": "object", "properties": {"n": {"type": "integer",
            "oneOf": [{"minimum": 5}, {"maximum": 10}], "not": {"maximum": 0}}}});
        assert_eq!(
            check(spec.clone(), json!({"n": 7})),
            r#"<nil>: Invalid value: "": "spec.n" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        );
        assert_eq!(
            check(spec, json!({"n": -1})),
            r#"<nil>: Invalid value: "": "spec.n" must not validate the schema (not)"#
        );
        let all = json!({"type": "object", "properties": {"n": {"type": "integer", "allOf": [{"minimum": 5}]}}});
        assert_eq!(
            check(all, json!({"n": 1})),
            concat!(
                "[spec.n: Invalid value: 1: spec.n in body should be greater than or equal to 5, ",
                r#"<nil>: Invalid value: "": "spec.n" must validate all the schemas (allOf). None validated]"#
            )
        );
    }

    #[test]
    fn embedded_resources_need_api_version_and_kind() {
        let spec = json!({"type": "object", "properties": {"template": {"type": "object",
            "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}});
        assert_eq!(
            check(spec.clone(), json!({"template": {}})),
            "[spec.template.apiVersion: Required value, spec.template.kind: Required value]"
        );
        assert_eq!(
            check(
                spec.clone(),
                json!({"template": {"apiVersion": "a/b/c", "kind": "Pod_"}})
            ),
            concat!(
                r#"[spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c, "#,
                r#"spec.template.kind: Invalid value: "Pod_": may have mixed case, but should otherwise match: "#,
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, ",
                "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]"
            )
        );
        assert_eq!(
            check(
                spec,
                json!({"template": {"apiVersion": "v1", "kind": "Pod"}})
            ),
            ""
        );
    }

    #[test]
    fn list_type_set_reports_duplicates() {
        let spec = json!({"type": "object", "properties": {"tags": {"type": "array",
            "x-kubernetes-list-type": "set", "items": {"type": "string"}}}});
        assert_eq!(
            check(spec, json!({"tags": ["a", "b", "a", "a"]})),
            r#"spec.tags[2]: Duplicate value: "a""#
        );
    }

    #[test]
    fn list_type_map_reports_duplicate_keys() {
        let spec = json!({"type": "object", "properties": {"ports": {"type": "array",
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "port": {"type": "integer"}}}}}});
        assert_eq!(
            check(
                spec.clone(),
                json!({"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]})
            ),
            r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a"}"#
        );
        assert_eq!(
            check(spec, json!({"ports": ["x"]})),
            concat!(
                r#"[spec.ports[0]: Invalid value: "string": spec.ports[0] in body must be of type object: "string", "#,
                r#"spec.ports[0]: Invalid value: "x": must be an object for an array of list-type map]"#
            )
        );
    }

    #[test]
    fn metadata_is_left_to_the_caller_except_name_restrictions() {
        let s = schema(
            json!({"type": "object", "properties": {"metadata": {"type": "object",
            "properties": {"name": {"type": "string", "maxLength": 3}}}}}),
        );
        assert!(
            s.validate(&json!({"metadata": {"labels": {"a": "b"}, "name": "abc"}}))
                .is_empty()
        );
        assert_eq!(
            aggregate(&s.validate(&json!({"metadata": {"name": "abcd"}}))),
            "metadata.name: Too long: may not be more than 3 bytes"
        );
    }
}
