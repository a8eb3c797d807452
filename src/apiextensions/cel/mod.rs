//! CRD validation rules (`x-kubernetes-validations`), compiled and evaluated with CEL as upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema/cel` does.
//!
//! [`Validator::compile`] checks every rule of a schema tree as CRD validation does (syntax, names,
//! fields against the schema, result types, rule fields) and keeps the programs;
//! [`Validator::validate`] evaluates them against a custom object, with `oldSelf` on update.
//!
//! `schema` holds the tree of schema nodes rules are compiled against; `compile` builds it and
//! checks each rule's fields as CRD validation does, `check` type-checks an expression against a
//! node, `eval` runs the rules on objects, and `library` is the CEL environment with the
//! Kubernetes function library, which knows nothing of CRDs (ValidatingAdmissionPolicy reuses it,
//! and `typecheck` checks a policy's expressions against the kinds it matches).

mod check;
mod compile;
mod cost;
mod eval;
mod expression;
mod library;
mod schema;
mod typecheck;

/// A CEL value.
pub use ::cel::Value as CelValue;
pub use expression::{Expression, map_of, value_of};
pub use library::authz::{
    AuthzChecker, AuthzDecision, AuthzQuery, authorizer as authorizer_value,
    request_resource as request_resource_value,
};
pub use typecheck::{KindSchema, PolicyTypes};

use crate::registry::errors::ErrorList;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use schema::Node;
use serde_json::Value as Json;

/// The compiled x-kubernetes-validations rules of one CRD version's schema (all nodes).
#[derive(Debug, Default)]
pub struct Validator {
    root: Option<Node>,
}

impl Validator {
    /// Compiles every rule in the schema tree, reporting errors as CRD validation does under `path`
    /// (the schema's field path, e.g. `spec.versions[0].schema.openAPIV3Schema`).
    pub fn compile(props: &JSONSchemaProps, path: &str) -> Result<Validator, ErrorList> {
        let mut errs = ErrorList::new();
        let mut budget = cost::Budget::default();
        let root = compile::build(props, path, true, None, Some(1), &mut budget, &mut errs);
        budget.check(path, &mut errs);
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Validator {
            root: root.has_rules.then_some(root),
        })
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Evaluates the rules against the custom object `obj`, with `old` the stored object on update.
    pub fn validate(&self, obj: &Json, old: Option<&Json>) -> ErrorList {
        let mut errs = ErrorList::new();
        if let Some(root) = &self.root {
            eval::validate_node(root, "", obj, old, &mut errs);
        }
        errs
    }
}

/// The validator is shared across request handlers.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Validator>();
};

/// Schemas, objects and helpers the tests of every submodule share.
#[cfg(test)]
mod test_support {
    pub(super) use super::Validator;
    pub(super) use crate::registry::errors::ErrorList;
    pub(super) use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    pub(super) use serde_json::Value as Json;
    use serde_json::json;

    pub(super) const AT: &str = "spec.versions[0].schema.openAPIV3Schema";

    pub(super) fn validator(schema: Json) -> Validator {
        let props: JSONSchemaProps = serde_json::from_value(schema).unwrap();
        Validator::compile(&props, AT).unwrap()
    }

    pub(super) fn compile_errors(schema: Json) -> Vec<String> {
        let props: JSONSchemaProps = serde_json::from_value(schema).unwrap();
        Validator::compile(&props, AT)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    pub(super) fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    /// A root schema with `spec` holding the given properties and rules.
    pub(super) fn spec_schema(properties: Json, rules: Json) -> Json {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": properties,
                    "x-kubernetes-validations": rules,
                }
            }
        })
    }

    pub(super) fn replicas_schema(rule: Json) -> Json {
        spec_schema(
            json!({"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}}),
            json!([rule]),
        )
    }

    pub(super) fn obj(spec: Json) -> Json {
        json!({"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": "foo"}, "spec": spec})
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use serde_json::json;

    #[test]
    fn a_schema_without_rules_gives_an_empty_validator() {
        let v = validator(json!({"type": "object", "properties": {"spec": {"type": "object"}}}));
        assert!(v.is_empty());
        assert!(v.validate(&obj(json!({})), None).is_empty());
    }
}
