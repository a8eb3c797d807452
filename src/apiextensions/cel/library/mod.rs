//! The CEL environment rules run in: the standard library, cel-rust's strings and lists
//! extensions, and the Kubernetes libraries cel-rust lacks (upstream's
//! `k8s.io/apiserver/pkg/cel/library`): lists, regex, quantities, URLs, IPs and CIDRs,
//! formats and the authorizer.
//! It knows nothing of CRDs, so that ValidatingAdmissionPolicy can share it.

pub mod authz;
mod format;
mod net;
mod quantity;
mod regex;
mod url;

use ::cel::common::types::{DYN_TYPE, LIST_TYPE};
use ::cel::common::value::CowVal;
use ::cel::{Env, ExecutionError, Value, extensions};
use std::sync::{Arc, OnceLock};

/// The shared CEL environment: the standard library, the strings and lists extensions, and the
/// Kubernetes libraries.
pub(super) fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        env.add_extension(extensions::strings)
            .expect("strings extension");
        env.add_extension(extensions::lists)
            .expect("lists extension");
        env.add_extension(k8s_lists).expect("kubernetes lists");
        env.add_extension(regex::register)
            .expect("kubernetes regex");
        env.add_extension(quantity::register)
            .expect("kubernetes quantities");
        env.add_extension(url::register).expect("kubernetes URLs");
        env.add_extension(net::register)
            .expect("kubernetes IPs and CIDRs");
        env.add_extension(authz::register)
            .expect("kubernetes authorizer");
        env.add_extension(format::register)
            .expect("kubernetes formats");
        Arc::new(env)
    })
}

/// Registers the Kubernetes list functions that cel-rust lacks.
fn k8s_lists(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    Ok(())
}

type CelResult<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// A function as overloads are registered.
type Overload = for<'b, 'v> fn(Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v>;

/// The arguments of a call as `Value`s.
fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

/// A string argument.
fn string_of(v: &Value, function: &str) -> Result<Arc<String>, ExecutionError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(ExecutionError::no_such_overload(
            function,
            vec![format!("{:?}", v.type_of())],
        )),
    }
}

/// An argument of one of the libraries' own types.
fn opaque<'a, T: ::cel::objects::Opaque>(
    v: &'a Value,
    function: &str,
) -> Result<&'a T, ExecutionError> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<T>(),
        _ => None,
    }
    .ok_or_else(|| ExecutionError::no_such_overload(function, vec![format!("{:?}", v.type_of())]))
}

/// The receiver's elements.
fn list_of(v: &Value, function: &str) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        _ => Err(ExecutionError::no_such_member_overload(
            function,
            vec![format!("{:?}", v.type_of())],
        )),
    }
}

fn ret<'b, 'v>(v: Value) -> CelResult<'b, 'v> {
    let boxed: Box<dyn ::cel::common::value::Val> = Box::try_from(v)?;
    Ok(CowVal::from(boxed))
}

/// Compares two elements of one type.
fn compare(a: &Value, b: &Value, function: &str) -> Result<std::cmp::Ordering, ExecutionError> {
    a.partial_cmp(b)
        .filter(|_| std::mem::discriminant(a) == std::mem::discriminant(b))
        .ok_or_else(|| ExecutionError::function_error(function, "elements are not comparable"))
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "isSorted")?;
    for w in list.windows(2) {
        if compare(&w[0], &w[1], "isSorted")? == std::cmp::Ordering::Greater {
            return ret(Value::Bool(false));
        }
    }
    ret(Value::Bool(true))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "sum")?;
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for v in list.iter() {
        total = match (&total, v) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(*b).ok_or(ExecutionError::Overflow(
                    "sum",
                    total.clone(),
                    v.clone(),
                ))?)
            }
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or(ExecutionError::Overflow(
                    "sum",
                    total.clone(),
                    v.clone(),
                ))?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(ExecutionError::function_error("sum", "no such overload")),
        };
    }
    ret(total)
}

