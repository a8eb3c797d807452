//! Label and field selectors in their string form (`?labelSelector=` / `?fieldSelector=`).
//!
//! Label requirements are matched with kube's [`Selector`], which has upstream's semantics for
//! the equality and set-based operators. kube has no parser for the string form and no `Gt`/`Lt`
//! (operators upstream's string form has), so those stay here; nor has it field selectors.

mod parse;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as LabelSelectorObject;
use kube::core::{Expression, Selector, SelectorExt};
use parse::Operator;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One label requirement as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The equality and set-based requirements.
    expressions: Selector,
    /// `key>n` (`Greater`) and `key<n` (`Less`), which kube's [`Expression`] lacks: the label's
    /// value, as an integer, compares so with `n`.
    numeric: Vec<(String, Ordering, i64)>,
}

/// Whether `labels` satisfy a `metav1.LabelSelector` object; an empty selector matches
/// everything, and one with an operator upstream cannot parse matches nothing.
pub fn label_selector_matches(
    sel: &LabelSelectorObject,
    labels: &BTreeMap<String, String>,
) -> bool {
    Selector::try_from(sel.clone()).is_ok_and(|s| s.matches(labels))
}

/// Upstream's `labels.Selector.String()` of a `metav1.LabelSelector`: requirements sorted by
/// key, set values sorted and de-duplicated.
pub fn label_selector_string(sel: &LabelSelectorObject) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for req in sel.match_expressions.iter().flatten() {
        let mut values = req.values.clone().unwrap_or_default();
        values.sort();
        values.dedup();
        let k = &req.key;
        let s = match req.operator.as_str() {
            "In" => format!("{k} in ({})", values.join(",")),
            "NotIn" => format!("{k} notin ({})", values.join(",")),
            "Exists" => k.clone(),
            "DoesNotExist" => format!("!{k}"),
            _ => continue,
        };
        reqs.push((k.clone(), s));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(",")
}

impl LabelSelector {
    /// Parses the string form as upstream's `labels.Parse`; errors are its words, for a 400.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut selector = Self::default();
        for req in parse::parse(s)? {
            let mut values = req.values.into_iter();
            let mut one = || values.next().unwrap_or_default();
            // NewRequirement checked the number of values, and Gt/Lt's are integers.
            let op = match req.operator {
                Operator::Exists => Op::Exists,
                Operator::DoesNotExist => Op::DoesNotExist,
                Operator::Equals | Operator::DoubleEquals => Op::Equals(one()),
                Operator::NotEquals => Op::NotEquals(one()),
                Operator::In => Op::In(values.collect()),
                Operator::NotIn => Op::NotIn(values.collect()),
                Operator::GreaterThan => Op::Gt(one().parse().unwrap_or_default()),
                Operator::LessThan => Op::Lt(one().parse().unwrap_or_default()),
            };
            selector.push((req.key, op));
        }
        Ok(selector)
    }

    /// Adds one parsed requirement.
    fn push(&mut self, (key, op): (String, Op)) {
        let expression = match op {
            Op::Exists => Expression::Exists(key),
            Op::DoesNotExist => Expression::DoesNotExist(key),
            Op::Equals(v) => Expression::Equal(key, v),
            Op::NotEquals(v) => Expression::NotEqual(key, v),
            Op::In(set) => Expression::In(key, set.into_iter().collect()),
            Op::NotIn(set) => Expression::NotIn(key, set.into_iter().collect()),
            Op::Gt(n) => return self.numeric.push((key, Ordering::Greater, n)),
            Op::Lt(n) => return self.numeric.push((key, Ordering::Less, n)),
        };
        self.expressions.extend(expression);
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.expressions.matches(labels)
            && self.numeric.iter().all(|(key, ordering, n)| {
                labels
                    .get(key)
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x.cmp(n) == *ordering)
            })
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.expressions.selects_all() && self.numeric.is_empty()
    }
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses the string form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in s.split(',') {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            reqs.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    /// The fields it names.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(f, _, _)| f.as_str())
    }

    /// Whether `lookup` (field → value; `None` for unsupported) satisfies every requirement.
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(field, equal, want)| {
            let got = lookup(field).unwrap_or_default();
            (got == *want) == *equal
        })
    }

    /// The value required by `field=value`, if the selector pins it (e.g. metadata.name).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == field && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn object(
        labels: &[(&str, &str)],
        exprs: Vec<LabelSelectorRequirement>,
    ) -> LabelSelectorObject {
        LabelSelectorObject {
            match_labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            match_expressions: Some(exprs),
        }
    }

    #[test]
    fn selector_objects_print_sorted_by_key_like_upstream() {
        let s = object(
            &[("tier", "web")],
            vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: Some(vec!["b".into(), "a".into()]),
            }],
        );
        assert_eq!(label_selector_string(&s), "app in (a,b),tier=web");
    }

    #[test]
    fn selector_objects_match_labels_and_expressions() {
        let s = object(
            &[("app", "x")],
            vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }],
        );
        let mut labels = BTreeMap::from([("app".to_string(), "x".to_string())]);
        assert!(label_selector_matches(&s, &labels));
        labels.insert("env".into(), "prod".into());
        assert!(!label_selector_matches(&s, &labels));
        assert!(label_selector_matches(
            &LabelSelectorObject::default(),
            &labels
        ));
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_support_every_operator() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web,db)", true),
            ("app notin (web,db)", false),
            ("tier,app", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier in (back)", false),
            ("n>3", true),
            ("n<3", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("bad key!=x").is_err());
    }

    #[test]
    fn field_selectors_compare_values() {
        let f = FieldSelector::parse("metadata.name=a,status.phase!=Running").unwrap();
        assert!(
            f.matches(|k| Some(if k == "metadata.name" { "a" } else { "Pending" }.to_string()))
        );
        assert_eq!(f.required_value("metadata.name"), Some("a"));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
