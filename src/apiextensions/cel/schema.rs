//! The schema tree rules are compiled against and evaluated on: one node per schema node with its
//! compiled rules, and the CEL names of properties (upstream's `Escape`).

use ::cel::Program;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One schema node: what value conversion needs, and the node's compiled rules.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) ty: String,
    pub(super) rules: Vec<CompiledRule>,
    pub(super) properties: BTreeMap<String, Node>,
    pub(super) items: Option<Box<Node>>,
    pub(super) additional: Option<Box<Node>>,
    pub(super) list_type: Option<String>,
    pub(super) map_keys: Vec<String>,
    pub(super) map_type: Option<String>,
    pub(super) int_or_string: bool,
    /// The schema's `format`.
    pub(super) format: Option<String>,
    /// Upstream's `MaxElements`: the most characters, items or entries the value may have.
    pub(super) max_elements: u64,
    /// Upstream's `MinSerializedSize`: the fewest bytes the value serializes to.
    pub(super) min_size: u64,
    pub(super) preserve_unknown: bool,
    /// The root of a resource: the custom object or an embedded resource (apiVersion, kind, metadata).
    pub(super) resource_root: bool,
    /// Whether this node or one below it has rules.
    pub(super) has_rules: bool,
    /// Defaults of the item properties, for map-list keys.
    pub(super) default: Option<Json>,
}

/// One rule, compiled.
#[derive(Debug)]
pub(super) struct CompiledRule {
    pub(super) rule: ValidationRule,
    pub(super) program: Program,
    pub(super) uses_old_self: bool,
    pub(super) message: Option<Program>,
    /// `fieldPath` normalized as a field path relative to the node, e.g. `a.b` or `m[k]`.
    pub(super) field_path: Option<String>,
}

/// CEL's reserved words: a property named so is reachable as `__{word}__`.
const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The `metadata` a rule sees at a resource root: only `name` and `generateName`.
pub(super) fn metadata_node() -> &'static Node {
    static META: OnceLock<Node> = OnceLock::new();
    META.get_or_init(|| {
        let string = || Node {
            ty: "string".into(),
            max_elements: super::cost::MAX_REQUEST_BYTES - 2,
            min_size: 2,
            ..Node::default()
        };
        Node {
            ty: "object".into(),
            properties: BTreeMap::from([
                ("name".to_string(), string()),
                ("generateName".to_string(), string()),
            ]),
            ..Node::default()
        }
    })
}

impl Node {
    /// Whether this is a string CEL sees as another type (upstream's `SchemaDeclType`: format
    /// byte, duration, date or date-time are bytes, durations and timestamps).
    pub(super) fn opaque_string(&self) -> bool {
        self.ty == "string"
            && matches!(
                self.format.as_deref(),
                Some("byte" | "duration" | "date" | "date-time")
            )
    }

    /// The node of an OpenAPI v3 schema whose `$ref`s point into `components`
    /// (`#/components/schemas/<name>`), for type checking: no rules, no defaults.
    pub(super) fn from_openapi(schema: &Json, components: &Map<String, Json>) -> Node {
        from_openapi(schema, components, &mut Vec::new())
    }
}

/// `within` holds the definitions being expanded: a `$ref` back to one of them (a recursive
/// type, such as CRDs' `JSONSchemaProps`) is dyn.
fn from_openapi<'c>(
    schema: &'c Json,
    components: &'c Map<String, Json>,
    within: &mut Vec<&'c str>,
) -> Node {
    // kube-openapi wraps a `$ref` with siblings (description, default) in a one-item `allOf`.
    let reference = schema
        .get("$ref")
        .or_else(|| schema["allOf"].get(0)?.get("$ref"));
    if let Some(reference) = reference {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .filter(|name| !within.contains(name));
        let Some((name, target)) = name.and_then(|n| Some((n, components.get(n)?))) else {
            return Node::default();
        };
        within.push(name);
        let node = from_openapi(target, components, within);
        within.pop();
        return node;
    }
    let ty = schema["type"].as_str().unwrap_or_default();
    let format = schema["format"].as_str();
    let flag = |key: &str| schema[key].as_bool() == Some(true);
    let mut child = |s: &'c Json| from_openapi(s, components, within);
    Node {
        ty: ty.to_string(),
        int_or_string: flag("x-kubernetes-int-or-string") || format == Some("int-or-string"),
        format: format.map(String::from),
        preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
        properties: schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, s)| (name.clone(), child(s)))
            .collect(),
        items: schema.get("items").map(|s| Box::new(child(s))),
        additional: schema
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .map(|s| Box::new(child(s))),
        ..Node::default()
    }
}

/// The CEL name of a property, as upstream's `Escape`; None when the name can't be one.
pub(super) fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn property_names_that_are_keywords_or_have_dashes_are_escaped() {
        let v = validator(spec_schema(
            json!({"namespace": {"type": "string"}, "max-size": {"type": "integer"}}),
            json!([{"rule": "self.__namespace__ == 'ns' && self.max__dash__size > 1"}]),
        ));
        assert!(
            v.validate(&obj(json!({"namespace": "ns", "max-size": 2})), None)
                .is_empty()
        );
        assert_eq!(
            v.validate(&obj(json!({"namespace": "ns", "max-size": 0})), None)
                .len(),
            1
        );
        assert_eq!(
            escape("a__b.c/d"),
            Some("a__underscores__b__dot__c__slash__d".into())
        );
        assert_eq!(escape("1a"), None);
        assert_eq!(escape("a b"), None);
    }
}
