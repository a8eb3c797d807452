//! The schema definitions of the OpenAPI documents: generated from k8s-openapi's `schemars`
//! impls, with the Kubernetes extensions k8s-openapi drops put back.

use crate::registry::managed_fields::ListType;
use crate::registry::schema::{patch_meta, tags};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Definition names of the meta types every group-version document refers to.
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(super) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(super) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

pub(super) use crate::registry::schema::Gvk;

/// Which document format a schema is rendered for; they differ in where `$ref`s point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Swagger 2.0: `#/definitions/…`.
    V2,
    /// OpenAPI 3.0: `#/components/schemas/…`.
    V3,
}

impl Format {
    /// The prefix of a `$ref` to a definition.
    pub(super) fn ref_prefix(self) -> &'static str {
        match self {
            Format::V2 => "#/definitions/",
            Format::V3 => "#/components/schemas/",
        }
    }

    /// A `$ref` object pointing at `definition`.
    pub(super) fn reference(self, definition: &str) -> Value {
        json!({ "$ref": format!("{}{definition}", self.ref_prefix()) })
    }
}

/// Every definition of the built-in types, keyed by upstream's name, with `$ref`s still in
/// schemars' `#/$defs/` form, and the kinds (group, version, kind → definition) they serve.
pub(super) struct Definitions {
    schemas: BTreeMap<String, Value>,
    kinds: HashMap<Gvk, String>,
    gvks: HashMap<String, Vec<Gvk>>,
}

impl Definitions {
    /// The definitions of every built-in kind kubeboot knows a type for.
    pub(super) fn builtin() -> Self {
        let shared = crate::registry::kinds::schemas();
        let schemas: BTreeMap<String, Value> = shared
            .definitions
            .iter()
            .map(|(name, schema)| (name.clone(), schema.clone()))
            .collect();
        let kinds = shared.kinds.clone();
        let mut gvks: HashMap<String, Vec<Gvk>> = HashMap::new();
        // Upstream tags the meta types it serves with their core/v1 kinds too.
        gvks.insert(STATUS.into(), vec![("", "v1", "Status")]);
        gvks.insert(
            API_RESOURCE_LIST.into(),
            vec![("", "v1", "APIResourceList")],
        );
        gvks.insert(DELETE_OPTIONS.into(), vec![("", "v1", "DeleteOptions")]);
        gvks.insert(WATCH_EVENT.into(), vec![("", "v1", "WatchEvent")]);
        let mut by_kind = HashMap::new();
        for (gvk, definition) in kinds {
            gvks.entry(definition.clone()).or_default().push(gvk);
            by_kind.insert(gvk, definition);
        }
        Definitions {
            schemas,
            kinds: by_kind,
            gvks,
        }
    }

    /// The definition name of a kind, if a type is known for it.
    pub(super) fn definition_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|((g, v, k), _)| *g == group && *v == version && *k == kind)
            .map(|(_, d)| d.as_str())
    }

    /// The names of every definition reachable from `roots` through `$ref`s; list definitions
    /// (`…List`) of `lists` are included with their items and ListMeta.
    pub(super) fn closure<'a>(
        &self,
        roots: impl IntoIterator<Item = &'a str>,
        lists: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.into_iter().map(str::to_string).collect();
        for item in lists {
            stack.push(item.clone());
            stack.push(LIST_META.to_string());
        }
        while let Some(name) = stack.pop() {
            if !self.schemas.contains_key(&name) || !seen.insert(name.clone()) {
                continue;
            }
            collect_refs(&self.schemas[&name], &mut stack);
        }
        seen
    }

    /// Renders the definitions named by `names`, plus a `<Kind>List` for each of `lists`, with
    /// `$ref`s for `format` and the Kubernetes extensions.
    pub(super) fn render(
        &self,
        names: &BTreeSet<String>,
        lists: &BTreeSet<String>,
        format: Format,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for name in names {
            out.insert(name.clone(), self.render_one(name, format));
        }
        for item in lists {
            out.insert(format!("{item}List"), self.render_list(item, format));
        }
        out
    }

    fn render_one(&self, name: &str, format: Format) -> Value {
        let mut schema = self.schemas[name].clone();
        rewrite_refs(&mut schema, format);
        match name {
            // Upstream publishes these as strings with a format; k8s-openapi only marks them
            // `x-kubernetes-int-or-string`, which leaves `kubectl explain` without a type.
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                schema["type"] = json!("string");
                schema["format"] = json!("int-or-string");
            }
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                schema["type"] = json!("string");
            }
            _ => {}
        }
        let gvks = self.gvks.get(name);
        if let Some(gvks) = gvks {
            schema["x-kubernetes-group-version-kind"] = gvk_list(gvks);
        }
        let Some(object) = schema.as_object_mut() else {
            return schema;
        };
        // k8s-openapi makes `metadata` required on every resource because its Rust field is not
        // optional; upstream requires no metadata, and kubectl explain shows "-required-".
        if gvks.is_some()
            && let Some(Value::Array(required)) = object.get_mut("required")
        {
            required.retain(|r| r != "metadata");
            if required.is_empty() {
                object.remove("required");
            }
        }
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            let enums = enums().get(name);
            for (field, property) in properties.iter_mut() {
                add_field_extensions(name, field, property);
                if let Some(values) = enums.and_then(|e| e.get(field)) {
                    add_enum(property, values);
                }
            }
        }
        schema
    }

    fn render_list(&self, item: &str, format: Format) -> Value {
        let kind = item.rsplit('.').next().unwrap_or(item);
        let gvks: Vec<Gvk> = self
            .gvks
            .get(item)
            .map(|gvks| gvks.iter().map(|(g, v, _)| (*g, *v, "")).collect())
            .unwrap_or_default();
        let list_gvks: Vec<Value> = gvks
            .iter()
            .map(|(g, v, _)| json!({"group": g, "kind": format!("{kind}List"), "version": v}))
            .collect();
        let mut metadata = format.reference(LIST_META);
        metadata["description"] = json!(
            "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
        );
        json!({
            "description": format!("{kind}List is a list of {kind} objects."),
            "properties": {
                "apiVersion": {
                    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                    "type": "string",
                },
                "items": {
                    "description": format!("Items is the list of {kind}."),
                    "items": format.reference(item),
                    "type": "array",
                },
                "kind": {
                    "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                    "type": "string",
                },
                "metadata": metadata,
            },
            "required": ["items"],
            "type": "object",
            "x-kubernetes-group-version-kind": list_gvks,
        })
    }
}

