//! The strategy of one served version of a CRD: the structural schema prunes, defaults and
//! validates, CEL rules run, printer columns and selectable fields come from the CRD, and
//! objects are stored under the storage version's apiVersion (conversion strategy None).

use super::cel::Validator;
use super::conversion::Converter;
use super::jsonpath::JsonPath;
use super::schema::Structural;
use crate::registry::errors::{ErrorList, FieldError, FieldErrorKind, RegistryError};
use crate::registry::managed_fields::TypeRef;
use crate::registry::strategy::{
    CUSTOM_RESOURCE_VERBS, Decoded, ResourceInfo, ScalePaths, StorageConversion, Strategy,
    SubresourceInfo, unknown_fields,
};
use crate::registry::table::{AGE_DESCRIPTION, Column, age, name_cell};
use crate::registry::validation::NameRule;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// A printer column and where its value comes from.
struct PrinterColumn {
    column: Column,
    path: JsonPath,
}

/// The strategy of one served version of a CRD.
pub struct CustomResource {
    info: ResourceInfo,
    storage_api_version: String,
    /// The conversion webhook, for `strategy: Webhook`; else versions differ in apiVersion only.
    converter: Option<Arc<Converter>>,
    schema: Option<Structural>,
    rules: Validator,
    columns: Vec<PrinterColumn>,
    selectable: Vec<(String, JsonPath)>,
    field_types: Option<TypeRef>,
}

/// `.spec.replicas` → `/spec/replicas`.
fn pointer(path: &str) -> String {
    JsonPath::parse(path)
        .ok()
        .and_then(|p| p.fields().map(|f| format!("/{}", f.join("/"))))
        .unwrap_or_default()
}

impl CustomResource {
    /// The strategy of `version` of `crd`, named by the CRD's accepted names, converting
    /// versions with `converter` when the CRD has a conversion webhook.
    pub fn new(
        crd: &CustomResourceDefinition,
        version: &CustomResourceDefinitionVersion,
        converter: Option<Arc<Converter>>,
    ) -> Self {
        let spec = &crd.spec;
        let names = crd
            .status
            .as_ref()
            .and_then(|s| s.accepted_names.clone())
            .filter(|n| !n.plural.is_empty())
            .unwrap_or_else(|| spec.names.clone());
        let subs = version.subresources.as_ref();
        let mut subresources = Vec::new();
        if subs.is_some_and(|s| s.status.is_some()) {
            subresources.push(SubresourceInfo::status(
                spec.group.clone().into(),
                version.name.clone().into(),
                names.kind.clone().into(),
            ));
        }
        let scale = subs.and_then(|s| s.scale.as_ref()).map(|s| {
            subresources.push(SubresourceInfo::scale());
            ScalePaths {
                spec_replicas: pointer(&s.spec_replicas_path).into(),
                status_replicas: pointer(&s.status_replicas_path).into(),
                selector: s
                    .label_selector_path
                    .as_deref()
                    .map(pointer)
                    .unwrap_or_default()
                    .into(),
            }
        });
        let info = ResourceInfo {
            group: spec.group.clone().into(),
            version: version.name.clone().into(),
            kind: names.kind.clone().into(),
            resource: names.plural.clone().into(),
            singular: names
                .singular
                .clone()
                .unwrap_or_else(|| names.kind.to_lowercase()),
            namespaced: spec.scope == "Namespaced",
            short_names: names
                .short_names
                .iter()
                .flatten()
                .cloned()
                .map(Cow::Owned)
                .collect(),
            categories: names
                .categories
                .iter()
                .flatten()
                .cloned()
                .map(Cow::Owned)
                .collect(),
            verbs: Cow::Borrowed(CUSTOM_RESOURCE_VERBS),
            subresources,
            name_rule: NameRule::Dns1123Subdomain,
            scale,
            // Upstream's customResourceStrategy counts every spec change, status or not.
            tracks_generation: true,
            delete_returns_object: false,
        };
        let storage = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.as_str())
            .unwrap_or(&version.name);
        let props = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let columns = version
            .additional_printer_columns
            .iter()
            .flatten()
            .filter_map(|c| {
                Some(PrinterColumn {
                    column: Column {
                        name: c.name.clone().into(),
                        type_: c.type_.clone().into(),
                        format: c.format.clone().unwrap_or_default().into(),
                        description: c.description.clone().unwrap_or_default().into(),
                        priority: c.priority.unwrap_or(0),
                    },
                    path: JsonPath::parse(&c.json_path).ok()?,
                })
            })
            .collect();
        let selectable = version
            .selectable_fields
            .iter()
            .flatten()
            .filter_map(|f| {
                let path = JsonPath::parse(&f.json_path).ok()?;
                let name = path.fields()?.join(".");
                Some((name, path))
            })
            .collect();
        CustomResource {
            info,
            storage_api_version: format!("{}/{storage}", spec.group),
            converter,
            schema: props.map(Structural::new),
            rules: props
                .and_then(|p| Validator::compile(p, "").ok())
                .unwrap_or_default(),
            columns,
            selectable,
            field_types: props.map(super::field_types::type_ref),
        }
    }
}