fn extreme<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    keep: std::cmp::Ordering,
) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], function)?;
    let Some(mut best) = list.first().cloned() else {
        return Err(ExecutionError::function_error(
            function,
            format!("{function} called on empty list"),
        ));
    };
    for v in list.iter().skip(1) {
        if compare(v, &best, function)? == keep {
            best = v.clone();
        }
    }
    ret(best)
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    extreme(args, "min", std::cmp::Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    extreme(args, "max", std::cmp::Ordering::Greater)
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "indexOf")?;
    let i = list.iter().position(|v| v == &args[1]);
    ret(Value::Int(i.map_or(-1, |i| i as i64)))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "lastIndexOf")?;
    let i = list.iter().rposition(|v| v == &args[1]);
    ret(Value::Int(i.map_or(-1, |i| i as i64)))
}

#[cfg(test)]
mod tests {
    // Exercised through CRD rules, the library's first user; only the tests know of them.
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    /// Evaluates `source` with no variables, the result printed plainly (lists as `[a, b]`).
    pub(super) fn eval(source: &str) -> Result<String, String> {
        fn shown(v: &Value) -> String {
            match v {
                Value::String(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::List(l) => {
                    let items: Vec<String> = l.iter().map(shown).collect();
                    format!("[{}]", items.join(", "))
                }
                other => format!("{other:?}"),
            }
        }
        let program = env().compile(source).map_err(|e| e.to_string())?;
        let ctx = ::cel::Context::with_env(env().clone());
        program
            .execute(&ctx)
            .map(|v| shown(&v))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn library_functions_and_macros_used_by_crd_rules_work() {
        let v = validator(spec_schema(
            json!({
                // Bounded, as upstream's cost limits require of lists walked by rules.
                "name": {"type": "string", "maxLength": 64},
                "tags": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 64}},
                "sizes": {"type": "array", "maxItems": 16, "items": {"type": "integer"}},
                "labels": {"type": "object", "maxProperties": 16,
                    "additionalProperties": {"type": "string", "maxLength": 64}},
            }),
            json!([
                {"rule": "size(self.name) <= 10 && self.name.matches('^[a-z]+$')"},
                {"rule": "self.name.upperAscii().lowerAscii() == self.name && self.name.indexOf('b') == 1"},
                {"rule": "self.tags.all(t, t.startsWith('x-')) && self.tags.exists(t, t.contains('y'))"},
                {"rule": "self.tags.map(t, size(t)).filter(n, n > 3).size() == 1"},
                {"rule": "self.sizes.isSorted() && self.sizes.sum() == 6 && self.sizes.min() == 1 && self.sizes.max() == 3"},
                {"rule": "self.sizes.indexOf(2) == 1 && self.sizes.lastIndexOf(9) == -1"},
                {"rule": "'app' in self.labels && self.labels.app == 'web' && self.labels.exists(k, k == 'tier')"},
                // join on a computed list is priced beyond any budget, as upstream prices it.
                {"rule": "self.name.split('b').size() == 2 && self.tags.join('-') == 'x-y-x-zzz'"},
            ]),
        ));
        let good = obj(json!({
            "name": "abc", "tags": ["x-y", "x-zzz"], "sizes": [1, 2, 3],
            "labels": {"app": "web", "tier": "front"},
        }));
        assert_eq!(messages(&v.validate(&good, None)), Vec::<String>::new());
        let bad = obj(json!({
            "name": "aBc", "tags": ["x-y", "z"], "sizes": [2, 1, 3],
            "labels": {"app": "db"},
        }));
        let errs = messages(&v.validate(&bad, None));
        assert_eq!(errs.len(), 8, "{errs:?}");
        assert!(
            errs.iter()
                .all(|e| e.starts_with("spec: Invalid value: \"object\": failed rule: ")),
            "{errs:?}"
        );
    }
}
