//! Upstream's quantity library (`k8s.io/apiserver/pkg/cel/library/quantity.go`): `quantity(s)`,
//! `isQuantity(s)` and the comparisons and arithmetic of `kubernetes.Quantity` values, exact
//! to the nano unit as upstream's `resource.Quantity`.

use super::{CelResult, opaque, ret, string_of, values};
use crate::quota::amount::scaled;
use ::cel::common::types::{INT_TYPE, STRING_TYPE, Type};
use ::cel::common::value::CowVal;
use ::cel::objects::Opaque;
use ::cel::{Env, ExecutionError, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// Upstream's words for a string that is not a quantity.
const NOT_A_QUANTITY: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const NANOS: i128 = 1_000_000_000;

/// The CEL type of quantities.
fn quantity_type() -> Type {
    Type::new_opaque_type("kubernetes.Quantity")
}

/// A quantity in nano units; equal quantities (`1`, `1000m`) are one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quantity(i128);

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }
}

impl Quantity {
    fn parse(s: &str) -> Option<Self> {
        // Upstream's parser takes no surrounding space.
        (s.trim() == s).then(|| scaled(s, 9)).flatten().map(Self)
    }
}

/// Registers the quantity library's functions.
pub(super) fn register(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    let q = quantity_type;
    env.add_overload("quantity", "string_to_quantity", vec![STRING_TYPE], parse)?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    env.add_member_overload("sign", "quantity_sign", q(), vec![], sign)?;
    env.add_member_overload("isInteger", "quantity_is_integer", q(), vec![], is_integer)?;
    env.add_member_overload("asInteger", "quantity_as_integer", q(), vec![], as_integer)?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_get_float",
        q(),
        vec![],
        as_float,
    )?;
    env.add_member_overload("add", "quantity_add", q(), vec![q()], add)?;
    env.add_member_overload("add", "quantity_add_int", q(), vec![INT_TYPE], add)?;
    env.add_member_overload("sub", "quantity_sub", q(), vec![q()], sub)?;
    env.add_member_overload("sub", "quantity_sub_int", q(), vec![INT_TYPE], sub)?;
    env.add_member_overload("isLessThan", "quantity_is_less_than", q(), vec![q()], less)?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_is_greater_than",
        q(),
        vec![q()],
        greater,
    )?;
    env.add_member_overload("compareTo", "quantity_compare_to", q(), vec![q()], compare)?;
    Ok(())
}

fn quantity(v: &Value, function: &str) -> Result<Quantity, ExecutionError> {
    opaque::<Quantity>(v, function).copied()
}

/// The second operand of `add`/`sub`: a quantity, or an integer of whole units.
fn operand(v: &Value, function: &str) -> Result<i128, ExecutionError> {
    match v {
        Value::Int(i) => Ok(*i as i128 * NANOS),
        _ => quantity(v, function).map(|q| q.0),
    }
}

fn parse<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let s = string_of(&args[0], "quantity")?;
    let q = Quantity::parse(&s)
        .ok_or_else(|| ExecutionError::function_error("quantity", NOT_A_QUANTITY))?;
    ret(Value::Opaque(Arc::new(q)))
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let s = string_of(&args[0], "isQuantity")?;
    ret(Value::Bool(Quantity::parse(&s).is_some()))
}

fn sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Int(quantity(&args[0], "sign")?.0.signum() as i64))
}

/// The quantity as an int64, when it is a whole number that fits.
fn whole(q: Quantity) -> Option<i64> {
    (q.0 % NANOS == 0)
        .then(|| i64::try_from(q.0 / NANOS).ok())
        .flatten()
}

fn is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(
        whole(quantity(&args[0], "isInteger")?).is_some(),
    ))
}

fn as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let n = whole(quantity(&args[0], "asInteger")?).ok_or_else(|| {
        ExecutionError::function_error(
            "asInteger",
            "cannot convert value to integer: value is not an integer or overflows int64",
        )
    })?;
    ret(Value::Int(n))
}

fn as_float<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let q = quantity(&args[0], "asApproximateFloat")?;
    ret(Value::Float(q.0 as f64 / NANOS as f64))
}

fn arithmetic<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    op: fn(i128, i128) -> Option<i128>,
) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let (a, b) = (quantity(&args[0], function)?, operand(&args[1], function)?);
    let sum =
        op(a.0, b).ok_or_else(|| ExecutionError::function_error(function, "quantity overflow"))?;
    ret(Value::Opaque(Arc::new(Quantity(sum))))
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    arithmetic(args, "add", i128::checked_add)
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    arithmetic(args, "sub", i128::checked_sub)
}

fn ordering(args: Vec<CowVal<'_, '_>>, function: &str) -> Result<Ordering, ExecutionError> {
    let args = values(&args)?;
    Ok(quantity(&args[0], function)?
        .0
        .cmp(&quantity(&args[1], function)?.0))
}

fn less<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    ret(Value::Bool(ordering(args, "isLessThan")? == Ordering::Less))
}

fn greater<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    ret(Value::Bool(
        ordering(args, "isGreaterThan")? == Ordering::Greater,
    ))
}

fn compare<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    ret(Value::Int(ordering(args, "compareTo")? as i64))
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;

    #[test]
    fn quantities_compare_and_add_exactly_as_upstream() {
        for (expr, want) in [
            ("quantity('1') == quantity('1000m')", "true"),
            ("quantity('1Gi').isGreaterThan(quantity('1G'))", "true"),
            ("quantity('500m').isLessThan(quantity('1'))", "true"),
            ("quantity('2Ki').compareTo(quantity('2048'))", "0"),
            ("quantity('1.5').isInteger()", "false"),
            ("quantity('1.5').add(quantity('500m')).asInteger()", "2"),
            ("quantity('1k').sub(1).asInteger()", "999"),
            ("quantity('-3').sign()", "-1"),
            ("quantity('250m').asApproximateFloat()", "0.25"),
            (
                "isQuantity('1Mi') && !isQuantity('1 Mi') && !isQuantity('abc')",
                "true",
            ),
        ] {
            assert_eq!(eval(expr), Ok(want.to_string()), "{expr}");
        }
        assert!(
            eval("quantity('abc')")
                .unwrap_err()
                .contains("quantities must match the regular expression")
        );
        assert!(
            eval("quantity('1.5').asInteger()")
                .unwrap_err()
                .contains("cannot convert value to integer")
        );
    }
}
