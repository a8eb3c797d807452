//! The CustomResourceDefinition kind: defaulting, validation and deletion as upstream's
//! `pkg/registry/customresourcedefinition` strategy and `apis/apiextensions/validation`.

use super::jsonpath::JsonPath;
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::kinds;
use crate::registry::strategy::{Names, Sub};
use crate::registry::table::{Column, created_at_cells};
use crate::registry::validation::{dns1035_label, dns1123_subdomain};
use crate::registry::{Rules, Strategy};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, CustomResourceDefinitionVersion,
    JSONSchemaProps,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The finalizer that keeps a CRD until its custom objects are deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The printer column types upstream allows.
const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];

/// The CRD kind's rules.
pub struct CrdRules;

/// The strategy of `customresourcedefinitions`.
pub fn strategy() -> Arc<dyn Strategy> {
    kinds::strategy(CrdRules)
}

impl Rules<CustomResourceDefinition> for CrdRules {
    const SHORT_NAMES: Names = &["crd", "crds"];
    const CATEGORIES: Names = &["api-extensions"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn prepare_for_create(&self, crd: &mut CustomResourceDefinition) {
        // Status is the controllers'; storedVersions starts with the storage version.
        let stored: Vec<String> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.storage)
            .map(|v| v.name.clone())
            .collect();
        crd.status = Some(Default::default());
        if let Some(status) = crd.status.as_mut() {
            status.stored_versions = Some(stored);
        }
    }

    fn prepare_for_update(
        &self,
        new: &mut CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) {
        new.status = old.status.clone();
        // A new storage version joins storedVersions, as upstream's PrepareForUpdate does.
        if let Some(storage) = new.spec.versions.iter().find(|v| v.storage) {
            let status = new.status.get_or_insert_with(Default::default);
            let stored = status.stored_versions.get_or_insert_with(Vec::new);
            if !stored.contains(&storage.name) {
                stored.push(storage.name.clone());
            }
        }
    }

    fn default(&self, crd: &mut CustomResourceDefinition) {
        let names = &mut crd.spec.names;
        if names.singular.as_deref().unwrap_or("").is_empty() {
            names.singular = Some(names.kind.to_lowercase());
        }
        if names.list_kind.as_deref().unwrap_or("").is_empty() && !names.kind.is_empty() {
            names.list_kind = Some(format!("{}List", names.kind));
        }
        let conversion = crd.spec.conversion.get_or_insert_with(Default::default);
        if conversion.strategy.is_empty() {
            conversion.strategy = "None".into();
        }
    }

    fn validate(&self, crd: &CustomResourceDefinition) -> ErrorList {
        validate_spec(crd)
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![Column::NAME, Column::CREATED_AT])
    }

    /// Upstream's deletion: the first delete adds the cleanup finalizer and the Terminating
    /// condition; the finalizer controller then deletes the custom objects and removes it.
    fn blocks_deletion(&self, crd: &CustomResourceDefinition) -> bool {
        crd.metadata.deletion_timestamp.is_none()
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        let finalizers = obj
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .and_then(|m| m.as_object_mut())
            .map(|m| m.entry("finalizers").or_insert_with(|| json!([])));
        if let Some(Value::Array(f)) = finalizers
            && !f.iter().any(|f| f == CLEANUP_FINALIZER)
        {
            f.push(json!(CLEANUP_FINALIZER));
        }
        set_condition(
            obj,
            condition(
                "Terminating",
                "True",
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
            ),
        );
    }

    fn cells(&self, _crd: &CustomResourceDefinition, raw: &Value) -> Vec<Value> {
        created_at_cells(raw)
    }

    // kube-apiserver keeps CRDs in etcd as apiextensions.k8s.io/v1beta1 JSON.
    const UPGRADES_STORED: bool = true;

    fn upgrade_stored(&self, obj: &mut Value) -> Result<(), String> {
        if obj.get("apiVersion").and_then(Value::as_str) == Some(V1BETA1) {
            from_v1beta1(obj);
        }
        Ok(())
    }

    fn validate_update(
        &self,
        new: &CustomResourceDefinition,
        old: &CustomResourceDefinition,
    ) -> ErrorList {
        let mut errs = validate_spec(new);
        if new.spec.group != old.spec.group {
            errs.push(FieldError::invalid(
                "spec.group",
                new.spec.group.clone(),
                "field is immutable",
            ));
        }
        if new.spec.scope != old.spec.scope {
            errs.push(FieldError::invalid(
                "spec.scope",
                new.spec.scope.clone(),
                "field is immutable",
            ));
        }
        errs
    }
}

/// The version kube-apiserver stores CRDs in.
const V1BETA1: &str = "apiextensions.k8s.io/v1beta1";

