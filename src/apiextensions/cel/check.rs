//! Type-checking an expression against a schema node, as cel-go's checker does for the
//! declarations upstream makes: names, fields and result types, with issues worded as cel-go's.

use super::library::env;
use super::schema::{Node, escape, metadata_node};
use ::cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
use ::cel::{IdedExpr, Program};

/// Type names an expression may use as values, e.g. `type(self.x) == string`.
const TYPE_IDENTS: [&str; 11] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
];
/// Namespaces of library functions called as `ns.fn(...)`.
const NAMESPACES: [&str; 5] = ["lists", "strings", "optional", "ip", "format"];

/// Parses `source` and checks its names and fields against the schema of `node` (as `self` and
/// `oldSelf`), as cel-go's checker would for the declarations upstream makes for CRD rules.
/// Returns the program and its result type, or the issues worded as cel-go's.
pub(super) fn check(source: &str, node: &Node) -> Result<(Program, Out), String> {
    let roots = [("self", Ty::Schema(node)), ("oldSelf", Ty::Schema(node))];
    let (program, ty) = check_in(source, &roots, None)?;
    let out = match ty.plain() {
        Ty::Bool => Out::Bool,
        Ty::String => Out::String,
        Ty::Dyn => Out::Dyn,
        _ => Out::Other,
    };
    Ok((program, out))
}

/// The names an expression may use, each typed by a schema node (`None`: dyn).
pub(super) type Roots<'n> = [(&'n str, Option<&'n Node>)];

/// Checks `source` against `roots` and, when `variables` is given, `variables.<name>` for each
/// of them (name, expression), typed by checking them in order, each seeing those before it; a
/// variable that does not check is dyn, as upstream declares it. Returns the issues worded as
/// cel-go's.
pub(super) fn check_with_variables(
    source: &str,
    roots: &Roots<'_>,
    variables: Option<&[(String, String)]>,
) -> Result<(), String> {
    let roots: Vec<(&str, Ty)> = roots
        .iter()
        .map(|(name, node)| (*name, node.map_or(Ty::Dyn, Ty::Schema)))
        .collect();
    let declared = variables.map(|variables| {
        let mut declared: Vec<(String, Ty)> = Vec::new();
        for (name, expression) in variables {
            let ty = check_in(expression, &roots, Some(&declared)).map_or(Ty::Dyn, |(_, t)| t);
            declared.push((name.clone(), ty));
        }
        declared
    });
    check_in(source, &roots, declared.as_deref()).map(|_| ())
}

/// Parses and checks `source` with `roots` and, if given, `variables` declared.
fn check_in<'n>(
    source: &str,
    roots: &[(&str, Ty<'n>)],
    variables: Option<&[(String, Ty<'n>)]>,
) -> Result<(Program, Ty<'n>), String> {
    let program = env()
        .compile(source)
        .map_err(|e| e.to_string().replace("\n| ", "\n | "))?;
    let mut checker = Checker {
        source,
        info: program.source_info(),
        issues: Vec::new(),
        scope: Vec::new(),
        roots,
        variables,
    };
    let ty = checker.expr(program.expression());
    if !checker.issues.is_empty() {
        return Err(checker.issues.join("\n"));
    }
    Ok((program, ty))
}

/// The result type of a checked expression, as far as rules care.
pub(super) enum Out {
    Bool,
    String,
    Dyn,
    Other,
}

/// What the checker knows of an expression's type.
#[derive(Clone, Copy)]
enum Ty<'n> {
    Bool,
    Int,
    Double,
    String,
    List,
    Map,
    Null,
    Dyn,
    Schema(&'n Node),
    /// `variables`, whose fields are the declared variables.
    Variables,
}

impl<'n> Ty<'n> {
    /// The plain type of a schema-typed value.
    fn plain(self) -> Ty<'n> {
        match self {
            Ty::Schema(n) if n.int_or_string || n.opaque_string() => Ty::Dyn,
            Ty::Schema(n) => match n.ty.as_str() {
                "boolean" => Ty::Bool,
                "integer" => Ty::Int,
                "number" => Ty::Double,
                "string" => Ty::String,
                "array" => Ty::List,
                "object" => Ty::Map,
                _ => Ty::Dyn,
            },
            t => t,
        }
    }

    /// The name cel-go gives a scalar type in an overload issue; `None` for the others, which
    /// are never reported.
    fn scalar_name(self) -> Option<&'static str> {
        match self.plain() {
            Ty::Bool => Some("bool"),
            Ty::Int => Some("int"),
            Ty::Double => Some("double"),
            Ty::String => Some("string"),
            _ => None,
        }
    }
}

/// A light type checker over the parsed expression: names, fields, operator overloads and
/// result types.
struct Checker<'s, 'n> {
    source: &'s str,
    info: &'s ::cel::common::ast::SourceInfo,
    issues: Vec<String>,
    /// Comprehension variables in scope, with their types.
    scope: Vec<(String, Ty<'n>)>,
    /// The declared names.
    roots: &'s [(&'s str, Ty<'n>)],
    /// The declared variables, when `variables` is declared.
    variables: Option<&'s [(String, Ty<'n>)]>,
}

