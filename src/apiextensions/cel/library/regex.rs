//! Upstream's regex library (`k8s.io/apiserver/pkg/cel/library/regex.go`): `s.find(re)` and
//! `s.findAll(re[, n])`, next to the standard `matches`.

use super::{CelResult, ret, string_of, values};
use ::cel::common::types::{INT_TYPE, STRING_TYPE};
use ::cel::common::value::CowVal;
use ::cel::{Env, ExecutionError, Value};
use std::sync::Arc;

/// Registers the regex library's functions.
pub(super) fn register(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    env.add_member_overload(
        "find",
        "string_find_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    Ok(())
}

fn compiled(pattern: &str, function: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(function, e.to_string()))
}

/// The first match, or empty.
fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let (s, pattern) = (string_of(&args[0], "find")?, string_of(&args[1], "find")?);
    let found = compiled(&pattern, "find")?
        .find(&s)
        .map_or("", |m| m.as_str())
        .to_string();
    ret(Value::String(Arc::new(found)))
}

/// Every match, or the first `n` (all when `n` is negative, none when it is zero), as Go's
/// `FindAllString`.
fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let (s, pattern) = (
        string_of(&args[0], "findAll")?,
        string_of(&args[1], "findAll")?,
    );
    let limit = match args.get(2) {
        Some(Value::Int(n)) if *n >= 0 => *n as usize,
        _ => usize::MAX,
    };
    let found: Vec<Value> = compiled(&pattern, "findAll")?
        .find_iter(&s)
        .take(limit)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    ret(Value::List(Arc::new(found)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;

    #[test]
    fn find_and_find_all_return_matches_as_upstream() {
        for (expr, want) in [
            ("'abc 123'.find('[0-9]+')", "123"),
            ("'abc'.find('[0-9]+')", ""),
            ("'a1 b22 c333'.findAll('[0-9]+')", "[1, 22, 333]"),
            ("'a1 b22 c333'.findAll('[0-9]+', 2)", "[1, 22]"),
            ("'a1 b22 c333'.findAll('[0-9]+', 0)", "[]"),
            ("'a1 b22 c333'.findAll('[0-9]+', -1).size()", "3"),
        ] {
            assert_eq!(eval(expr), Ok(want.to_string()), "{expr}");
        }
        assert!(eval("'a'.find('[')").is_err());
    }
}