/// Converts a v1beta1 CRD to v1 as upstream's conversion through the internal type does: the
/// spec-wide schema, subresources, printer columns and selectable fields move into every
/// version, a lone `version` becomes the only version, the conversion webhook's settings
/// move under `webhook`, and `preserveUnknownFields` stays only when true.
pub fn from_v1beta1(obj: &mut Value) {
    obj["apiVersion"] = json!("apiextensions.k8s.io/v1");
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let version = spec.remove("version");
    let validation = spec.remove("validation");
    let subresources = spec.remove("subresources");
    let columns = spec
        .remove("additionalPrinterColumns")
        .map(|c| columns_v1(&c));
    let selectable = spec.remove("selectableFields");
    let mut versions = match spec.remove("versions") {
        Some(Value::Array(v)) if !v.is_empty() => v,
        _ => match version {
            Some(Value::String(name)) => {
                vec![json!({"name": name, "served": true, "storage": true})]
            }
            _ => Vec::new(),
        },
    };
    for v in &mut versions {
        let Some(v) = v.as_object_mut() else { continue };
        if let Some(c) = v.remove("additionalPrinterColumns") {
            v.insert("additionalPrinterColumns".into(), columns_v1(&c));
        }
        for (field, spec_wide) in [
            ("schema", &validation),
            ("subresources", &subresources),
            ("additionalPrinterColumns", &columns),
            ("selectableFields", &selectable),
        ] {
            if let Some(value) = spec_wide {
                v.insert(field.into(), value.clone());
            }
        }
    }
    spec.insert("versions".into(), Value::Array(versions));
    if let Some(Value::Object(conversion)) = spec.get_mut("conversion") {
        let client = conversion.remove("webhookClientConfig");
        let review = conversion.remove("conversionReviewVersions");
        if client.is_some() || review.is_some() {
            let mut webhook = serde_json::Map::new();
            if let Some(client) = client {
                webhook.insert("clientConfig".into(), client);
            }
            if let Some(review) = review {
                webhook.insert("conversionReviewVersions".into(), review);
            }
            conversion.insert("webhook".into(), Value::Object(webhook));
        }
    }
    if spec.get("preserveUnknownFields") != Some(&Value::Bool(true)) {
        spec.remove("preserveUnknownFields");
    }
}

/// v1beta1 printer columns name their path `JSONPath`; v1 `jsonPath`.
fn columns_v1(columns: &Value) -> Value {
    let mut columns = columns.clone();
    for c in columns.as_array_mut().into_iter().flatten() {
        if let Some(c) = c.as_object_mut()
            && let Some(path) = c.remove("JSONPath")
        {
            c.insert("jsonPath".into(), path);
        }
    }
    columns
}

fn lowercase_label(field: &str, value: &str, errs: &mut ErrorList) {
    for m in dns1035_label(value) {
        errs.push(FieldError::invalid(field, value, m));
    }
}

/// A kind (or list kind): a DNS-1035 label once lowercased.
fn kind_label(field: &str, value: &str, errs: &mut ErrorList) {
    let problems = dns1035_label(&value.to_lowercase());
    if !problems.is_empty() {
        errs.push(FieldError::invalid(
            field,
            value,
            format!(
                "may have mixed case, but should otherwise match: {}",
                problems.join(",")
            ),
        ));
    }
}

/// Upstream's ValidateCustomResourceDefinitionSpec, for the rules users meet.
fn validate_spec(crd: &CustomResourceDefinition) -> ErrorList {
    let mut errs = Vec::new();
    let spec = &crd.spec;
    let names = &spec.names;
    let name = crd.metadata.name.as_deref().unwrap_or("");
    if name != format!("{}.{}", names.plural, spec.group) {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if spec.group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        for m in dns1123_subdomain(&spec.group) {
            errs.push(FieldError::invalid("spec.group", spec.group.clone(), m));
        }
        if spec.group.split('.').count() < 2 {
            errs.push(FieldError::invalid(
                "spec.group",
                spec.group.clone(),
                "should be a domain with at least one dot",
            ));
        }
    }
    if !matches!(spec.scope.as_str(), "Cluster" | "Namespaced") {
        errs.push(FieldError::not_supported(
            "spec.scope",
            spec.scope.clone(),
            &["Cluster", "Namespaced"],
        ));
    }
    if names.plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else {
        lowercase_label("spec.names.plural", &names.plural, &mut errs);
    }
    if let Some(singular) = names.singular.as_deref().filter(|s| !s.is_empty()) {
        lowercase_label("spec.names.singular", singular, &mut errs);
    }
    if names.kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    } else {
        kind_label("spec.names.kind", &names.kind, &mut errs);
    }
    if let Some(list_kind) = names.list_kind.as_deref().filter(|k| !k.is_empty()) {
        kind_label("spec.names.listKind", list_kind, &mut errs);
    }
    if names.list_kind.as_deref() == Some(names.kind.as_str()) {
        errs.push(FieldError::invalid(
            "spec.names.listKind",
            names.kind.clone(),
            "kind and listKind may not be the same",
        ));
    }
    for (i, s) in names.short_names.iter().flatten().enumerate() {
        lowercase_label(&format!("spec.names.shortNames[{i}]"), s, &mut errs);
    }
    for (i, s) in names.categories.iter().flatten().enumerate() {
        lowercase_label(&format!("spec.names.categories[{i}]"), s, &mut errs);
    }
    if let Some(conversion) = &spec.conversion {
        validate_conversion(conversion, &mut errs);
    }
    validate_versions(&spec.versions, &mut errs);
    errs
}