impl<'s, 'n> Checker<'s, 'n> {
    /// Records an issue at the position of expression `id`, as cel-go prints it.
    fn issue(&mut self, id: u64, msg: String) {
        let start = self.info.offset_for(id).map_or(0, |(s, _)| s as usize);
        let before = &self.source[..start.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count();
        let text = self.source.lines().nth(line - 1).unwrap_or_default();
        self.issues.push(format!(
            "ERROR: <input>:{line}:{}: {msg}\n | {text}\n | {}^",
            col + 1,
            ".".repeat(col)
        ));
    }

    fn expr(&mut self, e: &'s IdedExpr) -> Ty<'n> {
        match &e.expr {
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scope.iter().rev().find(|(n, _)| n == name) {
                    return *t;
                }
                if let Some((_, t)) = self.roots.iter().find(|(n, _)| n == name) {
                    return *t;
                }
                match name.as_str() {
                    "variables" if self.variables.is_some() => Ty::Variables,
                    n if TYPE_IDENTS.contains(&n) => Ty::Dyn,
                    _ => {
                        self.issue(
                            e.id,
                            format!("undeclared reference to '{name}' (in container '')"),
                        );
                        Ty::Dyn
                    }
                }
            }
            Expr::Literal(lit) => match lit {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Int(_) | LiteralValue::UInt(_) => Ty::Int,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::Null => Ty::Null,
                LiteralValue::Bytes(_) => Ty::Dyn,
            },
            Expr::List(l) => {
                for el in &l.elements {
                    self.expr(el);
                }
                Ty::List
            }
            Expr::Map(m) => {
                self.entries(&m.entries);
                Ty::Map
            }
            Expr::Struct(s) => {
                self.entries(&s.entries);
                Ty::Dyn
            }
            Expr::Select(s) => {
                let operand = self.expr(&s.operand);
                let ty = self.select(e.id, operand, &s.field);
                if s.test { Ty::Bool } else { ty }
            }
            Expr::Call(call) => self.call(e.id, call),
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range);
                let elem = match range {
                    Ty::Schema(n) if n.ty == "array" => {
                        n.items.as_deref().map_or(Ty::Dyn, Ty::Schema)
                    }
                    Ty::Schema(n) if n.ty == "object" => Ty::String,
                    _ => Ty::Dyn,
                };
                let accu = self.expr(&c.accu_init);
                let pushed = 2 + usize::from(c.iter_var2.is_some());
                self.scope.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2.clone(), Ty::Dyn));
                }
                self.scope.push((c.accu_var.clone(), accu));
                self.expr(&c.loop_cond);
                self.expr(&c.loop_step);
                let result = self.expr(&c.result);
                for _ in 0..pushed {
                    self.scope.pop();
                }
                match accu {
                    Ty::Bool | Ty::List => accu,
                    _ => result.plain(),
                }
            }
            Expr::Unspecified => Ty::Dyn,
        }
    }

    fn entries(&mut self, entries: &'s [::cel::common::ast::IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.expr(&me.key);
                    self.expr(&me.value);
                }
                EntryExpr::StructField(f) => {
                    self.expr(&f.value);
                }
            }
        }
    }

    /// The type of `operand.field`, recording an undefined field of a structural object.
    fn select(&mut self, id: u64, operand: Ty<'n>, field: &str) -> Ty<'n> {
        if let Ty::Variables = operand {
            let found = self
                .variables
                .and_then(|vs| vs.iter().find(|(n, _)| n == field))
                .map(|(_, t)| *t);
            return found.unwrap_or_else(|| {
                self.issue(id, format!("undefined field '{field}'"));
                Ty::Dyn
            });
        }
        let Ty::Schema(n) = operand else {
            return Ty::Dyn;
        };
        if n.ty != "object" {
            return Ty::Dyn;
        }
        if n.resource_root {
            match field {
                "apiVersion" | "kind" => return Ty::String,
                "metadata" => return Ty::Schema(metadata_node()),
                _ => {}
            }
        }
        if let Some(child) = n
            .properties
            .iter()
            .find(|(k, _)| escape(k).as_deref() == Some(field))
            .map(|(_, c)| c)
        {
            return Ty::Schema(child);
        }
        if n.properties.is_empty() {
            if let Some(add) = &n.additional {
                return Ty::Schema(add);
            }
            if n.preserve_unknown {
                return Ty::Dyn;
            }
        }
        self.issue(id, format!("undefined field '{field}'"));
        Ty::Dyn
    }

    /// Records cel-go's overload issue when operator `f` has no overload for the known scalar
    /// types of `args`; whether it had one (or the types are not known).
    fn overload(&mut self, id: u64, f: &str, args: &[Ty<'n>]) -> bool {
        let [a, b] = args else { return true };
        let (Some(x), Some(y)) = (a.scalar_name(), b.scalar_name()) else {
            return true;
        };
        let numeric = |t: &str| t == "int" || t == "double";
        let found = match f {
            // cel-go compares numbers across types, and any other type with itself.
            operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS => x == y || numeric(x) && numeric(y),
            operators::ADD => x == y && x != "bool",
            operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE => x == y && numeric(x),
            operators::MODULO => x == y && x == "int",
            _ => true,
        };
        if !found {
            self.issue(
                id,
                format!("found no matching overload for '{f}' applied to '({x}, {y})'"),
            );
        }
        found
    }

    /// The result type of a call, after checking its target and arguments.
    fn call(&mut self, id: u64, call: &'s ::cel::common::ast::CallExpr) -> Ty<'n> {
        match call.target.as_deref() {
            // `lists.range(...)`, `optional.of(...)`: a namespace, not a variable.
            Some(IdedExpr {
                expr: Expr::Ident(ns),
                ..
            }) if NAMESPACES.contains(&ns.as_str()) && !self.scope.iter().any(|(n, _)| n == ns) => {
            }
            Some(t) => {
                self.expr(t);
            }
            None => {}
        }
        let args: Vec<Ty> = call.args.iter().map(|a| self.expr(a)).collect();
        let f = call.func_name.as_str();
        match f {
            operators::GREATER
            | operators::GREATER_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS => {
                self.overload(id, f, &args);
                Ty::Bool
            }
            operators::LOGICAL_AND
            | operators::LOGICAL_OR
            | operators::LOGICAL_NOT
            | operators::EQUALS
            | operators::NOT_EQUALS
            | operators::IN
            | operators::NOT_STRICTLY_FALSE
            | "matches"
            | "startsWith"
            | "endsWith"
            | "contains"
            | "isSorted"
            | "exists"
            | "all"
            | "exists_one"
            | "isQuantity"
            | "isInteger"
            | "isLessThan"
            | "isGreaterThan"
            | "isURL"
            | "isIP"
            | "isCIDR"
            | "isCanonical"
            | "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "isGlobalUnicast"
            | "containsIP"
            | "containsCIDR" => Ty::Bool,
            "size" | "indexOf" | "lastIndexOf" | "int" | "sign" | "asInteger" | "compareTo"
            | "family" | "prefixLength" => Ty::Int,
            "string" | "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring"
            | "charAt" | "join" | "format" | "strings.quote" | "find" | "getScheme" | "getHost"
            | "getHostname" | "getPort" | "getEscapedPath" => Ty::String,
            "double" | "asApproximateFloat" => Ty::Double,
            "bool" => Ty::Bool,
            "split" | "findAll" => Ty::List,
            operators::CONDITIONAL => match (args[1].plain(), args[2].plain()) {
                (a, b) if same(a, b) => a,
                _ => Ty::Dyn,
            },
            operators::ADD
            | operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO => {
                if !self.overload(id, f, &args) {
                    return Ty::Dyn;
                }
                match (args[0].plain(), args[1].plain()) {
                    (a, b) if same(a, b) => a,
                    _ => Ty::Dyn,
                }
            }
            operators::NEGATE => args[0].plain(),
            operators::INDEX => match args[0] {
                Ty::Schema(n) if n.ty == "array" => n.items.as_deref().map_or(Ty::Dyn, Ty::Schema),
                Ty::Schema(n) if n.ty == "object" && n.properties.is_empty() => {
                    n.additional.as_deref().map_or(Ty::Dyn, Ty::Schema)
                }
                _ => Ty::Dyn,
            },
            _ => Ty::Dyn,
        }
    }
}

/// Whether two checked types are the same known plain type.
fn same(a: Ty, b: Ty) -> bool {
    matches!(
        (a, b),
        (Ty::Bool, Ty::Bool)
            | (Ty::Int, Ty::Int)
            | (Ty::Double, Ty::Double)
            | (Ty::String, Ty::String)
            | (Ty::List, Ty::List)
            | (Ty::Map, Ty::Map)
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn a_rule_that_does_not_parse_is_reported_at_its_path_on_the_crd() {
        let errs = compile_errors(replicas_schema(json!({"rule": "self.replicas <="})));
        assert_eq!(errs.len(), 1);
        let prefix = format!(
            "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.replicas <=\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:"
        );
        assert!(errs[0].starts_with(&prefix), "{}", errs[0]);
        assert!(
            errs[0].contains("\n | self.replicas <=\n | "),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn an_undefined_field_and_an_undeclared_name_are_compile_errors_worded_as_cel_go() {
        let errs = compile_errors(replicas_schema(json!({"rule": "self.replica > 1"})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.replica > 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 1\n | ....^"
            )]
        );
        let errs = compile_errors(replicas_schema(json!({"rule": "self.replicas > '1'"})));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].ends_with("compilation failed: ERROR: <input>:1:15: found no matching overload for '_>_' applied to '(int, string)'\n | self.replicas > '1'\n | ..............^"),
            "{}",
            errs[0]
        );
        let errs = compile_errors(replicas_schema(json!({"rule": "foo == 1"})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"foo == 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
            )]
        );
    }
}
