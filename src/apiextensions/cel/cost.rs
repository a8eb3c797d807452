//! The static cost of a CRD rule, as cel-go's estimator (`checker.Cost`) computes it with the
//! size estimates upstream's CRD validation gives it: each string, list and map of the schema is
//! as large as its `maxLength`, `maxItems` or `maxProperties` allows, or as a 3 MiB request can
//! hold. CRD validation refuses a rule whose cost times the number of times its node may occur
//! exceeds [`RULE_COST_LIMIT`], and a schema whose rules together exceed [`CRD_COST_LIMIT`].

use super::schema::Node;
use crate::registry::errors::{ErrorList, FieldError};
use ::cel::IdedExpr;
use ::cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;

/// A request's most bytes (upstream's `DefaultMaxRequestSizeBytes`).
pub(super) const MAX_REQUEST_BYTES: u64 = 3 * 1024 * 1024;
/// Upstream's `StaticEstimatedCostLimit`: the most one rule may cost, times its cardinality.
pub(super) const RULE_COST_LIMIT: u64 = 10_000_000;
/// Upstream's `StaticEstimatedCRDCostLimit`: the most all rules of a schema may cost together.
pub(super) const CRD_COST_LIMIT: u64 = 100_000_000;

/// cel-go's cost of traversing one character of a string.
const STRING_TRAVERSAL: f64 = 0.1;
/// cel-go's cost of one character of a regular expression.
const REGEX_LENGTH: f64 = 0.25;

/// A range of sizes (characters, bytes, items or entries) or of costs, as cel-go's
/// `SizeEstimate` and `CostEstimate`: sums and products saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Range {
    pub(super) min: u64,
    pub(super) max: u64,
}

/// A size.
type Size = Range;
/// A cost.
pub(super) type Cost = Range;

const UNKNOWN: Size = Range {
    min: 0,
    max: u64::MAX,
};

impl Range {
    fn fixed(n: u64) -> Self {
        Range { min: n, max: n }
    }

    fn add(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }

    fn mul(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }

    fn union(self, o: Range) -> Range {
        Range {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }

    /// The cost of going through this size at `factor` per unit, rounded up.
    fn times(self, factor: f64) -> Cost {
        let f = |x: u64| {
            let product = (x as f64 * factor).ceil();
            if product >= u64::MAX as f64 {
                u64::MAX
            } else {
                product as u64
            }
        };
        Range {
            min: f(self.min),
            max: f(self.max),
        }
    }
}

/// What the estimator knows of a value's type.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    String,
    Bytes,
    List,
    Map,
    Object,
    /// Numbers, booleans, null, timestamps, durations: one unit large.
    Scalar,
    Dyn,
}

/// The estimate of one expression: its cost, and what its size and schema node are known to be.
#[derive(Clone, Copy)]
struct Est<'n> {
    cost: Cost,
    size: Option<Size>,
    node: Option<&'n Node>,
    kind: Kind,
    /// For a list or map built in the expression, the size of its items.
    items: Option<Size>,
}

impl<'n> Est<'n> {
    fn of(cost: Cost, kind: Kind) -> Self {
        Est {
            cost,
            size: None,
            node: None,
            kind,
            items: None,
        }
    }

    /// A value reached through the schema: sized and typed by its node.
    fn at(cost: Cost, node: &'n Node) -> Self {
        Est {
            cost,
            size: None,
            node: Some(node),
            kind: kind_of(node),
            items: None,
        }
    }

    /// cel-go's `sizeOrUnknown`: the computed size, else the schema's, else one for a scalar.
    fn size(&self) -> Size {
        if let Some(size) = self.size {
            return size;
        }
        if let Some(node) = self.node {
            return Size {
                min: 0,
                max: node.max_elements,
            };
        }
        match self.kind {
            Kind::Scalar => Size::fixed(1),
            _ => UNKNOWN,
        }
    }
}

fn kind_of(node: &Node) -> Kind {
    if node.int_or_string {
        return Kind::Dyn;
    }
    match node.ty.as_str() {
        "string" if node.opaque_string() => match node.format.as_deref() {
            Some("byte") => Kind::Bytes,
            _ => Kind::Scalar,
        },
        "string" => Kind::String,
        "integer" | "number" | "boolean" => Kind::Scalar,
        "array" => Kind::List,
        "object" if node.properties.is_empty() && node.additional.is_some() => Kind::Map,
        "object" => Kind::Object,
        _ => Kind::Dyn,
    }
}