fn gvk_list(gvks: &[Gvk]) -> Value {
    Value::Array(
        gvks.iter()
            .map(|(g, v, k)| json!({"group": g, "kind": k, "version": v}))
            .collect(),
    )
}

/// A field's enum values as upstream publishes them, with its description's closing block.
#[derive(serde::Deserialize)]
struct EnumValues {
    #[serde(rename = "enum")]
    values: Vec<Value>,
    #[serde(rename = "values")]
    described: String,
}

/// Upstream's enums by definition and field (scripts/gen_openapi_enums.py), which k8s-openapi
/// lacks and `kubectl explain` prints as "Possible enum values".
fn enums() -> &'static HashMap<String, HashMap<String, EnumValues>> {
    static ENUMS: std::sync::OnceLock<HashMap<String, HashMap<String, EnumValues>>> =
        std::sync::OnceLock::new();
    ENUMS.get_or_init(|| serde_json::from_str(include_str!("enums.json")).expect("valid JSON"))
}

fn add_enum(property: &mut Value, values: &EnumValues) {
    let Some(object) = property.as_object_mut() else {
        return;
    };
    object.insert("enum".into(), Value::Array(values.values.clone()));
    if let Some(Value::String(description)) = object.get_mut("description")
        && !description.contains("Possible enum values:")
    {
        description.push_str(&values.described);
    }
}

/// The patch strategy of the field from the patch table, and its list type.
fn add_field_extensions(definition: &str, field: &str, property: &mut Value) {
    let Some((strategy, merge_key)) = patch_meta::patch_meta(definition, field) else {
        return;
    };
    let Some(object) = property.as_object_mut() else {
        return;
    };
    object.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
    if let Some(key) = merge_key {
        object.insert("x-kubernetes-patch-merge-key".into(), json!(key));
    }
    if object.get("type").and_then(Value::as_str) != Some("array") {
        return;
    }
    // The list types apply merges by, as upstream's `+listType` tags publish them; atomic
    // lists are left untagged.
    match tags::list_type(definition, field) {
        ListType::Map(keys) => {
            let keys: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
            object.insert("x-kubernetes-list-type".into(), json!("map"));
            object.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
        ListType::Set => {
            object.insert("x-kubernetes-list-type".into(), json!("set"));
        }
        ListType::Atomic => {}
    }
}

/// Pushes the definition names of every `$ref` inside `schema`.
fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => out.push(ref_name(reference).into()),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Points every `$ref` of `schema` at the definitions of `format`.
fn rewrite_refs(schema: &mut Value, format: Format) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        *reference = format!("{}{}", format.ref_prefix(), ref_name(reference));
                    }
                    (_, value) => rewrite_refs(value, format),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, format)),
        _ => {}
    }
}

/// The definition name of a `$ref` such as `#/$defs/io.k8s.api.core.v1.PodSpec`; upstream's
/// names contain no '/'.
fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}
