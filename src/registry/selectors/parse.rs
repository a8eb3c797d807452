//! `labels.Parse` (k8s.io/apimachinery/pkg/labels/selector.go) ported: its lexer and parser,
//! and `NewRequirement`'s checks, so `?labelSelector=` is accepted or refused exactly as
//! kube-apiserver does, in its words (checked against Go's output in
//! tests/testdata/label-selectors.txt).

use crate::golang::quote;
use crate::registry::validation::{label_value, qualified_name};
use std::collections::BTreeSet;

/// A selector operator; upstream's `selection.Operator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key!=value`.
    NotEquals,
    /// `key in (v1,v2)`.
    In,
    /// `key notin (v1,v2)`.
    NotIn,
    /// `key>integer`.
    GreaterThan,
    /// `key<integer`.
    LessThan,
}

impl Operator {
    /// Upstream's string value of the operator (`"exists"`, `"notin"`, `"gt"`, ...).
    #[cfg(test)]
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One requirement of a selector; `values` are in upstream's order (sorted and
/// de-duplicated when they come from [`parse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label relates to `values`.
    pub operator: Operator,
    /// The values; empty for `Exists` / `DoesNotExist`.
    pub values: Vec<String>,
}

/// Upstream's labels.Parse: the requirements of a selector string, sorted by key, or
/// upstream's error text. (Go's unstable sort may order requirements of one key differently;
/// which requirement comes first does not change what matches.)
pub fn parse(selector: &str) -> Result<Vec<Requirement>, String> {
    let mut parser = Parser {
        items: Lexer::new(selector).scan(),
        position: 0,
    };
    let mut requirements = parser.parse()?;
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(requirements)
}