/// The estimated cost of `expr`, a rule checked against `node` (as `self` and `oldSelf`).
pub(super) fn estimate(expr: &IdedExpr, node: &Node) -> Cost {
    let mut estimator = Estimator {
        node,
        scope: Vec::new(),
    };
    estimator.expr(expr).cost
}

/// The number of times a value of `node` can occur under a list or map without a bound
/// (upstream's `maxCardinality`): as many as fit in a request.
pub(super) fn unbounded_cardinality(node: &Node) -> u64 {
    MAX_REQUEST_BYTES / (node.min_size + 1)
}

/// Upstream's `getCostErrorMessage`.
pub(super) fn exceeds_message(name: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

struct Estimator<'n> {
    node: &'n Node,
    /// Comprehension variables in scope.
    scope: Vec<(String, Est<'n>)>,
}

impl<'n> Estimator<'n> {
    fn expr(&mut self, e: &IdedExpr) -> Est<'n> {
        match &e.expr {
            Expr::Literal(lit) => {
                let (kind, size) = match lit {
                    LiteralValue::String(s) => (Kind::String, s.chars().count()),
                    LiteralValue::Bytes(b) => (Kind::Bytes, b.len()),
                    _ => (Kind::Scalar, 1),
                };
                Est {
                    size: Some(Size::fixed(size as u64)),
                    ..Est::of(Cost::default(), kind)
                }
            }
            Expr::Ident(name) => {
                if let Some((_, v)) = self.scope.iter().rev().find(|(n, _)| n == name) {
                    return Est {
                        cost: Cost::fixed(1),
                        ..*v
                    };
                }
                match name.as_str() {
                    "self" | "oldSelf" => Est::at(Cost::fixed(1), self.node),
                    _ => Est::of(Cost::fixed(1), Kind::Dyn),
                }
            }
            Expr::Select(s) => {
                let operand = self.expr(&s.operand);
                if s.test {
                    return Est::of(operand.cost.add(Cost::fixed(1)), Kind::Scalar);
                }
                let mut cost = operand.cost;
                if matches!(operand.kind, Kind::Map | Kind::Object) {
                    cost = cost.add(Cost::fixed(1));
                }
                match operand.node.and_then(|n| field(n, &s.field)) {
                    Some(child) => Est::at(cost, child),
                    None => Est::of(cost, Kind::Dyn),
                }
            }
            Expr::List(l) => {
                let mut cost = Cost::fixed(10);
                let mut items = Size {
                    min: if l.elements.is_empty() { 0 } else { u64::MAX },
                    max: 0,
                };
                for el in &l.elements {
                    let el = self.expr(el);
                    cost = cost.add(el.cost);
                    items = items.union(el.size());
                }
                Est {
                    size: Some(Size::fixed(l.elements.len() as u64)),
                    items: Some(items),
                    ..Est::of(cost, Kind::List)
                }
            }
            Expr::Map(m) => {
                let mut cost = Cost::fixed(30);
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        cost = cost.add(self.expr(&me.key).cost);
                        cost = cost.add(self.expr(&me.value).cost);
                    }
                }
                Est {
                    size: Some(Size::fixed(m.entries.len() as u64)),
                    ..Est::of(cost, Kind::Map)
                }
            }
            Expr::Struct(s) => {
                let mut cost = Cost::fixed(40);
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        cost = cost.add(self.expr(&f.value).cost);
                    }
                }
                Est::of(cost, Kind::Dyn)
            }
            Expr::Call(call) => self.call(call),
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range);
                let init = self.expr(&c.accu_init);
                let mut cost = range.cost.add(init.cost);
                let item = match (range.kind, range.node) {
                    (Kind::List, Some(n)) => {
                        n.items.as_deref().map(|i| Est::at(Cost::default(), i))
                    }
                    // A map's keys: strings upstream declares with no elements.
                    (Kind::Map, Some(_)) => Some(Est::at(Cost::default(), key_node())),
                    _ => None,
                };
                let item = item.unwrap_or(Est {
                    size: range.items,
                    ..Est::of(Cost::default(), Kind::Dyn)
                });
                self.scope.push((c.accu_var.clone(), init));
                self.scope.push((c.iter_var.clone(), item));
                let pushed = 2 + usize::from(c.iter_var2.is_some());
                if let Some(v2) = &c.iter_var2 {
                    self.scope
                        .push((v2.clone(), Est::of(Cost::default(), Kind::Dyn)));
                }
                let per_item = self
                    .expr(&c.loop_cond)
                    .cost
                    .add(self.expr(&c.loop_step).cost);
                self.scope.truncate(self.scope.len() - pushed + 1);
                let result = self.expr(&c.result);
                self.scope.pop();
                cost = cost.add(result.cost);
                let count = range.size();
                cost = cost.add(count.mul(per_item));
                let size = match &c.accu_init.expr {
                    Expr::List(_) | Expr::Map(_) => Some(count),
                    _ => Some(init.size()),
                };
                Est {
                    size,
                    ..Est::of(cost, init.kind)
                }
            }
            Expr::Unspecified => Est::of(Cost::default(), Kind::Dyn),
        }
    }

    fn call(&mut self, call: &::cel::common::ast::CallExpr) -> Est<'n> {
        let target = call.target.as_deref().map(|t| self.expr(t));
        let args: Vec<Est<'n>> = call.args.iter().map(|a| self.expr(a)).collect();
        let args_cost = args.iter().fold(Cost::default(), |c, a| c.add(a.cost));
        let target_cost = target.map_or(Cost::default(), |t| t.cost);
        let f = call.func_name.as_str();
        let plain = |cost: Cost, kind: Kind| Est::of(target_cost.add(cost).add(args_cost), kind);
        match (f, target, args.as_slice()) {
            (operators::LOGICAL_AND | operators::LOGICAL_OR, None, [l, r]) => Est::of(
                Cost {
                    min: l.cost.min,
                    max: l.cost.add(r.cost).max,
                },
                Kind::Scalar,
            ),
            (operators::CONDITIONAL, None, [c, t, e]) => Est {
                size: Some(t.size().union(e.size())),
                ..Est::of(c.cost.add(t.cost.union(e.cost)), t.kind)
            },
            (operators::ADD, None, [l, r]) if matches!(l.kind, Kind::String | Kind::Bytes) => {
                let size = l.size().add(r.size());
                Est {
                    size: Some(size),
                    ..plain(size.times(STRING_TRAVERSAL), l.kind)
                }
            }
            (operators::ADD, None, [l, r]) if l.kind == Kind::List => Est {
                size: Some(l.size().add(r.size())),
                items: match (l.items, r.items) {
                    (Some(a), Some(b)) => Some(a.union(b)),
                    _ => None,
                },
                ..plain(Cost::fixed(1), Kind::List)
            },
            (
                operators::EQUALS
                | operators::NOT_EQUALS
                | operators::LESS
                | operators::LESS_EQUALS
                | operators::GREATER
                | operators::GREATER_EQUALS,
                None,
                [l, r],
            ) if matches!(f, operators::EQUALS | operators::NOT_EQUALS)
                || matches!(l.kind, Kind::String | Kind::Bytes) =>
            {
                let smallest = l.size().max.min(r.size().max);
                let range = Size {
                    min: u64::from(smallest > 0),
                    max: smallest,
                };
                plain(range.times(STRING_TRAVERSAL), Kind::Scalar)
            }
            (operators::IN, None, [_, container]) if container.kind == Kind::List => {
                plain(container.size(), Kind::Scalar)
            }
            ("startsWith" | "endsWith", Some(_), [prefix]) => {
                plain(prefix.size().times(STRING_TRAVERSAL), Kind::Scalar)
            }
            ("contains", Some(t), [sub]) if t.kind == Kind::String => plain(
                t.size()
                    .times(STRING_TRAVERSAL)
                    .mul(sub.size().times(STRING_TRAVERSAL)),
                Kind::Scalar,
            ),
            ("matches", Some(t), [re]) => plain(
                t.size()
                    .add(Size::fixed(1))
                    .times(STRING_TRAVERSAL)
                    .mul(re.size().times(REGEX_LENGTH)),
                Kind::Scalar,
            ),
            _ if let Some((cost, kind, size)) =
                library_call(f, target.as_ref(), &args, literal_count(call.args.get(1))) =>
            {
                Est {
                    size,
                    ..plain(cost, kind)
                }
            }
            ("dyn", None, [a]) => Est {
                cost: a.cost.add(Cost::fixed(1)),
                ..*a
            },
            (operators::INDEX, None, [container, _]) => {
                let child = container.node.and_then(|n| match kind_of(n) {
                    Kind::List => n.items.as_deref(),
                    Kind::Map => n.additional.as_deref(),
                    _ => None,
                });
                match child {
                    Some(child) => Est::at(Cost::fixed(1).add(args_cost), child),
                    None => Est {
                        size: container.items,
                        ..plain(Cost::fixed(1), Kind::Dyn)
                    },
                }
            }
            _ => {
                // Functions of upstream's Kubernetes library are priced at one unit here; their
                // results are taken to be no larger than their inputs together, so a size is
                // never unknown because of them.
                let kind = result_kind(f);
                let size = (kind != Kind::Scalar).then(|| {
                    target
                        .iter()
                        .chain(&args)
                        .filter(|a| a.kind != Kind::Scalar)
                        .fold(Size::fixed(0), |s, a| s.add(a.size()))
                });
                Est {
                    size,
                    ..plain(Cost::fixed(1), kind)
                }
            }
        }
    }
}

