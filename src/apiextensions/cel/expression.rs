//! Expressions evaluated over plain JSON variables, without a schema: admission webhooks'
//! matchConditions (and ValidatingAdmissionPolicy's expressions) see `object`, `oldObject` and
//! `request` as upstream's unstructured values.

use super::eval::{runtime_error, to_cel};
use super::library::env;
use ::cel::{Context, Program, Value};
use serde_json::Value as Json;

/// One compiled expression.
#[derive(Debug)]
pub struct Expression {
    source: String,
    program: Program,
}

impl Expression {
    /// Compiles `source` in the Kubernetes CEL environment; the error is worded as cel-go's.
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = env()
            .compile(source)
            .map_err(|e| e.to_string().replace("\n| ", "\n | "))?;
        Ok(Self {
            source: source.to_string(),
            program,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with `variables` bound; an error is worded as upstream's.
    pub fn evaluate(&self, variables: &[(&str, Value)]) -> Result<Value, String> {
        let mut ctx = Context::with_env(env().clone());
        for (name, value) in variables {
            ctx.add_variable_from_value(*name, value.clone());
        }
        self.program.execute(&ctx).map_err(|e| {
            format!(
                "expression '{}' resulted in error: {}",
                self.source,
                runtime_error(&e)
            )
        })
    }

    /// Evaluates to a bool with `variables` bound; an error, or a result that is not a bool,
    /// is worded as upstream's.
    pub fn evaluate_bool(&self, variables: &[(&str, Value)]) -> Result<bool, String> {
        match self.evaluate(variables)? {
            Value::Bool(b) => Ok(b),
            _ => Err(format!(
                "expression '{}' resulted in non-boolean value",
                self.source
            )),
        }
    }
}

/// A JSON value as CEL sees it (`None`: null).
pub fn value_of(json: Option<&Json>) -> Value {
    json.map_or(Value::Null, |v| to_cel(v, None))
}

/// A CEL map of `entries` (ValidatingAdmissionPolicy's `variables`).
pub fn map_of(entries: Vec<(String, Value)>) -> Value {
    let map: std::collections::HashMap<::cel::objects::Key, Value> =
        entries.into_iter().map(|(k, v)| (k.into(), v)).collect();
    Value::Map(::cel::objects::Map {
        map: std::sync::Arc::new(map),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_expression_sees_its_variables_and_reports_errors_as_upstream() {
        let e = Expression::compile("object.metadata.name == 'a' && oldObject == null").unwrap();
        let obj = json!({"metadata": {"name": "a"}});
        assert_eq!(
            e.evaluate_bool(&[("object", value_of(Some(&obj))), ("oldObject", Value::Null)]),
            Ok(true)
        );
        let missing = Expression::compile("object.spec.x == 1").unwrap();
        assert_eq!(
            missing.evaluate_bool(&[("object", value_of(Some(&obj)))]),
            Err("expression 'object.spec.x == 1' resulted in error: no such key: spec".into())
        );
        assert!(Expression::compile("object.").is_err());
    }
}
