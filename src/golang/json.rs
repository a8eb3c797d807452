//! encoding/json's syntax errors: Go's scanner (scanner.go) as a state machine over the bytes,
//! so a malformed body is refused in the words kube-apiserver uses
//! (`invalid character 'x' looking for beginning of value`, `unexpected end of JSON input`).

use serde_json::Value;

/// What the scanner expects next; each state names the context its errors give.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    /// Inside `\u`, with this many hex digits still to read.
    InStringEscU(u8),
    Neg,
    Int,
    Zero,
    Dot,
    DotDigits,
    Exponent,
    ExponentSign,
    ExponentDigits,
    /// Inside a literal (`true`, `false`, `null`), at this byte of it.
    Literal(&'static [u8], usize),
}

/// What the innermost open container is waiting for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

/// Go's limit on nesting (`maxNestingDepth`).
const MAX_DEPTH: usize = 10_000;

/// Go's `quoteChar`: the byte as a rune in single quotes, escaped as `strconv.Quote` does.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        _ => {
            let quoted = super::quote(&char::from(c).to_string());
            format!("'{}'", &quoted[1..quoted.len() - 1])
        }
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

struct Scanner {
    state: State,
    stack: Vec<Parse>,
}

impl Scanner {
    fn invalid(c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(c))
    }

    /// After a value: close containers or move to the next element.
    fn end_value(&mut self, c: u8) -> Result<(), String> {
        let Some(&top) = self.stack.last() else {
            self.state = State::EndTop;
            return self.step(c);
        };
        if is_space(c) {
            self.state = State::EndValue;
            return Ok(());
        }
        match (top, c) {
            (Parse::ObjectKey, b':') => {
                *self.stack.last_mut().expect("non-empty") = Parse::ObjectValue;
                self.state = State::BeginValue;
            }
            (Parse::ObjectKey, _) => return Err(Self::invalid(c, "after object key")),
            (Parse::ObjectValue, b',') => {
                *self.stack.last_mut().expect("non-empty") = Parse::ObjectKey;
                self.state = State::BeginString;
            }
            (Parse::ObjectValue, b'}') | (Parse::ArrayValue, b']') => {
                self.stack.pop();
                self.state = State::EndValue;
            }
            (Parse::ObjectValue, _) => {
                return Err(Self::invalid(c, "after object key:value pair"));
            }
            (Parse::ArrayValue, b',') => self.state = State::BeginValue,
            (Parse::ArrayValue, _) => return Err(Self::invalid(c, "after array element")),
        }
        Ok(())
    }

    fn push(&mut self, c: u8, parse: Parse) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Self::invalid(c, "exceeded max depth"));
        }
        self.stack.push(parse);
        Ok(())
    }

    /// Go's `stateBeginValue`.
    fn begin_value(&mut self, c: u8) -> Result<(), String> {
        self.state = match c {
            c if is_space(c) => return Ok(()),
            b'{' => {
                self.push(c, Parse::ObjectKey)?;
                State::BeginStringOrEmpty
            }
            b'[' => {
                self.push(c, Parse::ArrayValue)?;
                State::BeginValueOrEmpty
            }
            b'"' => State::InString,
            b'-' => State::Neg,
            b'0' => State::Zero,
            b'1'..=b'9' => State::Int,
            b't' => State::Literal(b"true", 1),
            b'f' => State::Literal(b"false", 1),
            b'n' => State::Literal(b"null", 1),
            _ => return Err(Self::invalid(c, "looking for beginning of value")),
        };
        Ok(())
    }

    fn step(&mut self, c: u8) -> Result<(), String> {
        match self.state {
            State::BeginValue => self.begin_value(c),
            State::BeginValueOrEmpty if is_space(c) => Ok(()),
            State::BeginValueOrEmpty if c == b']' => self.end_value(c),
            State::BeginValueOrEmpty => self.begin_value(c),
            State::BeginStringOrEmpty if is_space(c) => Ok(()),
            State::BeginStringOrEmpty if c == b'}' => {
                // An empty object: its key slot closes as a value slot would.
                *self.stack.last_mut().expect("inside an object") = Parse::ObjectValue;
                self.end_value(c)
            }
            State::BeginStringOrEmpty | State::BeginString => match c {
                c if is_space(c) => Ok(()),
                b'"' => {
                    self.state = State::InString;
                    Ok(())
                }
                _ => Err(Self::invalid(
                    c,
                    "looking for beginning of object key string",
                )),
            },
            State::EndValue => self.end_value(c),
            State::EndTop if is_space(c) => Ok(()),
            State::EndTop => Err(Self::invalid(c, "after top-level value")),
            State::InString => {
                match c {
                    b'"' => self.state = State::EndValue,
                    b'\\' => self.state = State::InStringEsc,
                    c if c < 0x20 => return Err(Self::invalid(c, "in string literal")),
                    _ => {}
                }
                Ok(())
            }
            State::InStringEsc => {
                self.state = match c {
                    b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => State::InString,
                    b'u' => State::InStringEscU(4),
                    _ => return Err(Self::invalid(c, "in string escape code")),
                };
                Ok(())
            }
            State::InStringEscU(left) => {
                if !c.is_ascii_hexdigit() {
                    return Err(Self::invalid(c, "in \\u hexadecimal character escape"));
                }
                self.state = if left == 1 {
                    State::InString
                } else {
                    State::InStringEscU(left - 1)
                };
                Ok(())
            }
            State::Neg => {
                self.state = match c {
                    b'0' => State::Zero,
                    b'1'..=b'9' => State::Int,
                    _ => return Err(Self::invalid(c, "in numeric literal")),
                };
                Ok(())
            }
            State::Int if c.is_ascii_digit() => Ok(()),
            State::Int | State::Zero => match c {
                b'.' => {
                    self.state = State::Dot;
                    Ok(())
                }
                b'e' | b'E' => {
                    self.state = State::Exponent;
                    Ok(())
                }
                _ => self.end_value(c),
            },
            State::Dot if c.is_ascii_digit() => {
                self.state = State::DotDigits;
                Ok(())
            }
            State::Dot => Err(Self::invalid(c, "after decimal point in numeric literal")),
            State::DotDigits => match c {
                c if c.is_ascii_digit() => Ok(()),
                b'e' | b'E' => {
                    self.state = State::Exponent;
                    Ok(())
                }
                _ => self.end_value(c),
            },
            State::Exponent if matches!(c, b'+' | b'-') => {
                self.state = State::ExponentSign;
                Ok(())
            }
            State::Exponent | State::ExponentSign if c.is_ascii_digit() => {
                self.state = State::ExponentDigits;
                Ok(())
            }
            State::Exponent | State::ExponentSign => {
                Err(Self::invalid(c, "in exponent of numeric literal"))
            }
            State::ExponentDigits if c.is_ascii_digit() => Ok(()),
            State::ExponentDigits => self.end_value(c),
            State::Literal(word, at) => {
                if c != word[at] {
                    let context = format!(
                        "in literal {} (expecting {})",
                        std::str::from_utf8(word).expect("ASCII literal"),
                        quote_char(word[at])
                    );
                    return Err(Self::invalid(c, &context));
                }
                self.state = if at + 1 == word.len() {
                    State::EndValue
                } else {
                    State::Literal(word, at + 1)
                };
                Ok(())
            }
        }
    }
}