/// Upstream's Kubernetes library estimator (`library.CostEstimator.EstimateCallCost`), which
/// prices its functions before cel-go does: the call's own cost (its target and arguments are
/// added by the caller), what it returns, and that value's size when it has one.
fn library_call(
    f: &str,
    target: Option<&Est>,
    args: &[Est],
    limit: Option<u64>,
) -> Option<(Cost, Kind, Option<Size>)> {
    let traversal = |e: &Est| e.size().times(STRING_TRAVERSAL);
    let nominal = || Some((Cost::fixed(1), Kind::Scalar, None));
    match (f, target, args) {
        // Sized to allow two authorization checks in one expression.
        ("check", Some(_), _) => Some((Cost::fixed(350_000), Kind::Dyn, None)),
        (
            "serviceAccount" | "path" | "group" | "resource" | "subresource" | "namespace" | "name"
            | "allowed" | "reason" | "error" | "errored",
            Some(_),
            _,
        ) => Some((Cost::fixed(1), Kind::Dyn, None)),
        ("isSorted" | "sum" | "max" | "min" | "indexOf" | "lastIndexOf", Some(t), _) => {
            if t.kind != Kind::List {
                return Some((traversal(t), Kind::Scalar, None));
            }
            // A unit per element compared, and for strings the traversal of each.
            let element = t.node.and_then(|n| n.items.as_deref());
            let mut per_element = Cost::fixed(1);
            if element.is_none_or(|e| matches!(kind_of(e), Kind::String | Kind::Bytes)) {
                let size = element.map_or(UNKNOWN, |e| Size {
                    min: 0,
                    max: e.max_elements,
                });
                per_element = per_element.add(size.times(STRING_TRAVERSAL));
            }
            Some((t.size().mul(per_element), Kind::Scalar, None))
        }
        ("url", None, [a]) => Some((traversal(a), Kind::Dyn, None)),
        ("lowerAscii" | "upperAscii" | "substring" | "trim", Some(t), _) => {
            Some((traversal(t), Kind::String, Some(t.size())))
        }
        ("replace", Some(t), [from, to, ..]) => {
            let (sz, from, to) = (t.size(), from.size(), to.size());
            let (count_max, retained_max) = if from.min == 0 {
                (sz.max.saturating_add(1), sz.max)
            } else if to.max <= from.min {
                (0, sz.max)
            } else {
                (sz.max.div_ceil(from.min), 0)
            };
            let (count_min, retained_min) = if from.max == 0 {
                (sz.min.saturating_add(1), sz.min)
            } else if from.max <= to.min {
                (0, sz.min)
            } else {
                (sz.min.div_ceil(from.max), 0)
            };
            let count = Size {
                min: count_min,
                max: count_max,
            };
            let retained = Size {
                min: retained_min,
                max: retained_max,
            };
            let size = count.mul(to).add(retained);
            Some((sz.times(2.0 * STRING_TRAVERSAL), Kind::String, Some(size)))
        }
        ("split", Some(t), _) => {
            // A constant limit bounds the parts; otherwise every character may be one.
            let max = limit.unwrap_or(t.size().max);
            Some((
                t.size().times(2.0 * STRING_TRAVERSAL),
                Kind::List,
                Some(Size { min: 0, max }),
            ))
        }
        ("join", Some(t), _) => {
            let list = t.size();
            let element = t
                .node
                .and_then(|n| n.items.as_deref())
                .map_or(UNKNOWN, |e| Size {
                    min: 0,
                    max: e.max_elements,
                });
            let mut size = list.mul(element);
            if let Some(separator) = args.first() {
                let separators = Size {
                    min: list.min.saturating_sub(1),
                    max: list.max.saturating_sub(1),
                };
                size = size.add(separator.size().mul(separators));
            }
            Some((size.times(STRING_TRAVERSAL), Kind::String, Some(size)))
        }
        ("find" | "findAll", Some(t), [re, ..]) => {
            let cost = t
                .size()
                .add(Size::fixed(1))
                .times(STRING_TRAVERSAL)
                .mul(re.size().times(REGEX_LENGTH));
            let kind = if f == "find" {
                Kind::String
            } else {
                Kind::List
            };
            Some((
                cost,
                kind,
                Some(Size {
                    min: 0,
                    max: t.size().max,
                }),
            ))
        }
        ("cidr" | "isIP" | "isCIDR" | "quantity" | "isQuantity", Some(_), [a, ..]) => {
            Some((traversal(a), Kind::Dyn, None))
        }
        ("ip", Some(_), [a, ..]) => Some((traversal(a), Kind::Dyn, None)),
        ("ip", Some(_), []) => Some((Cost::fixed(1), Kind::Dyn, None)),
        (
            "masked"
            | "prefixLength"
            | "family"
            | "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "sign"
            | "asInteger"
            | "isInteger"
            | "asApproximateFloat"
            | "isGreaterThan"
            | "isLessThan"
            | "compareTo"
            | "add"
            | "sub",
            _,
            _,
        ) => nominal(),
        ("containsIP" | "containsCIDR", Some(_), [a, ..]) => {
            // Comparing two IPs of 4 or 16 bytes; a CIDR is masked and compared again.
            let ip = Size { min: 4, max: 16 };
            let mut cost = ip.add(ip).times(STRING_TRAVERSAL);
            if f == "containsCIDR" {
                cost = cost.add(ip.times(STRING_TRAVERSAL)).add(Cost::fixed(1));
            }
            if a.kind == Kind::String {
                cost = cost.add(traversal(a));
            }
            Some((cost, Kind::Scalar, None))
        }
        _ => None,
    }
}

