//! Type-checking a ValidatingAdmissionPolicy's expressions against the schemas of the kinds it
//! matches, as upstream's `validating.TypeChecker` does for the warnings the policy's status
//! reports: `object` and `oldObject` typed by the kind, `params` by the paramKind, `request`
//! and `namespaceObject` by their fixed types, `authorizer` and `variables` declared.

use super::check::{Roots, check_with_variables};
use super::schema::Node;
use serde_json::{Map, Value as Json, json};
use std::sync::OnceLock;

/// A kind's schema as CEL types its objects.
#[derive(Debug)]
pub struct KindSchema(Node);

impl KindSchema {
    /// The schema of a kind from its OpenAPI v3 schema, whose `$ref`s point into `components`.
    /// A root without `metadata` gets the `apiVersion`, `kind` and `metadata.name` every
    /// object has, as upstream's `WithTypeAndObjectMeta`.
    pub fn from_openapi(schema: &Json, components: &Map<String, Json>) -> Self {
        let mut node = Node::from_openapi(schema, components);
        node.resource_root = !node.properties.contains_key("metadata");
        KindSchema(node)
    }
}

/// What a policy's expressions are checked against for one matched kind.
pub struct PolicyTypes<'a> {
    /// The type of `object` and `oldObject`.
    pub object: &'a KindSchema,
    /// The paramKind's schema; without one `params` is undeclared, as upstream's checker has it.
    pub params: Option<&'a KindSchema>,
    /// The Namespace kind's schema, for `namespaceObject` (dyn without it).
    pub namespace: Option<&'a KindSchema>,
}

impl PolicyTypes<'_> {
    /// Checks `expression` with `variables` (name, expression) declared in order; the issues
    /// as cel-go words them.
    pub fn check(&self, expression: &str, variables: &[(String, String)]) -> Result<(), String> {
        let object = Some(&self.object.0);
        let mut roots: Vec<(&str, Option<&Node>)> = vec![
            ("object", object),
            ("oldObject", object),
            ("request", Some(request_node())),
            ("namespaceObject", self.namespace.map(|n| &n.0)),
            ("authorizer", None),
        ];
        if let Some(params) = self.params {
            roots.push(("params", Some(&params.0)));
        }
        let roots: &Roots<'_> = &roots;
        check_with_variables(expression, roots, Some(variables))
    }
}

/// The type of `request`: upstream's `BuildRequestType`, an admission request's fields.
fn request_node() -> &'static Node {
    static REQUEST: OnceLock<Node> = OnceLock::new();
    REQUEST.get_or_init(|| {
        let string = json!({"type": "string"});
        let object = |fields: &[&str]| {
            let properties: Map<String, Json> = fields
                .iter()
                .map(|f| (f.to_string(), string.clone()))
                .collect();
            json!({"type": "object", "properties": properties})
        };
        let kind = object(&["group", "version", "kind"]);
        let resource = object(&["group", "version", "resource"]);
        let strings = json!({"type": "array", "items": string});
        let schema = json!({
            "type": "object",
            "properties": {
                "kind": kind,
                "resource": resource,
                "subResource": string,
                "requestKind": kind,
                "requestResource": resource,
                "requestSubResource": string,
                "name": string,
                "namespace": string,
                "operation": string,
                "userInfo": {"type": "object", "properties": {
                    "username": string,
                    "uid": string,
                    "groups": strings,
                    "extra": {"type": "object", "additionalProperties": strings},
                }},
                "dryRun": {"type": "boolean"},
                "options": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "uid": string,
            },
        });
        Node::from_openapi(&schema, &Map::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Deployment-like kind: `spec.replicas` an integer, `metadata` by `$ref`, a recursive
    /// definition under `spec.schema`.
    fn deployment() -> KindSchema {
        let components: Map<String, Json> = serde_json::from_value(json!({
            "Meta": {"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "creationTimestamp": {"type": "string", "format": "date-time"},
            }},
            "Props": {"type": "object", "properties": {
                "items": {"allOf": [{"$ref": "#/components/schemas/Props"}]},
                "type": {"type": "string"},
            }},
        }))
        .unwrap();
        let schema = json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [{"$ref": "#/components/schemas/Meta"}], "default": {}},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "paused": {"type": "boolean"},
                "schema": {"$ref": "#/components/schemas/Props"},
            }},
        }});
        KindSchema::from_openapi(&schema, &components)
    }

    fn check(expression: &str, variables: &[(&str, &str)]) -> Result<(), String> {
        let object = deployment();
        let types = PolicyTypes {
            object: &object,
            params: None,
            namespace: None,
        };
        let variables: Vec<(String, String)> = variables
            .iter()
            .map(|(n, e)| (n.to_string(), e.to_string()))
            .collect();
        types.check(expression, &variables)
    }

    #[test]
    fn well_typed_expressions_have_no_issues() {
        for ok in [
            "object.spec.replicas > 1",
            "object.spec.replicas > 1.5",
            "'replicas: ' + string(object.spec.replicas)",
            "object.metadata.labels['app'] == 'web' && !object.spec.paused",
            "object.metadata.creationTimestamp < request.name",
            "request.userInfo.groups.exists(g, g == 'admins') && request.dryRun",
            "has(object.spec.schema.items.items.type)",
            "authorizer.group('apps').resource('deployments').check('create').allowed()",
            "variables.replicas % 2 == 1",
            "namespaceObject.metadata.name == 'x'",
        ] {
            let variables = [("replicas", "object.spec.replicas")];
            assert_eq!(check(ok, &variables), Ok(()), "{ok}");
        }
    }

    #[test]
    fn type_confusion_and_unknown_names_are_worded_as_cel_go() {
        assert_eq!(
            check("object.spec.replicas > '1'", &[]).unwrap_err(),
            "ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'\n | object.spec.replicas > '1'\n | .....................^"
        );
        assert_eq!(
            check("'wants replicas > 1, got ' + object.spec.replicas", &[]).unwrap_err(),
            "ERROR: <input>:1:28: found no matching overload for '_+_' applied to '(string, int)'\n | 'wants replicas > 1, got ' + object.spec.replicas\n | ...........................^"
        );
        assert!(
            check("object.spec.maxRetries < 10", &[])
                .unwrap_err()
                .contains("undefined field 'maxRetries'")
        );
        assert!(
            check("params.max > 1", &[])
                .unwrap_err()
                .contains("undeclared reference to 'params'")
        );
        assert!(
            check("variables.missing", &[])
                .unwrap_err()
                .contains("undefined field 'missing'")
        );
        // A variable's type carries into the expressions that use it.
        assert!(
            check(
                "variables.replicas > 'x'",
                &[("replicas", "object.spec.replicas")]
            )
            .unwrap_err()
            .contains("applied to '(int, string)'")
        );
    }
}
