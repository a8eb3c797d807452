//! ConfigMaps and Secrets: key and size validation, `immutable: true`, secret types (default
//! Opaque, immutable, type-specific keys), `stringData` folded into `data`, and their columns.

use super::{MAX_SECRET_SIZE, config_key, s};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules};
use crate::registry::table::{Column, age_cell};
use crate::registry::validation::immutable;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::{Value, json};
use std::collections::BTreeMap;

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";

/// Rules of core/v1 ConfigMap.
pub struct ConfigMapRules;

/// Rules of core/v1 Secret.
pub struct SecretRules;

const IMMUTABLE_MSG: &str = "field is immutable when `immutable` is set";
const REDACTED: &str = "<secret contents redacted>";

/// Whether two optional maps hold the same entries, an unset map being an empty one.
fn same_map<V: PartialEq>(
    a: &Option<BTreeMap<String, V>>,
    b: &Option<BTreeMap<String, V>>,
) -> bool {
    let empty = BTreeMap::new();
    a.as_ref().unwrap_or(&empty) == b.as_ref().unwrap_or(&empty)
}

/// Errors for `immutable` objects whose content or flag changed (upstream's wording).
fn immutability(
    new_flag: Option<bool>,
    old_flag: Option<bool>,
    changed: &[(&str, bool)],
) -> ErrorList {
    let mut errs = Vec::new();
    if old_flag == Some(true) {
        if new_flag != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_MSG));
        }
        for (field, differs) in changed {
            if *differs {
                errs.push(FieldError::forbidden(*field, IMMUTABLE_MSG));
            }
        }
    }
    errs
}

fn validate_config_map(cm: &ConfigMap) -> ErrorList {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in cm.data.iter().flatten() {
        for m in config_key(k) {
            errs.push(FieldError::invalid(format!("data[{k}]"), k.as_str(), m));
        }
        if cm.binary_data.as_ref().is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                format!("data[{k}]"),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        for m in config_key(k) {
            errs.push(FieldError::invalid(
                format!("binaryData[{k}]"),
                k.as_str(),
                m,
            ));
        }
        if cm.data.as_ref().is_some_and(|d| d.contains_key(k)) {
            errs.push(FieldError::invalid(
                format!("binaryData[{k}]"),
                k.as_str(),
                "duplicate of key present in data",
            ));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
    errs
}

impl Rules<ConfigMap> for ConfigMapRules {
    const SHORT_NAMES: Names = &["cm"];

    fn validate(&self, cm: &ConfigMap) -> ErrorList {
        validate_config_map(cm)
    }

    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> ErrorList {
        let mut errs = immutability(
            new.immutable,
            old.immutable,
            &[
                ("data", !same_map(&new.data, &old.data)),
                ("binaryData", !same_map(&new.binary_data, &old.binary_data)),
            ],
        );
        errs.extend(validate_config_map(new));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Data", CM_DATA),
            Column::AGE,
        ])
    }

    fn cells(&self, cm: &ConfigMap, raw: &Value) -> Vec<Value> {
        let n = cm.data.as_ref().map_or(0, BTreeMap::len)
            + cm.binary_data.as_ref().map_or(0, BTreeMap::len);
        vec![
            json!(cm.metadata.name.as_deref().unwrap_or("")),
            json!(n),
            age_cell(raw),
        ]
    }
}

/// Go's `json.Unmarshal` error for bytes that are not a JSON object, roughly worded as Go does.
fn json_object_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => None,
        Ok(other) => Some(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            }
        )),
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".into()),
        Err(_) => {
            let c = bytes
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .map(|b| *b as char)
                .unwrap_or(' ');
            Some(format!(
                "invalid character '{c}' looking for beginning of value"
            ))
        }
    }
}