/// The value of a non-negative integer literal.
fn literal_count(e: Option<&IdedExpr>) -> Option<u64> {
    match &e?.expr {
        Expr::Literal(LiteralValue::Int(n)) => u64::try_from(*n.inner()).ok(),
        Expr::Literal(LiteralValue::UInt(n)) => Some(*n.inner()),
        _ => None,
    }
}

/// The kind of what a function returns, as far as sizes and selections care.
fn result_kind(f: &str) -> Kind {
    match f {
        "split" | "findAll" | "lists.range" => Kind::List,
        "string" | "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring" | "charAt"
        | "join" | "format" | "find" | "quote" => Kind::String,
        _ => Kind::Scalar,
    }
}

/// The node of field `name` of an object node (the CEL name, escaped).
fn field<'n>(node: &'n Node, name: &str) -> Option<&'n Node> {
    if kind_of(node) == Kind::Map {
        return node.additional.as_deref();
    }
    if node.resource_root {
        match name {
            "metadata" => return Some(super::schema::metadata_node()),
            "apiVersion" | "kind" => return super::schema::metadata_node().properties.get("name"),
            _ => {}
        }
    }
    node.properties
        .iter()
        .find(|(k, _)| super::schema::escape(k).as_deref() == Some(name))
        .map(|(_, c)| c)
}