/// Upstream's `ValidateScaleSpec`/`ValidateScaleStatus` of the replicas at `pointer`: an int64 in
/// int32's non-negative range when present, errors at the path the CRD wrote (`.spec.replicas`).
fn validate_replicas(obj: &Value, pointer: &str) -> Option<FieldError> {
    let path = format!(".{}", pointer.trim_start_matches('/').replace('/', "."));
    let value = obj.pointer(pointer)?;
    let Some(n) = value.as_i64() else {
        // Go's `%v` and `%T` of the decoded value.
        let (shown, type_name) = match value {
            Value::String(s) => (s.clone(), "string"),
            Value::Number(n) => (n.to_string(), "float64"),
            Value::Bool(b) => (b.to_string(), "bool"),
            Value::Null => ("<nil>".to_string(), "<nil>"),
            Value::Array(_) => (value.to_string(), "[]interface {}"),
            Value::Object(_) => (value.to_string(), "map[string]interface {}"),
        };
        return Some(FieldError::invalid(
            &path,
            0,
            format!("{path} accessor error: {shown} is of the type {type_name}, expected int64"),
        ));
    };
    if n < 0 {
        Some(FieldError::invalid(
            &path,
            n,
            "should be a non-negative integer",
        ))
    } else if n > i64::from(i32::MAX) {
        Some(FieldError::invalid(
            &path,
            n,
            format!("should be less than or equal to {}", i32::MAX),
        ))
    } else {
        None
    }
}

impl CustomResource {
    /// Schema validation, then the CEL rules unless the object broke a rule they rely on (a
    /// type, a required field, an enum, a length or size limit), as upstream's `hasBlockingErr`,
    /// which then says so in one more error.
    fn validate_with_old(&self, obj: &Value, old: Option<&Value>) -> ErrorList {
        let mut errs = self
            .schema
            .as_ref()
            .map(|s| s.validate(obj))
            .unwrap_or_default();
        if let Some(scale) = &self.info.scale {
            errs.extend(validate_replicas(obj, &scale.spec_replicas));
            errs.extend(validate_replicas(obj, &scale.status_replicas));
        }
        if self.rules.is_empty() {
            return errs;
        }
        let blocking = errs.iter().any(|e| {
            matches!(
                e.kind,
                FieldErrorKind::TypeInvalid
                    | FieldErrorKind::Required
                    | FieldErrorKind::NotSupported(_)
                    | FieldErrorKind::TooLong(_)
                    | FieldErrorKind::TooMany(_)
            )
        });
        if blocking {
            // A nil path and a nil value, as Go renders them.
            errs.push(FieldError::invalid(
                "<nil>",
                Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            errs.extend(self.rules.validate(obj, old));
        }
        errs
    }
}

impl Strategy for CustomResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn decode(&self, mut obj: Value) -> Result<Decoded, String> {
        if !obj.is_object() {
            return Err("the request body must be a JSON object".into());
        }
        let mut unknown = Vec::new();
        // metadata is an ObjectMeta whatever the schema says; unknown fields there are dropped.
        if let Some(meta) = obj.get_mut("metadata") {
            let typed: ObjectMeta =
                serde_json::from_value(meta.clone()).map_err(|e| format!("metadata: {e}"))?;
            let normalized = serde_json::to_value(typed).expect("ObjectMeta serializes");
            unknown_fields(meta, &normalized, "metadata", &mut unknown);
            *meta = normalized;
        }
        if let Some(schema) = &self.schema {
            unknown.extend(schema.prune(&mut obj));
        }
        Ok(Decoded {
            object: obj,
            unknown_fields: unknown,
        })
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.info.has_status()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if self.info.has_status()
            && let Some(o) = new.as_object_mut()
        {
            match old.get("status") {
                Some(s) => o.insert("status".into(), s.clone()),
                None => o.remove("status"),
            };
        }
    }

    fn default(&self, obj: &mut Value) {
        if let Some(schema) = &self.schema {
            schema.apply_defaults(obj);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        self.validate_with_old(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        self.validate_with_old(new, Some(old))
    }

    fn columns(&self) -> Vec<Column> {
        let mut cols = vec![Column::NAME];
        if self.columns.is_empty() {
            cols.push(Column {
                name: "Age".into(),
                type_: "date".into(),
                format: "".into(),
                description: AGE_DESCRIPTION.into(),
                priority: 0,
            });
        } else {
            cols.extend(self.columns.iter().map(|c| c.column.clone()));
        }
        cols
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let mut cells = vec![name_cell(obj)];
        if self.columns.is_empty() {
            cells.push(Value::String(age(obj
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str))));
            return cells;
        }
        for c in &self.columns {
            let found = c.path.find(obj);
            cells.push(match (found.as_slice(), &*c.column.type_) {
                ([], _) => Value::Null,
                ([Value::String(ts)], "date") => Value::String(age(Some(ts))),
                ([one], _) => (*one).clone(),
                (many, _) => Value::String(
                    many.iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            });
        }
        cells
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        let (_, path) = self.selectable.iter().find(|(name, _)| name == field)?;
        Some(match path.find(obj).first() {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        })
    }

    fn supports_strategic_merge(&self) -> bool {
        false
    }

    fn field_types(&self) -> Option<TypeRef> {
        self.field_types.clone()
    }

    fn serves_protobuf(&self) -> bool {
        false
    }

    fn storage_conversion(&self) -> Option<&dyn StorageConversion> {
        Some(self)
    }
}

impl StorageConversion for CustomResource {
    fn encode(&self, obj: &mut Value) -> Result<(), RegistryError> {
        match &self.converter {
            Some(c) => c.convert(obj, &self.storage_api_version)?,
            None => obj["apiVersion"] = Value::String(self.storage_api_version.clone()),
        }
        Ok(())
    }

    fn decode(&self, obj: &mut Value) -> Result<(), RegistryError> {
        self.decode_all(std::slice::from_mut(obj))
    }

    fn decode_all(&self, objs: &mut [Value]) -> Result<(), RegistryError> {
        let served = self.info.api_version();
        match &self.converter {
            Some(c) => c.convert_all(objs, &served)?,
            None => objs
                .iter_mut()
                .for_each(|o| o["apiVersion"] = Value::String(served.clone())),
        }
        if let Some(schema) = &self.schema {
            objs.iter_mut().for_each(|o| schema.apply_defaults(o));
        }
        Ok(())
    }
}