/// `spec.conversion` as upstream's `validateCustomResourceConversion` (its field names are the
/// internal ones, `webhookClientConfig` and `conversionReviewVersions`, as upstream reports them).
fn validate_conversion(conversion: &CustomResourceConversion, errs: &mut ErrorList) {
    const AT: &str = "spec.conversion";
    let webhook = conversion.webhook.as_ref();
    let client_config = webhook.and_then(|w| w.client_config.as_ref());
    let review_versions = webhook
        .map(|w| w.conversion_review_versions.as_slice())
        .unwrap_or(&[]);
    match conversion.strategy.as_str() {
        "Webhook" => {
            match client_config {
                None => errs.push(FieldError::required(
                    format!("{AT}.webhookClientConfig"),
                    "required when strategy is set to Webhook",
                )),
                Some(cc) if cc.url.is_some() == cc.service.is_some() => {
                    errs.push(FieldError::required(
                        format!("{AT}.webhookClientConfig"),
                        "exactly one of url or service is required",
                    ))
                }
                Some(cc) => {
                    if let Some(url) = &cc.url
                        && !url.starts_with("https://")
                    {
                        errs.push(FieldError::invalid(
                            format!("{AT}.webhookClientConfig.url"),
                            url.as_str(),
                            "'https' is the only allowed URL scheme",
                        ));
                    }
                    if let Some(s) = &cc.service {
                        if s.name.is_empty() {
                            errs.push(FieldError::required(
                                format!("{AT}.webhookClientConfig.service.name"),
                                "service name is required",
                            ));
                        }
                        if s.namespace.is_empty() {
                            errs.push(FieldError::required(
                                format!("{AT}.webhookClientConfig.service.namespace"),
                                "service namespace is required",
                            ));
                        }
                    }
                }
            }
            let at = format!("{AT}.conversionReviewVersions");
            if review_versions.is_empty() {
                errs.push(FieldError::required(at, "must specify one of v1, v1beta1"));
            } else if !review_versions.iter().any(|v| v == "v1" || v == "v1beta1") {
                errs.push(FieldError::invalid(
                    at,
                    json!(review_versions),
                    "must include at least one of v1, v1beta1",
                ));
            }
        }
        "None" => {
            if client_config.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{AT}.webhookClientConfig"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
            if !review_versions.is_empty() {
                errs.push(FieldError::forbidden(
                    format!("{AT}.conversionReviewVersions"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{AT}.strategy"),
            other,
            &["None", "Webhook"],
        )),
    }
}

fn validate_versions(versions: &[CustomResourceDefinitionVersion], errs: &mut ErrorList) {
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            json!([]),
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let storage = versions.iter().filter(|v| v.storage).count();
    if storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            json!(versions.iter().map(|v| &v.name).collect::<Vec<_>>()),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions.iter().any(|v| v.served) {
        errs.push(FieldError::invalid(
            "spec.versions",
            json!(versions.iter().map(|v| &v.name).collect::<Vec<_>>()),
            "must have at least one version marked as served",
        ));
    }
    // Upstream validates its internal form, where a schema every version shares moves to
    // `spec.validation` and is checked (and reported) once.
    fn schema_of(v: &CustomResourceDefinitionVersion) -> Option<&JSONSchemaProps> {
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
    }
    let shared = versions
        .first()
        .and_then(schema_of)
        .filter(|first| versions.iter().all(|v| schema_of(v) == Some(*first)));
    if let Some(props) = shared {
        let schema_path = "spec.validation.openAPIV3Schema";
        errs.extend(super::schema::validate_structural(props, schema_path));
        if let Err(e) = super::cel::Validator::compile(props, schema_path) {
            errs.extend(e);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        if !seen.insert(&v.name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                v.name.clone(),
                "must be unique",
            ));
        }
        for m in dns1035_label(&v.name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                v.name.clone(),
                m,
            ));
        }
        let schema = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        match schema {
            _ if shared.is_some() => {}
            None => errs.push(FieldError::required(
                format!("{path}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(props) => {
                let schema_path = format!("{path}.schema.openAPIV3Schema");
                errs.extend(super::schema::validate_structural(props, &schema_path));
                if let Err(e) = super::cel::Validator::compile(props, &schema_path) {
                    errs.extend(e);
                }
            }
        }
        if let Some(scale) = v.subresources.as_ref().and_then(|s| s.scale.as_ref()) {
            let sp = format!("{path}.subresources.scale");
            check_scale_path(
                &format!("{sp}.specReplicasPath"),
                &scale.spec_replicas_path,
                ".spec.",
                errs,
            );
            check_scale_path(
                &format!("{sp}.statusReplicasPath"),
                &scale.status_replicas_path,
                ".status.",
                errs,
            );
            if let Some(sel) = scale.label_selector_path.as_deref() {
                check_scale_path(&format!("{sp}.labelSelectorPath"), sel, ".", errs);
            }
        }
        for (j, c) in v.additional_printer_columns.iter().flatten().enumerate() {
            let cp = format!("{path}.additionalPrinterColumns[{j}]");
            if c.name.is_empty() {
                errs.push(FieldError::required(format!("{cp}.name"), ""));
            }
            if !COLUMN_TYPES.contains(&c.type_.as_str()) {
                errs.push(FieldError::not_supported(
                    format!("{cp}.type"),
                    c.type_.clone(),
                    COLUMN_TYPES,
                ));
            }
            if c.json_path.is_empty() {
                errs.push(FieldError::required(format!("{cp}.jsonPath"), ""));
            } else if let Err(e) = JsonPath::parse(&c.json_path) {
                errs.push(FieldError::invalid(
                    format!("{cp}.jsonPath"),
                    c.json_path.clone(),
                    format!("invalid JSONPath: {e}"),
                ));
            }
        }
        for (j, f) in v.selectable_fields.iter().flatten().enumerate() {
            let fp = format!("{path}.selectableFields[{j}].jsonPath");
            match JsonPath::parse(&f.json_path) {
                Ok(p) if p.fields().is_some() => {}
                _ => errs.push(FieldError::invalid(
                    fp,
                    f.json_path.clone(),
                    "must be a simple path to a field, e.g. .spec.color",
                )),
            }
        }
    }
}

fn check_scale_path(field: &str, path: &str, prefix: &str, errs: &mut ErrorList) {
    let simple = JsonPath::parse(path).is_ok_and(|p| p.fields().is_some());
    if !simple || !path.starts_with(prefix) {
        errs.push(FieldError::invalid(
            field,
            path,
            format!(
                "should be a json path under {}",
                prefix.trim_end_matches('.')
            ),
        ));
    }
}

/// A condition as upstream writes it.
pub fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_, "status": status,
        "lastTransitionTime": crate::registry::store::now_rfc3339(),
        "reason": reason, "message": message,
    })
}