/// A map key: upstream's `StringType`, whose `MaxElements` is left at zero.
fn key_node() -> &'static Node {
    static KEY: std::sync::OnceLock<Node> = std::sync::OnceLock::new();
    KEY.get_or_init(|| Node {
        ty: "string".into(),
        ..Node::default()
    })
}

/// Upstream's `DeclType` sizes of a schema node whose children are built: the most elements
/// of a string, list or map (`MaxElements`) and the least bytes it serializes to
/// (`MinSerializedSize`).
pub(super) fn sizes(props: &JSONSchemaProps, node: &Node) -> (u64, u64) {
    let declared = |v: Option<i64>| v.map(|v| v.max(0) as u64);
    let unbounded_string = MAX_REQUEST_BYTES - 2;
    if node.int_or_string {
        let max = declared(props.max_length).map_or(unbounded_string, |l| l.saturating_mul(4));
        return (max, 1);
    }
    match node.ty.as_str() {
        "array" => {
            let items_min = node.items.as_ref().map_or(0, |i| i.min_size);
            let max =
                declared(props.max_items).unwrap_or((MAX_REQUEST_BYTES - 2) / (items_min + 1));
            (max, 2)
        }
        "object" if node.properties.is_empty() && node.additional.is_some() => {
            let values_min = node.additional.as_ref().map_or(0, |a| a.min_size);
            let max = declared(props.max_properties)
                .unwrap_or((MAX_REQUEST_BYTES - 2) / (values_min + 6));
            (max, 2)
        }
        "object" => {
            let required = props.required.as_deref().unwrap_or_default();
            let min = props
                .properties
                .iter()
                .flatten()
                .filter(|(name, p)| required.contains(name) && p.default.is_none())
                .filter_map(|(name, _)| Some((name, node.properties.get(name)?)))
                .fold(2u64, |min, (name, child)| {
                    min.saturating_add(name.len() as u64 + child.min_size + 4)
                });
            (0, min)
        }
        "string" => match props.format.as_deref() {
            Some("byte") => (declared(props.max_length).unwrap_or(unbounded_string), 2),
            Some("duration") => (32, 3),
            Some("date") => (12, 12),
            Some("date-time") => (32, 21),
            _ => {
                let longest_enum = props.enum_.as_ref().map(|values| {
                    values
                        .iter()
                        .filter_map(|v| v.0.as_str().map(|s| s.len() as u64))
                        .max()
                        .unwrap_or(0)
                });
                let max = declared(props.max_length)
                    .map(|l| l.saturating_mul(4))
                    .or(longest_enum
                        .filter(|_| props.enum_.as_ref().is_some_and(|e| !e.is_empty())))
                    .unwrap_or(unbounded_string);
                (max, 2)
            }
        },
        "boolean" => (0, 4),
        _ => (0, 1),
    }
}

