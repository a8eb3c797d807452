//! The JSONPath subset CRDs use in additionalPrinterColumns, selectableFields and scale paths:
//! `.spec.replicas`, `.items[0].name`, `.items[*].name`, `.conditions[?(@.type=="Ready")].status`
//! and `['dotted.key']`, optionally wrapped in `{}` as kubectl writes them.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    Wildcard,
    /// `[?(@.<path> == "<value>")]`.
    Filter(Vec<String>, Value),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses `path`; the error says what is wrong with it.
    pub fn parse(path: &str) -> Result<Self, String> {
        let p = path.trim();
        let p = p
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or(p);
        let p = p.strip_prefix('$').unwrap_or(p);
        if p.is_empty() {
            return Err("must not be empty".into());
        }
        let mut steps = Vec::new();
        let chars: Vec<char> = p.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    if end == start {
                        return Err(format!("unexpected {:?} at {}", chars.get(end), start));
                    }
                    let name: String = chars[start..end].iter().collect();
                    steps.push(if name == "*" {
                        Step::Wildcard
                    } else {
                        Step::Field(name)
                    });
                    i = end;
                }
                '[' => {
                    let close = find_close(&chars, i).ok_or("unterminated [")?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    steps.push(parse_bracket(inner.trim())?);
                    i = close + 1;
                }
                c => return Err(format!("unexpected {c:?}: paths start with '.'")),
            }
        }
        Ok(JsonPath { steps })
    }

    /// Whether the path names exactly one value (no wildcard or filter).
    pub fn is_simple(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s, Step::Field(_) | Step::Index(_)))
    }

    /// The field names of a simple path of fields only, e.g. `["spec", "replicas"]`.
    pub fn fields(&self) -> Option<Vec<&str>> {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Field(f) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every value the path reaches in `root`.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(f) => next.extend(v.get(f.as_str())),
                    Step::Index(n) => next.extend(v.get(*n)),
                    Step::Wildcard => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                    Step::Filter(path, want) => {
                        if let Value::Array(a) = v {
                            next.extend(a.iter().filter(|item| {
                                let mut cur = Some(*item);
                                for f in path {
                                    cur = cur.and_then(|c| c.get(f.as_str()));
                                }
                                cur == Some(want)
                            }));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut quote = None;
    for (j, c) in chars.iter().enumerate().skip(open + 1) {
        match (quote, c) {
            (Some(q), c) if *c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(*c),
            (None, ']') => return Some(j),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Ok(n) = inner.parse::<usize>() {
        return Ok(Step::Index(n));
    }
    if let Some(key) = unquote(inner) {
        return Ok(Step::Field(key.to_string()));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|f| f.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported subscript [{inner}]"))?;
    let (lhs, rhs) = filter
        .split_once("==")
        .ok_or_else(|| format!("unsupported filter {filter:?}: only == is supported"))?;
    let path = lhs.trim().strip_prefix("@.").ok_or_else(|| {
        format!("unsupported filter {filter:?}: the left side must start with @.")
    })?;
    let rhs = rhs.trim();
    let want = match unquote(rhs) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(rhs).map_err(|_| format!("unsupported value {rhs:?}"))?,
    };
    Ok(Step::Filter(
        path.split('.').map(str::to_string).collect(),
        want,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn dotted_fields_indexes_and_quoted_keys_reach_one_value() {
        let v = json!({"spec": {"replicas": 3, "items": [{"name": "a"}, {"name": "b"}], "a.b": 1}});
        assert_eq!(find(".spec.replicas", &v), vec![json!(3)]);
        assert_eq!(find("{.spec.items[1].name}", &v), vec![json!("b")]);
        assert_eq!(find(".spec['a.b']", &v), vec![json!(1)]);
        assert!(find(".spec.missing", &v).is_empty());
        assert!(JsonPath::parse(".spec.replicas").unwrap().is_simple());
    }

    #[test]
    fn wildcards_and_filters_reach_every_match() {
        let v = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}
        ]}});
        assert_eq!(
            find(".status.conditions[*].type", &v),
            vec![json!("Ready"), json!("Synced")]
        );
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#, &v),
            vec![json!("True")]
        );
    }

    #[test]
    fn malformed_paths_are_errors() {
        assert!(JsonPath::parse("spec.replicas").is_err());
        assert!(JsonPath::parse(".spec[").is_err());
        assert!(JsonPath::parse("").is_err());
        assert!(JsonPath::parse(".a..b").is_err());
    }
}