/// Upstream's `NewRequirement` (with no field path option): validates the key,
/// the number of values for the operator, and each value.
///
/// `values` are kept in the given order. Upstream distinguishes a nil from an
/// empty values slice only in how it prints it; this renders `[]string{}`.
pub fn new_requirement(
    key: &str,
    operator: Operator,
    values: Vec<String>,
) -> Result<Requirement, String> {
    let mut errs = Vec::new();
    if let Some(err) = validate_label_key(key, "key") {
        errs.push(err);
    }
    let values_path = "values";
    match operator {
        Operator::In | Operator::NotIn => {
            if values.is_empty() {
                errs.push(invalid_list(
                    values_path,
                    &values,
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
            if values.len() != 1 {
                errs.push(invalid_list(
                    values_path,
                    &values,
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        Operator::Exists | Operator::DoesNotExist => {
            if !values.is_empty() {
                errs.push(invalid_list(
                    values_path,
                    &values,
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(invalid_list(
                    values_path,
                    &values,
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                // Go's strconv.ParseInt(v, 10, 64) accepts exactly what Rust's
                // i64 parser does: an optional sign, ASCII digits, in range.
                if v.parse::<i64>().is_err() {
                    errs.push(invalid(
                        &format!("{values_path}[{i}]"),
                        v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = label_value(v);
        if !msgs.is_empty() {
            errs.push(invalid(
                &format!("{values_path}[{i}][{key}]"),
                v,
                &msgs.join("; "),
            ));
        }
    }
    match aggregate(errs) {
        Some(err) => Err(err),
        None => Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        }),
    }
}

// ---------------------------------------------------------------------------
// field.Error rendering and aggregation

/// `field.Invalid(path, value, detail).Error()` for a string bad value (`%q`).
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", quote(value))
}

/// `field.Invalid` for a `[]string` bad value, which Go prints with `%#v`.
fn invalid_list(path: &str, values: &[String], detail: &str) -> String {
    let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!(
        "{path}: Invalid value: []string{{{}}}: {detail}",
        quoted.join(", ")
    )
}

/// `ErrorList.ToAggregate().Error()`: duplicates dropped, one message as is,
/// several as `[m1, m2]`; `None` when there is nothing to report.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::with_capacity(errs.len());
    for err in errs {
        if !unique.contains(&err) {
            unique.push(err);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// Upstream's `validateLabelKey`: a `field.Invalid` at `path` if `key` is not a qualified name.
fn validate_label_key(key: &str, path: &str) -> Option<String> {
    let msgs = qualified_name(key);
    (!msgs.is_empty()).then(|| invalid(path, key, &msgs.join("; ")))
}

// ---------------------------------------------------------------------------
// Lexer

/// Upstream's lexer tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// Never produced in practice: every single special symbol is a token.
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Upstream's `string2token`: literals that are tokens rather than identifiers.
fn keyword(lit: &str) -> Option<Token> {
    Some(match lit {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

/// Upstream's whitespace: only these four bytes (not `\v`, `\f` or Unicode).
fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes that start (and make up) operator tokens.
fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's byte-wise lexer.
///
/// Like upstream, `read` yields 0 both at the end of input and for a NUL byte
/// (which it steps over), so a NUL ends the selector where a token would start
/// and otherwise merely separates tokens. Tokens only ever split at ASCII
/// bytes, so every literal is a valid `&str` slice of the input.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer { s, pos: 0 }
    }

    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    /// An identifier, or the `in` / `notin` keyword.
    fn scan_id_or_keyword(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let end = loop {
            let before = self.pos;
            let ch = self.read();
            if ch == 0 {
                break before;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break before;
            }
        };
        let lit = &self.s[start..end];
        (keyword(lit).unwrap_or(Token::Identifier), lit)
    }

    /// The longest run of special symbols that is a token (`!=`, `==`, ...).
    fn scan_special_symbol(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut last: Option<(Token, &'a str)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special_symbol(ch) {
                self.unread();
                break;
            }
            let buffer = &self.s[start..self.pos];
            if let Some(tok) = keyword(buffer) {
                last = Some((tok, buffer));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        // Upstream returns an error token (literal `error expected: keyword
        // found '...'`) when no prefix of the run is a token. That cannot
        // happen, as every single special symbol is a token, so the literal
        // is not reproduced.
        last.unwrap_or((Token::Error, ""))
    }

    fn lex(&mut self) -> (Token, &'a str) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, "");
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }

    /// All tokens up to and including `EndOfString`.
    fn scan(mut self) -> Vec<(Token, &'a str)> {
        let mut items = Vec::new();
        loop {
            let item = self.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                return items;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Parser

/// Upstream's `ParserContext`: in `Values` context `in` / `notin` are plain
/// identifiers, so `in in (in)` is a valid selector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// Upstream's recursive-descent parser over the pre-scanned tokens.
struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

impl<'a> Parser<'a> {
    /// The current token without consuming it.
    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        // Upstream never reads past EndOfString; clamping keeps that panic-free.
        let (tok, lit) = self.items[self.position.min(self.items.len() - 1)];
        match (context, tok) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    /// The current token, advancing past it.
    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return new_requirement(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        // Upstream collects values in a set and passes its sorted List().
        new_requirement(key, operator, values.into_iter().collect())
    }

    /// The key (validated at once, hence the `<nil>` field path upstream
    /// prints) and, if the requirement is unary, its operator. `!key` is
    /// `DoesNotExist` whatever follows; a bare key followed by `,` or the end
    /// is `Exists`.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(err) = validate_label_key(lit, "<nil>") {
            return Err(err);
        }
        let (next, _) = self.lookahead(Context::Values);
        if operator.is_none() && matches!(next, Token::EndOfString | Token::Comma) {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `(v1,v2,...)`; `()` means the single empty value.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            // Upstream's message lacks the comma the others have.
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                // The list only returns successfully in front of `)`, so this
                // error (which names the list's first token) cannot happen.
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// A comma-separated list in which empty items stand for the empty value.
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    values.insert(lit.to_string());
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // A leading `(,`, a trailing `,)` and a `,,` each add the
                    // empty value (`,,` consuming its second comma).
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosedPar => {
                            values.insert(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            values.insert(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing there means
    /// the empty value.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if matches!(tok, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(BTreeSet::from([lit.to_string()]));
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
