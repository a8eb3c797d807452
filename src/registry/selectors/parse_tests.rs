//! labels.Parse and NewRequirement against upstream Go's own output for 257 inputs
//! (tests/testdata/label-selectors.txt, recorded from k8s.io/apimachinery v1.32).

use super::*;

const FIXTURE: &str = include_str!("../../../tests/testdata/label-selectors.txt");

const OPERATORS: [Operator; 9] = [
    Operator::Exists,
    Operator::DoesNotExist,
    Operator::Equals,
    Operator::DoubleEquals,
    Operator::NotEquals,
    Operator::In,
    Operator::NotIn,
    Operator::GreaterThan,
    Operator::LessThan,
];

/// Reads one Go `%q` literal from the start of `s`; returns it and the rest.
fn take_quoted(s: &str) -> (String, &str) {
    let mut chars = s.char_indices();
    assert_eq!(chars.next(), Some((0, '"')), "expected a literal in {s:?}");
    let mut out = Vec::new();
    let hex = |chars: &mut std::str::CharIndices, n: usize| {
        let digits: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
        u32::from_str_radix(&digits, 16).expect("hex escape")
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (String::from_utf8(out).expect("utf-8"), &s[i + 1..]),
            '\\' => {
                let (_, e) = chars.next().expect("escape");
                let mut push =
                    |c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                match e {
                    'a' => push('\u{07}'),
                    'b' => push('\u{08}'),
                    'f' => push('\u{0c}'),
                    'n' => push('\n'),
                    'r' => push('\r'),
                    't' => push('\t'),
                    'v' => push('\u{0b}'),
                    '\\' | '"' => push(e),
                    'x' => out.push(hex(&mut chars, 2) as u8),
                    'u' => push(char::from_u32(hex(&mut chars, 4)).expect("rune")),
                    'U' => push(char::from_u32(hex(&mut chars, 8)).expect("rune")),
                    _ => panic!("unknown escape \\{e} in {s:?}"),
                }
            }
            _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    panic!("unterminated literal {s:?}");
}

/// Parses `<%q key> <operator> <%q value>...` (a `req` or `new` line's tail).
fn parse_requirement_line(s: &str) -> Requirement {
    let (key, rest) = take_quoted(s);
    let mut rest = rest.strip_prefix(' ').expect("operator");
    let op_str = rest.split(' ').next().unwrap();
    rest = &rest[op_str.len()..];
    let operator = *OPERATORS
        .iter()
        .find(|op| op.as_str() == op_str)
        .unwrap_or_else(|| panic!("operator {op_str:?}"));
    let mut values = Vec::new();
    while let Some(tail) = rest.strip_prefix(' ') {
        let (v, r) = take_quoted(tail);
        values.push(v);
        rest = r;
    }
    assert!(rest.is_empty(), "trailing {rest:?}");
    Requirement {
        key,
        operator,
        values,
    }
}

/// What upstream produced for one case: its error, or its requirements (sorted, since Go's
/// unstable sort may order one key's requirements differently).
#[derive(Debug, PartialEq)]
enum Outcome {
    Err(String),
    Ok(Vec<Requirement>),
}

fn sorted(mut reqs: Vec<Requirement>) -> Vec<Requirement> {
    reqs.sort_by(|a, b| {
        (&a.key, a.operator.as_str(), &a.values).cmp(&(&b.key, b.operator.as_str(), &b.values))
    });
    reqs
}

#[test]
fn parses_and_refuses_as_upstream_go() {
    let mut cases = 0;
    let mut failures = Vec::new();
    for block in FIXTURE.split("\n\n") {
        let mut lines = block.lines();
        let head = lines.next().expect("case header");
        let mut expected_reqs = Vec::new();
        let mut expected_err = None;
        for line in lines {
            if let Some(q) = line.strip_prefix("err ") {
                expected_err = Some(take_quoted(q).0);
            } else if let Some(r) = line.strip_prefix("req ") {
                expected_reqs.push(parse_requirement_line(r));
            } else {
                assert!(line.starts_with("ok "), "unexpected fixture line {line:?}");
            }
        }
        let expected = match expected_err {
            Some(e) => Outcome::Err(e),
            None => Outcome::Ok(sorted(expected_reqs)),
        };
        let got = if let Some(q) = head.strip_prefix("in ") {
            let (input, rest) = take_quoted(q);
            assert!(rest.is_empty());
            match parse(&input) {
                Ok(reqs) => Outcome::Ok(sorted(reqs)),
                Err(e) => Outcome::Err(e),
            }
        } else if let Some(call) = head.strip_prefix("new ") {
            let args = parse_requirement_line(call);
            match new_requirement(&args.key, args.operator, args.values) {
                Ok(r) => Outcome::Ok(vec![r]),
                Err(e) => Outcome::Err(e),
            }
        } else {
            panic!("unexpected case header {head:?}");
        };
        cases += 1;
        if got != expected {
            failures.push(format!("{head}\n  want {expected:?}\n  got  {got:?}"));
        }
    }
    assert!(cases >= 250, "only {cases} cases in the fixture");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from upstream:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