fn validate_secret(secret: &Secret) -> ErrorList {
    let mut errs = Vec::new();
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let mut total = 0;
    for (k, v) in data {
        for m in config_key(k) {
            errs.push(FieldError::invalid(format!("data[{k}]"), k.as_str(), m));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let required = |key: &str| FieldError::required(format!("data[{key}]"), "");
    match s(&secret.type_) {
        "kubernetes.io/service-account-token" => {
            let key = "kubernetes.io/service-account.name";
            let named = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .is_some_and(|v| !v.is_empty());
            if !named {
                errs.push(FieldError::required(
                    format!("metadata.annotations[{key}]"),
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(key) {
                None => errs.push(required(key)),
                Some(bytes) => {
                    if let Some(msg) = json_object_error(&bytes.0) {
                        errs.push(FieldError::invalid(format!("data[{key}]"), REDACTED, msg));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(required(key));
                }
            }
        }
        _ => {}
    }
    errs
}

impl Rules<Secret> for SecretRules {
    fn default(&self, secret: &mut Secret) {
        if s(&secret.type_).is_empty() {
            secret.type_ = Some("Opaque".into());
        }
        // Upstream's conversion folds stringData into data; stringData is never stored.
        if let Some(strings) = secret.string_data.take() {
            let data = secret.data.get_or_insert_with(BTreeMap::new);
            for (k, v) in strings {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(&self, secret: &Secret) -> ErrorList {
        validate_secret(secret)
    }

    fn validate_update(&self, new: &Secret, old: &Secret) -> ErrorList {
        let mut errs = immutable(
            Some(&json!(s(&new.type_))),
            Some(&json!(s(&old.type_))),
            "type",
        );
        errs.extend(immutability(
            new.immutable,
            old.immutable,
            &[("data", !same_map(&new.data, &old.data))],
        ));
        errs.extend(validate_secret(new));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Type", SECRET_TYPE),
            Column::text("Data", SECRET_DATA),
            Column::AGE,
        ])
    }

    fn cells(&self, secret: &Secret, raw: &Value) -> Vec<Value> {
        vec![
            json!(secret.metadata.name.as_deref().unwrap_or("")),
            json!(s(&secret.type_)),
            json!(secret.data.as_ref().map_or(0, BTreeMap::len)),
            age_cell(raw),
        ]
    }

    fn field(&self, secret: &Secret, field: &str) -> Option<String> {
        (field == "type").then(|| s(&secret.type_).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::test_support::{created, messages};
    use crate::registry::strategy::{Strategy, Typed};

    #[test]
    fn immutable_config_maps_reject_data_changes_and_unsetting_immutable() {
        let s = Typed::new(
            super::super::tests::info("ConfigMap", "configmaps"),
            ConfigMapRules,
        );
        let old = created(
            &s,
            json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}}),
        );
        assert!(s.validate_update(&old, &old).is_empty());
        let new = json!({"metadata": {"name": "c"}, "immutable": false, "data": {"a": "2"}});
        assert_eq!(
            messages(&s.validate_update(&new, &old)),
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        let mutable = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        assert!(s.validate_update(&new, &mutable).is_empty());
    }

    #[test]
    fn config_map_keys_must_be_valid_and_unique_across_data_and_binary_data() {
        let s = Typed::new(
            super::super::tests::info("ConfigMap", "configmaps"),
            ConfigMapRules,
        );
        let v = created(
            &s,
            json!({"metadata": {"name": "c"}, "data": {"a b": "1", "k": "v"}, "binaryData": {"k": "AA=="}}),
        );
        let msgs = messages(&s.validate(&v));
        assert_eq!(msgs.len(), 3);
        assert!(
            msgs[0].starts_with(
                r#"data[a b]: Invalid value: "a b": a valid config key must consist of"#
            )
        );
        assert_eq!(
            msgs[1],
            r#"data[k]: Invalid value: "k": duplicate of key present in binaryData"#
        );
        assert_eq!(s.cells(&v)[1], 3);
    }

    #[test]
    fn secrets_default_to_opaque_and_fold_string_data_into_data() {
        let s = Typed::new(super::super::tests::info("Secret", "secrets"), SecretRules);
        let v = created(
            &s,
            json!({"metadata": {"name": "x"}, "stringData": {"user": "admin"}}),
        );
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["data"]["user"], "YWRtaW4=");
        assert!(v.get("stringData").is_none());
        assert_eq!(s.cells(&v)[1..3], [json!("Opaque"), json!(1)]);
        assert_eq!(s.field(&v, "type").as_deref(), Some("Opaque"));
        assert!(s.field(&json!({"metadata": {}}), "type").is_some());
    }

    #[test]
    fn secret_types_require_their_keys_and_type_is_immutable() {
        let s = Typed::new(super::super::tests::info("Secret", "secrets"), SecretRules);
        let tls = created(
            &s,
            json!({"metadata": {"name": "x"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}}),
        );
        assert_eq!(
            messages(&s.validate(&tls)),
            vec!["data[tls.key]: Required value"]
        );
        let docker = created(
            &s,
            json!({"metadata": {"name": "x"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "nope"}}),
        );
        assert_eq!(
            messages(&s.validate(&docker)),
            vec![
                r#"data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid character 'n' looking for beginning of value"#
            ]
        );
        let opaque = created(&s, json!({"metadata": {"name": "x"}}));
        let mut changed = opaque.clone();
        changed["type"] = json!("kubernetes.io/basic-auth");
        changed["data"] = json!({"username": "YQ=="});
        assert_eq!(
            messages(&s.validate_update(&changed, &opaque)),
            vec![r#"type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#]
        );
    }
}