/// The JSON type as Go's `UnmarshalTypeError` names it (`bool`, `number`, `object`, …).
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `json.Unmarshal` of `data` into a value of Go type `go_type`, which takes the JSON
/// values `accepts` admits: the value, Go's syntax error, or its type error for any other.
pub fn unmarshal(data: &[u8], go_type: &str, accepts: fn(&Value) -> bool) -> Result<Value, String> {
    if let Some(e) = syntax_error(data) {
        return Err(e);
    }
    let value: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    if accepts(&value) {
        Ok(value)
    } else {
        Err(format!(
            "json: cannot unmarshal {} into Go value of type {go_type}",
            json_type(&value)
        ))
    }
}

/// Go's `json.Unmarshal` error for a body that is not one JSON value, in Go's words; `None`
/// when the body is syntactically valid (whatever its shape).
pub fn syntax_error(data: &[u8]) -> Option<String> {
    let mut scanner = Scanner {
        state: State::BeginValue,
        stack: Vec::new(),
    };
    for &c in data {
        if let Err(e) = scanner.step(c) {
            return Some(e);
        }
    }
    // Go's `eof`: a final space ends a number or a top-level value; what it cannot end is an
    // error of its own, or a truncated input.
    if scanner.state == State::EndTop {
        return None;
    }
    if let Err(e) = scanner.step(b' ') {
        return Some(e);
    }
    (scanner.state != State::EndTop).then(|| "unexpected end of JSON input".to_string())
}