/// Sets a condition in `status.conditions`, keeping its transition time when the status is
/// unchanged; returns whether anything changed.
pub fn set_condition(obj: &mut Value, cond: Value) -> bool {
    let Some(o) = obj.as_object_mut() else {
        return false;
    };
    let status = o.entry("status").or_insert_with(|| json!({}));
    let conditions = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = conditions else {
        return false;
    };
    let type_ = cond.get("type").cloned();
    match list.iter_mut().find(|c| c.get("type") == type_.as_ref()) {
        Some(existing) => {
            let same = |k: &str| existing.get(k) == cond.get(k);
            let same_status = same("status");
            if same_status && same("reason") && same("message") {
                return false;
            }
            let mut cond = cond;
            if same_status {
                cond["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = cond;
        }
        None => list.push(cond),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1beta1_crds_as_kube_apiserver_stores_them_read_as_v1() {
        let mut stored = json!({
            "apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "version": "v1", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "subresources": {"status": {}},
                "validation": {"openAPIV3Schema": {"type": "object"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "JSONPath": ".spec.size"}],
                "versions": [{"name": "v1", "served": true, "storage": true}],
                "conversion": {"strategy": "Webhook", "conversionReviewVersions": ["v1"],
                    "webhookClientConfig": {"url": "https://example.com/convert"}},
                "preserveUnknownFields": false,
            },
        });
        from_v1beta1(&mut stored);
        assert_eq!(
            stored["spec"],
            json!({
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                }],
                "conversion": {"strategy": "Webhook", "webhook": {
                    "clientConfig": {"url": "https://example.com/convert"},
                    "conversionReviewVersions": ["v1"]}},
            })
        );
        assert_eq!(stored["apiVersion"], "apiextensions.k8s.io/v1");
        // A lone spec.version becomes the only version.
        let mut lone = json!({"apiVersion": V1BETA1, "spec": {"version": "v2"}});
        from_v1beta1(&mut lone);
        assert_eq!(
            lone["spec"]["versions"],
            json!([{"name": "v2", "served": true, "storage": true}])
        );
    }
}