/// The cost of a schema's rules together (upstream's `TotalCost`), and the most expensive.
#[derive(Debug, Default)]
pub(super) struct Budget {
    total: u64,
    most_expensive: Vec<(String, u64)>,
}

impl Budget {
    /// Counts the cost of the expression at `path`; one costing 1% of the limit or more is
    /// kept among the four most expensive.
    pub(super) fn observe(&mut self, path: String, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < CRD_COST_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path, cost));
        self.most_expensive
            .sort_by_key(|(_, cost)| std::cmp::Reverse(*cost));
        self.most_expensive.truncate(4);
    }

    /// Upstream's errors when the total exceeds [`CRD_COST_LIMIT`]: one for each of the most
    /// expensive expressions, then one at the schema's `path`.
    pub(super) fn check(&self, path: &str, errs: &mut ErrorList) {
        if self.total <= CRD_COST_LIMIT {
            return;
        }
        for (at, _) in &self.most_expensive {
            errs.push(FieldError::forbidden(
                at.clone(),
                "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        errs.push(FieldError::forbidden(
            path,
            exceeds_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                self.total,
                CRD_COST_LIMIT,
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    /// `spec.tags`, a list of strings of `max_length`, at most `max_items`, with `rule` on it.
    fn tags(max_length: Option<u64>, max_items: Option<u64>, rule: &str) -> Json {
        let mut items = json!({"type": "string"});
        if let Some(l) = max_length {
            items["maxLength"] = json!(l);
        }
        let mut list = json!({"type": "array", "items": items,
            "x-kubernetes-validations": [{"rule": rule}]});
        if let Some(m) = max_items {
            list["maxItems"] = json!(m);
        }
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"tags": list}}}})
    }

    fn accepted(schema: Json) -> bool {
        let props: JSONSchemaProps = serde_json::from_value(schema).unwrap();
        Validator::compile(&props, AT).is_ok()
    }

    #[test]
    fn a_rule_is_accepted_up_to_the_largest_list_upstream_accepts() {
        // The largest maxItems upstream's estimator accepts for `self.all(x, x.contains('gpu'))`
        // at each maxLength, measured against kube-apiserver's validator.
        for (max_length, max_items) in [(16, 909_090), (63, 333_333), (253, 94_339), (1024, 24_154)]
        {
            let rule = "self.all(x, x.contains('gpu'))";
            assert!(
                accepted(tags(Some(max_length), Some(max_items), rule)),
                "{max_length}/{max_items}"
            );
            assert!(
                !accepted(tags(Some(max_length), Some(max_items + 1), rule)),
                "{max_length}/{}",
                max_items + 1
            );
        }
    }

    #[test]
    fn an_unbounded_rule_is_refused_with_upstreams_three_errors() {
        let errs = compile_errors(tags(None, None, "self.all(x, x.contains('gpu'))"));
        let rule =
            format!("{AT}.properties[spec].properties[tags].x-kubernetes-validations[0].rule");
        let hint = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
        assert_eq!(
            errs,
            [
                format!(
                    "{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {hint}"
                ),
                format!(
                    "{rule}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
                ),
                format!(
                    "{AT}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {hint}"
                ),
            ]
        );
    }

    #[test]
    fn a_rule_under_an_unbounded_list_is_priced_once_per_item_that_fits_a_request() {
        // A rule on each item of an unbounded list of objects runs up to 3 MiB / 3 times.
        let schema = |rule: &str| {
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object",
                    "properties": {"name": {"type": "string", "maxLength": 8}},
                    "x-kubernetes-validations": [{"rule": rule}]}}}}}})
        };
        assert!(accepted(schema("self.name.size() > 0")));
        // Four terms of three units each, 1,048,576 times: 12,582,912.
        let errs = compile_errors(schema(
            "self.name.startsWith('a') && self.name.endsWith('b') && self.name != 'ab' && self.name != 'ba'",
        ));
        assert!(
            errs[0].ends_with("[0].rule: Forbidden: estimated rule cost exceeds budget by factor of 1.258291x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        // Everyday rules on bounded fields stay far below the limit.
        assert!(accepted(replicas_schema(
            json!({"rule": "self.replicas <= self.maxReplicas"})
        )));
    }

    #[test]
    fn kubernetes_library_functions_are_priced_by_what_they_go_through() {
        // isSorted compares each string: 1,048,575 strings of up to 3 MiB.
        let errs = compile_errors(tags(None, None, "self.isSorted()"));
        assert!(errs[0].contains("by factor of more than 100x"), "{errs:?}");
        // 16 strings of 64 characters: 16 x (1 + 26) for isSorted, 4 x 64 x 0.2 for split.
        assert!(accepted(tags(Some(64), Some(16), "self.isSorted()")));
        assert!(accepted(tags(
            Some(64),
            Some(16),
            "self.all(x, x.split('-').size() < 4 && x.lowerAscii() == x)"
        )));
        // Joining a computed list: its strings' size is unknown, as upstream's estimator has it.
        let errs = compile_errors(tags(
            Some(64),
            Some(16),
            "self.join(',').split(',').join('-') != ''",
        ));
        assert!(errs[0].contains("by factor of more than 100x"), "{errs:?}");
    }

    #[test]
    fn the_factor_is_printed_as_upstream_prints_it() {
        let hint = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
        assert_eq!(
            super::exceeds_message("estimated rule cost", 12_000_000, super::RULE_COST_LIMIT),
            format!("estimated rule cost exceeds budget by factor of 1.200000x {hint}")
        );
        assert_eq!(
            super::exceeds_message("estimated rule cost", 54_000_000, super::RULE_COST_LIMIT),
            format!("estimated rule cost exceeds budget by factor of 5.4x {hint}")
        );
    }
}
