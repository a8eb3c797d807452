//! Upstream's format library (`k8s.io/apiserver/pkg/cel/library/format.go`):
//! `format.dns1123Label()` and its siblings, `format.named(name)` (an optional), and
//! `<Format>.validate(s)`: `optional.none()` when `s` is valid, else the messages upstream's
//! validators give.

use super::url::Url;
use super::{CelResult, opaque, ret, string_of, values};
use crate::registry::validation::{
    dns1035_label, dns1123_label, dns1123_subdomain, label_value, qualified_name,
};
use ::cel::common::types::{STRING_TYPE, Type};
use ::cel::common::value::CowVal;
use ::cel::objects::{Opaque, OptionalValue};
use ::cel::{Env, Value};
use base64::Engine;
use std::sync::Arc;

/// A format's validator: the messages for a string, none when it is valid.
type Validator = fn(&str) -> Vec<String>;

/// The formats by the names `format.named` takes, each with its validator.
const FORMATS: [(&str, Validator); 13] = [
    ("dns1123Label", dns1123_label),
    ("dns1123Subdomain", dns1123_subdomain),
    ("dns1035Label", dns1035_label),
    ("qualifiedName", qualified_name),
    ("dns1123LabelPrefix", |s| dns1123_label(&prefix(s))),
    ("dns1123SubdomainPrefix", |s| dns1123_subdomain(&prefix(s))),
    ("dns1035LabelPrefix", |s| dns1035_label(&prefix(s))),
    ("labelValue", label_value),
    ("uri", |s| Url::parse(s).err().into_iter().collect()),
    ("uuid", |s| {
        failing(
            uuid::Uuid::try_parse(s).is_ok() && s.len() == 36,
            "does not match the UUID format",
        )
    }),
    ("byte", |s| {
        let ok = base64::engine::general_purpose::STANDARD.decode(s).is_ok();
        failing(ok, "invalid base64")
    }),
    ("date", |s| failing(is_date(s), "invalid date")),
    ("datetime", |s| failing(is_datetime(s), "invalid datetime")),
];

/// Upstream's `maskTrailingDash`: a generateName prefix may end in a dash.
fn prefix(s: &str) -> String {
    match s.strip_suffix('-') {
        Some(head) if !head.is_empty() => format!("{head}a"),
        _ => s.to_string(),
    }
}

fn failing(ok: bool, message: &str) -> Vec<String> {
    if ok {
        Vec::new()
    } else {
        vec![message.to_string()]
    }
}

/// `YYYY-MM-DD`, a day that exists (RFC 3339's full-date).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// An RFC 3339 date-time: a full-date, `T` (or a space), `hh:mm:ss[.frac]`, and `Z` or an offset.
fn is_datetime(s: &str) -> bool {
    if s.len() < 20 || !is_date(&s[..10]) || !matches!(&s[10..11], "T" | "t" | " ") {
        return false;
    }
    let rest = &s[11..];
    let two = |t: &str, max: u32| {
        t.len() == 2
            && t.bytes().all(|c| c.is_ascii_digit())
            && t.parse::<u32>().is_ok_and(|n| n <= max)
    };
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => return false,
    };
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = parts.len() == 3 && two(parts[0], 23) && two(parts[1], 59) && two(parts[2], 60);
    let fraction_ok = !fraction.is_empty() && fraction.bytes().all(|c| c.is_ascii_digit());
    let zone_ok = matches!(zone, "Z" | "z")
        || zone.len() == 6 && zone[3..4] == *":" && two(&zone[1..3], 23) && two(&zone[4..6], 59);
    clock_ok && fraction_ok && zone_ok
}

/// A format: its validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format(usize);

impl Opaque for Format {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.NamedFormat"
    }
}

fn format_type() -> Type {
    Type::new_opaque_type("kubernetes.NamedFormat")
}

/// Registers the format library's functions.
pub(super) fn register(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    for (i, (name, _)) in FORMATS.iter().enumerate() {
        env.add_overload(
            &format!("format.{name}"),
            &format!("format-{name}"),
            vec![],
            FORMAT_OF[i],
        )?;
    }
    env.add_overload("format.named", "format-named", vec![STRING_TYPE], named)?;
    env.add_member_overload(
        "validate",
        "format-validate",
        format_type(),
        vec![STRING_TYPE],
        validate,
    )?;
    Ok(())
}

/// One zero-argument function per format, as overloads take no state.
const FORMAT_OF: [super::Overload; 13] = [
    |_| format(0),
    |_| format(1),
    |_| format(2),
    |_| format(3),
    |_| format(4),
    |_| format(5),
    |_| format(6),
    |_| format(7),
    |_| format(8),
    |_| format(9),
    |_| format(10),
    |_| format(11),
    |_| format(12),
];

fn format<'b, 'v>(i: usize) -> CelResult<'b, 'v> {
    ret(Value::Opaque(Arc::new(Format(i))))
}

fn named<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let name = string_of(&args[0], "format.named")?;
    let found = FORMATS.iter().position(|(n, _)| **n == *name);
    let optional = match found {
        Some(i) => OptionalValue::of(Value::Opaque(Arc::new(Format(i)))),
        None => OptionalValue::none(),
    };
    ret(Value::Opaque(Arc::new(optional)))
}

fn validate<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let Format(i) = *opaque::<Format>(&args[0], "validate")?;
    let s = string_of(&args[1], "validate")?;
    let errors = (FORMATS[i].1)(&s);
    let optional = if errors.is_empty() {
        OptionalValue::none()
    } else {
        let list = errors
            .into_iter()
            .map(|e| Value::String(Arc::new(e)))
            .collect();
        OptionalValue::of(Value::List(Arc::new(list)))
    };
    ret(Value::Opaque(Arc::new(optional)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;

    #[test]
    fn formats_validate_as_upstream() {
        for (expr, want) in [
            (
                "!format.dns1123Label().validate('my-name').hasValue()",
                "true",
            ),
            (
                "format.dns1123Label().validate('My_Name').value().size()",
                "1",
            ),
            (
                "!format.dns1123LabelPrefix().validate('my-name-').hasValue()",
                "true",
            ),
            (
                "format.named('dns1035Label').value().validate('1abc').hasValue()",
                "true",
            ),
            ("!format.named('nope').hasValue()", "true"),
            ("!format.labelValue().validate('').hasValue()", "true"),
            (
                "!format.qualifiedName().validate('example.com/Name').hasValue()",
                "true",
            ),
            (
                "!format.uri().validate('https://example.com/x').hasValue()",
                "true",
            ),
            (
                "format.uri().validate('relative').value()[0]",
                "parse \"relative\": invalid URI for request",
            ),
            (
                "!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
                "true",
            ),
            (
                "format.uuid().validate('123').value()[0]",
                "does not match the UUID format",
            ),
            ("format.byte().validate('!!').value()[0]", "invalid base64"),
            ("!format.date().validate('2024-02-29').hasValue()", "true"),
            (
                "format.date().validate('2023-02-29').value()[0]",
                "invalid date",
            ),
            (
                "!format.datetime().validate('2024-02-29T12:00:00.5+01:00').hasValue()",
                "true",
            ),
            (
                "format.datetime().validate('2024-02-29 25:00:00Z').value()[0]",
                "invalid datetime",
            ),
        ] {
            assert_eq!(eval(expr), Ok(want.to_string()), "{expr}");
        }
    }
}