#[cfg(test)]
mod tests {
    use super::syntax_error;

    /// Each input with the error Go 1.23's `json.Unmarshal` gives it.
    #[test]
    fn errors_are_gos() {
        for (input, expected) in [
            ("", "unexpected end of JSON input"),
            ("   ", "unexpected end of JSON input"),
            ("{\"a\":", "unexpected end of JSON input"),
            ("\"abc", "unexpected end of JSON input"),
            ("[1,", "unexpected end of JSON input"),
            (
                "xyz",
                "invalid character 'x' looking for beginning of value",
            ),
            (
                "nul",
                "invalid character ' ' in literal null (expecting 'l')",
            ),
            (
                "tru",
                "invalid character ' ' in literal true (expecting 'e')",
            ),
            (
                "fx",
                "invalid character 'x' in literal false (expecting 'a')",
            ),
            ("{\"a\":1} x", "invalid character 'x' after top-level value"),
            ("{}}", "invalid character '}' after top-level value"),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            (
                "{,}",
                "invalid character ',' looking for beginning of object key string",
            ),
            (
                "{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                "[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            ("-", "invalid character ' ' in numeric literal"),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.",
                "invalid character ' ' after decimal point in numeric literal",
            ),
            ("1e", "invalid character ' ' in exponent of numeric literal"),
            (
                "1e+",
                "invalid character ' ' in exponent of numeric literal",
            ),
            ("01", "invalid character '1' after top-level value"),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            ("\"\\x\"", "invalid character 'x' in string escape code"),
            (
                "\"\\u12g4\"",
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            (
                "'a'",
                "invalid character '\\'' looking for beginning of value",
            ),
            (
                "\u{1}",
                "invalid character '\\x01' looking for beginning of value",
            ),
        ] {
            assert_eq!(
                syntax_error(input.as_bytes()).as_deref(),
                Some(expected),
                "{input:?}"
            );
        }
        for (byte, shown) in [
            (0xc3, "'Ã'"),
            (0x80, r"'\u0080'"),
            (0x7f, r"'\x7f'"),
            (0xad, r"'\u00ad'"),
        ] {
            assert_eq!(
                syntax_error(&[byte]).unwrap(),
                format!("invalid character {shown} looking for beginning of value")
            );
        }
        assert_eq!(
            syntax_error(&[b'"', 0xff, b'"']),
            None,
            "Go accepts invalid UTF-8 in strings"
        );
        let deep = "[".repeat(10_001);
        assert_eq!(
            syntax_error(deep.as_bytes()).as_deref(),
            Some("invalid character '[' exceeded max depth")
        );
        for valid in [
            "{}",
            "[]",
            " 1 ",
            "-0.5e+10",
            "\"\\u00e9\"",
            "{\"a\":[true,false,null,{}]}",
            "0",
        ] {
            assert_eq!(syntax_error(valid.as_bytes()), None, "{valid:?}");
        }
    }
}
