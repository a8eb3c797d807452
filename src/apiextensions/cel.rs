//! CRD validation rules (`x-kubernetes-validations`), compiled and evaluated with CEL as upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema/cel` does.
//!
//! [`Validator::compile`] checks every rule of a schema tree as CRD validation does (syntax, names,
//! fields against the schema, result types, rule fields) and keeps the programs;
//! [`Validator::validate`] evaluates them against a custom object, with `oldSelf` on update.

use crate::registry::errors::{ErrorList, FieldError};
use ::cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
use ::cel::common::types::{DYN_TYPE, LIST_TYPE};
use ::cel::common::value::CowVal;
use ::cel::objects::{Key, Map, OptionalValue};
use ::cel::{Context, Env, ExecutionError, IdedExpr, Program, Value, extensions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

/// The longest evaluated messageExpression upstream accepts (`MaxEvaluatedMessageExpressionSizeBytes`).
const MAX_MESSAGE_EXPRESSION_BYTES: usize = 5 * 1024;
/// The reasons a rule may give, sorted as upstream lists them.
const SUPPORTED_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];
/// CEL's reserved words: a property named so is reachable as `__{word}__`.
const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];
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
const NAMESPACES: [&str; 3] = ["lists", "strings", "optional"];

/// The compiled x-kubernetes-validations rules of one CRD version's schema (all nodes).
#[derive(Debug, Default)]
pub struct Validator {
    root: Option<Node>,
}

/// One schema node: what value conversion needs, and the node's compiled rules.
#[derive(Debug, Default)]
struct Node {
    ty: String,
    rules: Vec<CompiledRule>,
    properties: BTreeMap<String, Node>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    list_type: Option<String>,
    map_keys: Vec<String>,
    map_type: Option<String>,
    int_or_string: bool,
    preserve_unknown: bool,
    /// The root of a resource: the custom object or an embedded resource (apiVersion, kind, metadata).
    resource_root: bool,
    /// Whether this node or one below it has rules.
    has_rules: bool,
    /// Defaults of the item properties, for map-list keys.
    default: Option<Json>,
}

/// One rule, compiled.
#[derive(Debug)]
struct CompiledRule {
    rule: ValidationRule,
    program: Program,
    uses_old_self: bool,
    message: Option<Program>,
    /// `fieldPath` normalized as a field path relative to the node, e.g. `a.b` or `m[k]`.
    field_path: Option<String>,
}

impl Validator {
    /// Compiles every rule in the schema tree, reporting errors as CRD validation does under `path`
    /// (the schema's field path, e.g. `spec.versions[0].schema.openAPIV3Schema`).
    pub fn compile(props: &JSONSchemaProps, path: &str) -> Result<Validator, ErrorList> {
        let mut errs = ErrorList::new();
        let root = build(props, path, true, None, &mut errs);
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Validator {
            root: root.has_rules.then_some(root),
        })
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Evaluates the rules against the custom object `obj`, with `old` the stored object on update.
    pub fn validate(&self, obj: &Json, old: Option<&Json>) -> ErrorList {
        let mut errs = ErrorList::new();
        if let Some(root) = &self.root {
            validate_node(root, "", obj, old, &mut errs);
        }
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// Compilation

/// Builds the node for `props` at schema path `path`, compiling its rules into `errs`.
/// `uncorrelatable` is the path of the nearest enclosing list whose items can't be correlated.
fn build(
    props: &JSONSchemaProps,
    path: &str,
    resource_root: bool,
    uncorrelatable: Option<&str>,
    errs: &mut ErrorList,
) -> Node {
    let mut node = Node {
        ty: props.type_.clone().unwrap_or_default(),
        list_type: props.x_kubernetes_list_type.clone(),
        map_keys: props.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
        map_type: props.x_kubernetes_map_type.clone(),
        int_or_string: props.x_kubernetes_int_or_string == Some(true),
        preserve_unknown: props.x_kubernetes_preserve_unknown_fields == Some(true),
        resource_root,
        default: props.default.as_ref().map(|d| d.0.clone()),
        ..Node::default()
    };
    for (name, p) in props.properties.iter().flatten() {
        let child_path = format!("{path}.properties[{name}]");
        let embedded = p.x_kubernetes_embedded_resource == Some(true);
        let child = build(p, &child_path, embedded, uncorrelatable, errs);
        node.properties.insert(name.clone(), child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &props.items {
        let forbid = match (uncorrelatable, node.list_type.as_deref()) {
            (Some(p), _) => Some(p.to_string()),
            (None, Some("map")) => None,
            (None, _) => Some(path.to_string()),
        };
        let embedded = items.x_kubernetes_embedded_resource == Some(true);
        let child = build(
            items,
            &format!("{path}.items"),
            embedded,
            forbid.as_deref(),
            errs,
        );
        node.items = Some(Box::new(child));
    }
    if let Some(JSONSchemaPropsOrBool::Schema(add)) = &props.additional_properties {
        let embedded = add.x_kubernetes_embedded_resource == Some(true);
        let child = build(
            add,
            &format!("{path}.additionalProperties"),
            embedded,
            uncorrelatable,
            errs,
        );
        node.additional = Some(Box::new(child));
    }
    let rules = props
        .x_kubernetes_validations
        .as_deref()
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        if let Some(c) = compile_rule(&node, rule, &at, uncorrelatable, errs) {
            node.rules.push(c);
        }
    }
    node.has_rules = !node.rules.is_empty()
        || node.properties.values().any(|p| p.has_rules)
        || node.items.as_ref().is_some_and(|n| n.has_rules)
        || node.additional.as_ref().is_some_and(|n| n.has_rules);
    node
}

/// Checks and compiles one rule at `at` (`...x-kubernetes-validations[i]`), as upstream's CRD
/// validation and `cel.Compile` do. Returns the rule when it compiled.
fn compile_rule(
    node: &Node,
    rule: &ValidationRule,
    at: &str,
    uncorrelatable: Option<&str>,
    errs: &mut ErrorList,
) -> Option<CompiledRule> {
    let before = errs.len();
    let trimmed_rule = rule.rule.trim();
    let message = rule.message.as_deref().unwrap_or_default();
    let trimmed_msg = message.trim();
    if trimmed_rule.is_empty() {
        errs.push(FieldError::required(
            format!("{at}.rule"),
            "rule is not specified",
        ));
    } else if !message.is_empty() && trimmed_msg.is_empty() {
        errs.push(FieldError::invalid(
            format!("{at}.message"),
            message,
            "message must be non-empty if specified",
        ));
    } else if message.len() > 2048 {
        errs.push(FieldError::invalid(
            format!("{at}.message"),
            format!("{}...", &message[..message.floor_char_boundary(10)]),
            "message must have a maximum length of 2048 characters",
        ));
    } else if has_newlines(trimmed_msg) {
        errs.push(FieldError::invalid(
            format!("{at}.message"),
            message,
            "message must not contain line breaks",
        ));
    } else if has_newlines(trimmed_rule) && trimmed_msg.is_empty() {
        errs.push(FieldError::required(
            format!("{at}.message"),
            "message must be specified if rule contains line breaks",
        ));
    }
    let msg_expr = rule.message_expression.as_deref().unwrap_or_default();
    if !msg_expr.is_empty() && msg_expr.trim().is_empty() {
        errs.push(FieldError::required(
            format!("{at}.messageExpression"),
            "messageExpression must be non-empty if specified",
        ));
    }
    if let Some(reason) = &rule.reason
        && !SUPPORTED_REASONS.contains(&reason.as_str())
    {
        errs.push(FieldError::not_supported(
            format!("{at}.reason"),
            reason.as_str(),
            &SUPPORTED_REASONS,
        ));
    }
    let mut field_path = None;
    if let Some(fp) = &rule.field_path {
        if !fp.is_empty() && fp.trim().is_empty() {
            errs.push(FieldError::invalid(
                format!("{at}.fieldPath"),
                fp.as_str(),
                "fieldPath must be non-empty if specified",
            ));
        }
        if has_newlines(fp) {
            errs.push(FieldError::invalid(
                format!("{at}.fieldPath"),
                fp.as_str(),
                "fieldPath must not contain line breaks",
            ));
        }
        if !fp.is_empty() {
            match valid_field_path(fp, node) {
                Some(p) => field_path = Some(p),
                None => errs.push(FieldError::invalid(
                    format!("{at}.fieldPath"),
                    fp.as_str(),
                    "fieldPath must be a valid path",
                )),
            }
        }
    }
    if errs.len() > before {
        return None;
    }

    let rule_value = rule_as_value(rule);
    let program = match check(&rule.rule, node) {
        Ok((program, ty)) => {
            if !matches!(ty, Out::Bool | Out::Dyn) {
                errs.push(FieldError::invalid(
                    format!("{at}.rule"),
                    rule_value.clone(),
                    "cel expression must evaluate to a bool",
                ));
                None
            } else {
                Some(program)
            }
        }
        Err(detail) => {
            errs.push(FieldError::invalid(
                format!("{at}.rule"),
                rule_value.clone(),
                format!("compilation failed: {detail}"),
            ));
            None
        }
    };
    let mut message_program = None;
    if program.is_some() && !msg_expr.is_empty() {
        match check(msg_expr, node) {
            Ok((p, Out::String | Out::Dyn)) => message_program = Some(p),
            Ok(_) => errs.push(FieldError::invalid(
                format!("{at}.messageExpression"),
                rule_value.clone(),
                "messageExpression must evaluate to a string",
            )),
            Err(detail) => errs.push(FieldError::invalid(
                format!("{at}.messageExpression"),
                rule_value.clone(),
                format!("messageExpression compilation failed: {detail}"),
            )),
        }
    }
    if let Some(program) = &program {
        if references_old_self(program.expression()) {
            if let Some(list) = uncorrelatable {
                errs.push(FieldError::invalid(
                    format!("{at}.rule"),
                    rule.rule.as_str(),
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {list}"),
                ));
            }
        } else if let Some(optional) = rule.optional_old_self {
            errs.push(FieldError::invalid(
                format!("{at}.optionalOldSelf"),
                optional,
                "may not be set if oldSelf is not used in rule",
            ));
        }
    }
    if errs.len() > before {
        return None;
    }
    let program = program?;
    Some(CompiledRule {
        rule: rule.clone(),
        uses_old_self: references_old_self(program.expression()),
        program,
        message: message_program,
        field_path,
    })
}

/// The rule as the invalid value of a compile error (upstream prints the Go struct).
fn rule_as_value(rule: &ValidationRule) -> Json {
    serde_json::to_value(rule).unwrap_or(Json::Null)
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// The shared CEL environment: the standard library, the strings and lists extensions, and the
/// Kubernetes list functions.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        env.add_extension(extensions::strings)
            .expect("strings extension");
        env.add_extension(extensions::lists)
            .expect("lists extension");
        env.add_extension(k8s_lists).expect("kubernetes lists");
        Arc::new(env)
    })
}

/// Parses `source` and checks its names and fields against the schema of `node`, as cel-go's
/// checker would for the declarations upstream makes. Returns the program and its result type,
/// or the issues worded as cel-go's.
fn check(source: &str, node: &Node) -> Result<(Program, Out), String> {
    let program = env()
        .compile(source)
        .map_err(|e| e.to_string().replace("\n| ", "\n | "))?;
    let mut checker = Checker {
        source,
        info: program.source_info(),
        issues: Vec::new(),
        scope: Vec::new(),
    };
    let out = match checker.expr(program.expression(), node).plain() {
        Ty::Bool => Out::Bool,
        Ty::String => Out::String,
        Ty::Dyn => Out::Dyn,
        _ => Out::Other,
    };
    if !checker.issues.is_empty() {
        return Err(checker.issues.join("\n"));
    }
    Ok((program, out))
}

/// The result type of a checked expression, as far as rules care.
enum Out {
    Bool,
    String,
    Dyn,
    Other,
}

/// Whether the expression names `oldSelf` (outside a comprehension binding that shadows it).
fn references_old_self(expr: &IdedExpr) -> bool {
    match &expr.expr {
        Expr::Ident(name) => name == "oldSelf",
        Expr::Call(call) => {
            call.target.as_deref().is_some_and(references_old_self)
                || call.args.iter().any(references_old_self)
        }
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .any(references_old_self),
        Expr::List(l) => l.elements.iter().any(references_old_self),
        Expr::Map(m) => m.entries.iter().any(|e| match &e.expr {
            EntryExpr::MapEntry(me) => {
                references_old_self(&me.key) || references_old_self(&me.value)
            }
            EntryExpr::StructField(f) => references_old_self(&f.value),
        }),
        Expr::Select(s) => references_old_self(&s.operand),
        Expr::Struct(s) => s.entries.iter().any(|e| match &e.expr {
            EntryExpr::MapEntry(me) => {
                references_old_self(&me.key) || references_old_self(&me.value)
            }
            EntryExpr::StructField(f) => references_old_self(&f.value),
        }),
        Expr::Literal(_) | Expr::Unspecified => false,
    }
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
}

impl<'n> Ty<'n> {
    /// The plain type of a schema-typed value.
    fn plain(self) -> Ty<'n> {
        match self {
            Ty::Schema(n) if n.int_or_string => Ty::Dyn,
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
}

/// A light type checker over the parsed expression: names, fields and result types.
struct Checker<'a> {
    source: &'a str,
    info: &'a ::cel::common::ast::SourceInfo,
    issues: Vec<String>,
    /// Comprehension variables in scope, with their types.
    scope: Vec<(String, Ty<'a>)>,
}

impl<'a> Checker<'a> {
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

    fn expr(&mut self, e: &'a IdedExpr, node: &'a Node) -> Ty<'a> {
        match &e.expr {
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scope.iter().rev().find(|(n, _)| n == name) {
                    return *t;
                }
                match name.as_str() {
                    "self" | "oldSelf" => Ty::Schema(node),
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
                    self.expr(el, node);
                }
                Ty::List
            }
            Expr::Map(m) => {
                self.entries(&m.entries, node);
                Ty::Map
            }
            Expr::Struct(s) => {
                self.entries(&s.entries, node);
                Ty::Dyn
            }
            Expr::Select(s) => {
                let operand = self.expr(&s.operand, node);
                let ty = self.select(e.id, operand, &s.field);
                if s.test { Ty::Bool } else { ty }
            }
            Expr::Call(call) => self.call(call, node),
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range, node);
                let elem = match range {
                    Ty::Schema(n) if n.ty == "array" => {
                        n.items.as_deref().map_or(Ty::Dyn, Ty::Schema)
                    }
                    Ty::Schema(n) if n.ty == "object" => Ty::String,
                    _ => Ty::Dyn,
                };
                let accu = self.expr(&c.accu_init, node);
                let pushed = 2 + usize::from(c.iter_var2.is_some());
                self.scope.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2.clone(), Ty::Dyn));
                }
                self.scope.push((c.accu_var.clone(), accu));
                self.expr(&c.loop_cond, node);
                self.expr(&c.loop_step, node);
                let result = self.expr(&c.result, node);
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

    fn entries(&mut self, entries: &'a [::cel::common::ast::IdedEntryExpr], node: &'a Node) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.expr(&me.key, node);
                    self.expr(&me.value, node);
                }
                EntryExpr::StructField(f) => {
                    self.expr(&f.value, node);
                }
            }
        }
    }

    /// The type of `operand.field`, recording an undefined field of a structural object.
    fn select(&mut self, id: u64, operand: Ty<'a>, field: &str) -> Ty<'a> {
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

    /// The result type of a call, after checking its target and arguments.
    fn call(&mut self, call: &'a ::cel::common::ast::CallExpr, node: &'a Node) -> Ty<'a> {
        match call.target.as_deref() {
            // `lists.range(...)`, `optional.of(...)`: a namespace, not a variable.
            Some(IdedExpr {
                expr: Expr::Ident(ns),
                ..
            }) if NAMESPACES.contains(&ns.as_str()) && !self.scope.iter().any(|(n, _)| n == ns) => {
            }
            Some(t) => {
                self.expr(t, node);
            }
            None => {}
        }
        let args: Vec<Ty> = call.args.iter().map(|a| self.expr(a, node)).collect();
        let f = call.func_name.as_str();
        match f {
            operators::LOGICAL_AND
            | operators::LOGICAL_OR
            | operators::LOGICAL_NOT
            | operators::EQUALS
            | operators::NOT_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::IN
            | operators::NOT_STRICTLY_FALSE
            | "matches"
            | "startsWith"
            | "endsWith"
            | "contains"
            | "isSorted"
            | "exists"
            | "all"
            | "exists_one" => Ty::Bool,
            "size" | "indexOf" | "lastIndexOf" | "int" => Ty::Int,
            "string" | "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring"
            | "charAt" | "join" | "format" | "strings.quote" => Ty::String,
            "double" => Ty::Double,
            "bool" => Ty::Bool,
            "split" => Ty::List,
            operators::CONDITIONAL => match (args[1].plain(), args[2].plain()) {
                (a, b) if same(a, b) => a,
                _ => Ty::Dyn,
            },
            operators::ADD
            | operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO => match (args[0].plain(), args[1].plain()) {
                (a, b) if same(a, b) => a,
                _ => Ty::Dyn,
            },
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

/// The `metadata` a rule sees at a resource root: only `name` and `generateName`.
fn metadata_node() -> &'static Node {
    static META: OnceLock<Node> = OnceLock::new();
    META.get_or_init(|| {
        let string = || Node {
            ty: "string".into(),
            ..Node::default()
        };
        Node {
            ty: "object".into(),
            properties: BTreeMap::from([
                ("name".to_string(), string()),
                ("generateName".to_string(), string()),
            ]),
            ..Node::default()
        }
    })
}

/// The CEL name of a property, as upstream's `Escape`; None when the name can't be one.
fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// Validates a rule's `fieldPath` (`.a.b`, `.m['k']`) against `node`, as upstream's
/// `ValidFieldPath`; returns it as a field path (`a.b`, `m[k]`).
fn valid_field_path(path: &str, node: &Node) -> Option<String> {
    let mut out = String::new();
    let mut n = node;
    let mut rest = path;
    let step = |name: &str, out: &mut String, n: &mut &Node| -> Option<()> {
        if !n.properties.is_empty() {
            *n = n.properties.get(name)?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
        } else if let Some(add) = &n.additional {
            *n = add;
            out.push_str(&format!("[{name}]"));
        } else {
            return None;
        }
        Some(())
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let (name, r) = r.split_at(end);
            if name.is_empty() || name.contains(']') {
                return None;
            }
            step(name, &mut out, &mut n)?;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("['") {
            let mut name = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => name.push('\n'),
                        't' => name.push('\t'),
                        'r' => name.push('\r'),
                        '\'' => name.push('\''),
                        '\\' => name.push('\\'),
                        _ => return None,
                    },
                    (i, '\'') => break i,
                    (_, c) => name.push(c),
                }
            };
            step(&name, &mut out, &mut n)?;
            rest = r[end + 1..].strip_prefix(']')?;
        } else {
            return None;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Validates the value `obj` at `path` against `node` and everything below it.
fn validate_node(node: &Node, path: &str, obj: &Json, old: Option<&Json>, errs: &mut ErrorList) {
    if !node.has_rules || obj.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !node.rules.is_empty() {
        eval_rules(node, path, obj, old, errs);
    }
    match obj {
        Json::Array(items) => {
            let Some(item_node) = &node.items else { return };
            let old_items = old.and_then(Json::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = old_items.and_then(|o| correlate(node, item_node, item, o));
                validate_node(item_node, &format!("{path}[{i}]"), item, old_item, errs);
            }
        }
        Json::Object(map) => {
            // Maps correlate by key: granular and atomic ones both do (upstream's MapIsCorrelatable).
            let correlatable =
                matches!(node.map_type.as_deref(), None | Some("granular" | "atomic"));
            let old_map = old.and_then(Json::as_object).filter(|_| correlatable);
            for (k, v) in map {
                let old_v = old_map.and_then(|o| o.get(k));
                if let Some(child) = node.properties.get(k) {
                    validate_node(child, &child_path(path, k), v, old_v, errs);
                } else if let Some(add) = &node.additional {
                    validate_node(add, &format!("{path}[{k}]"), v, old_v, errs);
                }
            }
        }
        _ => {}
    }
}

/// The old item a map-type list's `item` correlates with (same values of the map keys), if any.
fn correlate<'o>(list: &Node, items: &Node, item: &Json, old: &'o [Json]) -> Option<&'o Json> {
    if list.list_type.as_deref() != Some("map") || list.map_keys.is_empty() {
        return None;
    }
    let key_of = |v: &Json| -> Vec<Option<Json>> {
        list.map_keys
            .iter()
            .map(|k| {
                v.get(k)
                    .cloned()
                    .or_else(|| items.properties.get(k).and_then(|p| p.default.clone()))
            })
            .collect()
    };
    let key = key_of(item);
    old.iter().find(|o| key_of(o) == key)
}

fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The path as upstream prints it: the root is `<nil>`.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_string()
    } else {
        path.to_string()
    }
}

/// Evaluates the rules of `node` on `obj`.
fn eval_rules(node: &Node, path: &str, obj: &Json, old: Option<&Json>, errs: &mut ErrorList) {
    let self_val = to_cel(obj, Some(node));
    let old_val = old.map(|o| to_cel(o, Some(node)));
    for rule in &node.rules {
        let optional = rule.rule.optional_old_self == Some(true);
        if rule.uses_old_self && old_val.is_none() && !optional {
            continue;
        }
        let mut ctx = Context::with_env(env().clone());
        ctx.add_variable_from_value("self", self_val.clone());
        let old_binding = match (&old_val, optional) {
            (Some(v), false) => Some(v.clone()),
            (Some(v), true) => Some(Value::Opaque(Arc::new(OptionalValue::of(v.clone())))),
            (None, true) => Some(Value::Opaque(Arc::new(OptionalValue::none()))),
            (None, false) => None,
        };
        if let Some(v) = old_binding {
            ctx.add_variable_from_value("oldSelf", v);
        }
        let rule_str = rule_error_string(&rule.rule);
        match rule.program.execute(&ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let at = match &rule.field_path {
                    Some(fp) => child_path(path, fp),
                    None => path.to_string(),
                };
                let detail = rule
                    .message
                    .as_ref()
                    .and_then(|m| message_expression(m, &self_val, old_val.as_ref()))
                    .unwrap_or_else(|| match rule.rule.message.as_deref() {
                        Some(m) if !m.is_empty() => m.trim().to_string(),
                        _ => format!("failed rule: {rule_str}"),
                    });
                errs.push(error_for_reason(
                    rule.rule.reason.as_deref(),
                    shown(&at),
                    &node.ty,
                    detail,
                ));
            }
            Ok(_) => errs.push(FieldError::invalid(
                shown(path),
                node.ty.as_str(),
                "rule compile error: cel expression must evaluate to a bool",
            )),
            Err(ExecutionError::NoSuchOverload(_)) => errs.push(FieldError::invalid(
                shown(path),
                node.ty.as_str(),
                format!("'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {rule_str}"),
            )),
            Err(e) => errs.push(FieldError::invalid(
                shown(path),
                node.ty.as_str(),
                format!("{} evaluating rule: {rule_str}", runtime_error(&e)),
            )),
        }
    }
}

/// Evaluates a messageExpression; None (the rule's message is used) when it fails or gives
/// no usable message, as upstream.
fn message_expression(
    program: &Program,
    self_val: &Value,
    old_val: Option<&Value>,
) -> Option<String> {
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable_from_value("self", self_val.clone());
    if let Some(v) = old_val {
        ctx.add_variable_from_value("oldSelf", v.clone());
    }
    let Ok(Value::String(s)) = program.execute(&ctx) else {
        return None;
    };
    let s = s.trim();
    (!s.is_empty() && s.len() <= MAX_MESSAGE_EXPRESSION_BYTES && !s.contains('\n'))
        .then(|| s.to_string())
}

/// A runtime error worded as cel-go's.
fn runtime_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(v) => format!("index out of bounds: {}", plain(v)),
        ExecutionError::UndeclaredReference(n) => format!("no such attribute: {n}"),
        other => other.to_string(),
    }
}

/// A CEL value printed bare (ints and strings as they are).
fn plain(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

fn rule_error_string(rule: &ValidationRule) -> String {
    match rule.message.as_deref() {
        Some(m) if !m.is_empty() => m.trim().to_string(),
        _ => rule.rule.trim().to_string(),
    }
}

/// The field error a failed rule gives, by its `reason` (upstream's `fieldErrorForReason`).
fn error_for_reason(reason: Option<&str>, path: String, ty: &str, detail: String) -> FieldError {
    match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
        Some("FieldValueRequired") => FieldError::required(path, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(path, ty),
        _ => FieldError::invalid(path, ty, detail),
    }
}

/// Converts a JSON value to CEL as upstream's `UnstructuredToVal` does for its schema node:
/// integers stay int, numbers are double, properties are named as escaped, and a resource
/// root shows only apiVersion, kind, metadata.name and metadata.generateName.
fn to_cel(v: &Json, node: Option<&Node>) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Number(n) => match node.map(|n| n.ty.as_str()) {
            Some("number") => Value::Float(n.as_f64().unwrap_or_default()),
            Some("integer") => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Int(n.as_f64().unwrap_or_default() as i64),
            },
            _ => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(u)) => Value::UInt(u),
                _ => Value::Float(n.as_f64().unwrap_or_default()),
            },
        },
        Json::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            Value::List(Arc::new(
                items.iter().map(|i| to_cel(i, item_node)).collect(),
            ))
        }
        Json::Object(map) => {
            let mut out: HashMap<Key, Value> = HashMap::new();
            let root = node.is_some_and(|n| n.resource_root);
            for (k, val) in map {
                if root {
                    match k.as_str() {
                        "apiVersion" | "kind" => {
                            out.insert(k.clone().into(), to_cel(val, None));
                            continue;
                        }
                        "metadata" => {
                            out.insert(k.clone().into(), to_cel(val, Some(metadata_node())));
                            continue;
                        }
                        _ => {}
                    }
                }
                match node {
                    Some(n) if !n.properties.is_empty() => {
                        if let (Some(child), Some(name)) = (n.properties.get(k), escape(k)) {
                            out.insert(name.into(), to_cel(val, Some(child)));
                        }
                    }
                    Some(n) if n.additional.is_some() => {
                        out.insert(k.clone().into(), to_cel(val, n.additional.as_deref()));
                    }
                    Some(n) if !n.preserve_unknown && n.ty == "object" && !root => {}
                    _ => {
                        out.insert(k.clone().into(), to_cel(val, None));
                    }
                }
            }
            Value::Map(Map { map: Arc::new(out) })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes list library: isSorted, sum, min, max, indexOf, lastIndexOf

/// Registers the Kubernetes list functions that cel-rust lacks.
fn k8s_lists(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    Ok(())
}

type CelResult<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// The arguments of a call as `Value`s.
fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

/// The receiver's elements.
fn list_of(v: &Value, function: &str) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        _ => Err(ExecutionError::no_such_member_overload(
            function,
            vec![format!("{:?}", v.type_of())],
        )),
    }
}

fn ret<'b, 'v>(v: Value) -> CelResult<'b, 'v> {
    let boxed: Box<dyn ::cel::common::value::Val> = Box::try_from(v)?;
    Ok(CowVal::from(boxed))
}

/// Compares two elements of one type.
fn compare(a: &Value, b: &Value, function: &str) -> Result<std::cmp::Ordering, ExecutionError> {
    a.partial_cmp(b)
        .filter(|_| std::mem::discriminant(a) == std::mem::discriminant(b))
        .ok_or_else(|| ExecutionError::function_error(function, "elements are not comparable"))
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "isSorted")?;
    for w in list.windows(2) {
        if compare(&w[0], &w[1], "isSorted")? == std::cmp::Ordering::Greater {
            return ret(Value::Bool(false));
        }
    }
    ret(Value::Bool(true))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "sum")?;
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for v in list.iter() {
        total = match (&total, v) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(*b).ok_or(ExecutionError::Overflow(
                    "sum",
                    total.clone(),
                    v.clone(),
                ))?)
            }
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or(ExecutionError::Overflow(
                    "sum",
                    total.clone(),
                    v.clone(),
                ))?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(ExecutionError::function_error("sum", "no such overload")),
        };
    }
    ret(total)
}

fn extreme<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    keep: std::cmp::Ordering,
) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], function)?;
    let Some(mut best) = list.first().cloned() else {
        return Err(ExecutionError::function_error(
            function,
            format!("{function} called on empty list"),
        ));
    };
    for v in list.iter().skip(1) {
        if compare(v, &best, function)? == keep {
            best = v.clone();
        }
    }
    ret(best)
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    extreme(args, "min", std::cmp::Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    extreme(args, "max", std::cmp::Ordering::Greater)
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "indexOf")?;
    let i = list.iter().position(|v| v == &args[1]);
    ret(Value::Int(i.map_or(-1, |i| i as i64)))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let list = list_of(&args[0], "lastIndexOf")?;
    let i = list.iter().rposition(|v| v == &args[1]);
    ret(Value::Int(i.map_or(-1, |i| i as i64)))
}

/// The validator is shared across request handlers.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Validator>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AT: &str = "spec.versions[0].schema.openAPIV3Schema";

    fn validator(schema: Json) -> Validator {
        let props: JSONSchemaProps = serde_json::from_value(schema).unwrap();
        Validator::compile(&props, AT).unwrap()
    }

    fn compile_errors(schema: Json) -> Vec<String> {
        let props: JSONSchemaProps = serde_json::from_value(schema).unwrap();
        Validator::compile(&props, AT)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    /// A root schema with `spec` holding the given properties and rules.
    fn spec_schema(properties: Json, rules: Json) -> Json {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": properties,
                    "x-kubernetes-validations": rules,
                }
            }
        })
    }

    fn replicas_schema(rule: Json) -> Json {
        spec_schema(
            json!({"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}}),
            json!([rule]),
        )
    }

    fn obj(spec: Json) -> Json {
        json!({"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": "foo"}, "spec": spec})
    }

    #[test]
    fn a_schema_without_rules_gives_an_empty_validator() {
        let v = validator(json!({"type": "object", "properties": {"spec": {"type": "object"}}}));
        assert!(v.is_empty());
        assert!(v.validate(&obj(json!({})), None).is_empty());
    }

    #[test]
    fn a_rule_on_spec_passes_when_true_and_fails_with_the_default_message_when_false() {
        let v = validator(replicas_schema(
            json!({"rule": "self.replicas <= self.maxReplicas"}),
        ));
        assert!(!v.is_empty());
        assert!(
            v.validate(&obj(json!({"replicas": 2, "maxReplicas": 3})), None)
                .is_empty()
        );
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(
            messages(&errs),
            ["spec: Invalid value: \"object\": failed rule: self.replicas <= self.maxReplicas"]
        );
    }

    #[test]
    fn a_failed_rule_reports_its_message_trimmed() {
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": " replicas must not exceed maxReplicas ",
        })));
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(
            messages(&errs),
            ["spec: Invalid value: \"object\": replicas must not exceed maxReplicas"]
        );
    }

    #[test]
    fn a_message_expression_wins_over_the_message_and_falls_back_when_it_fails() {
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "static",
            "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.maxReplicas)",
        })));
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(
            messages(&errs),
            ["spec: Invalid value: \"object\": replicas 5 exceeds 3"]
        );
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "static",
            "messageExpression": "'  '",
        })));
        let errs = v.validate(&obj(json!({"replicas": 5, "maxReplicas": 3})), None);
        assert_eq!(messages(&errs), ["spec: Invalid value: \"object\": static"]);
    }

    #[test]
    fn a_rule_that_does_not_parse_is_reported_at_its_path_on_the_crd() {
        let errs = compile_errors(replicas_schema(json!({"rule": "self.replicas <="})));
        assert_eq!(errs.len(), 1);
        let prefix = format!(
            "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {{\"rule\":\"self.replicas <=\"}}: compilation failed: ERROR: <input>:1:"
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
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {{\"rule\":\"self.replica > 1\"}}: compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 1\n | ....^"
            )]
        );
        let errs = compile_errors(replicas_schema(json!({"rule": "foo == 1"})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {{\"rule\":\"foo == 1\"}}: compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
            )]
        );
    }

    #[test]
    fn a_rule_that_is_not_a_bool_and_a_bad_message_expression_are_compile_errors() {
        let errs = compile_errors(replicas_schema(json!({"rule": "self.replicas + 1"})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {{\"rule\":\"self.replicas + 1\"}}: cel expression must evaluate to a bool"
            )]
        );
        let errs = compile_errors(replicas_schema(
            json!({"rule": "self.replicas > 0", "messageExpression": "self.nope"}),
        ));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].messageExpression: Invalid value: {{\"messageExpression\":\"self.nope\",\"rule\":\"self.replicas > 0\"}}: messageExpression compilation failed: ERROR: <input>:1:5: undefined field 'nope'"
            )),
            "{}",
            errs[0]
        );
        let errs = compile_errors(replicas_schema(
            json!({"rule": "self.replicas > 0", "messageExpression": "self.replicas"}),
        ));
        assert!(
            errs[0].ends_with(": messageExpression must evaluate to a string"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn rule_fields_are_checked_as_crd_validation_does() {
        let errs = compile_errors(replicas_schema(json!({"rule": "  "})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Required value: rule is not specified"
            )]
        );
        let errs = compile_errors(replicas_schema(json!({"rule": "true", "reason": "Bogus"})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].reason: Unsupported value: \"Bogus\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
            )]
        );
        let errs = compile_errors(replicas_schema(
            json!({"rule": "true", "fieldPath": ".nope"}),
        ));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].fieldPath: Invalid value: \".nope\": fieldPath must be a valid path"
            )]
        );
        let errs = compile_errors(replicas_schema(
            json!({"rule": "true", "optionalOldSelf": true}),
        ));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"
            )]
        );
    }

    #[test]
    fn an_immutable_field_rule_runs_on_update_only() {
        let v = validator(spec_schema(
            json!({"name": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "name is immutable"}
            ]}}),
            json!([]),
        ));
        assert!(v.validate(&obj(json!({"name": "a"})), None).is_empty());
        let old = obj(json!({"name": "a"}));
        assert!(
            v.validate(&obj(json!({"name": "a"})), Some(&old))
                .is_empty()
        );
        let errs = v.validate(&obj(json!({"name": "b"})), Some(&old));
        assert_eq!(
            messages(&errs),
            ["spec.name: Invalid value: \"string\": name is immutable"]
        );
        // No old value at that position: the transition rule does not run.
        let old = obj(json!({}));
        assert!(
            v.validate(&obj(json!({"name": "b"})), Some(&old))
                .is_empty()
        );
    }

    #[test]
    fn an_optional_old_self_rule_runs_on_create_with_an_absent_old_self() {
        let v = validator(spec_schema(
            json!({"name": {"type": "string", "x-kubernetes-validations": [
                {"rule": "!oldSelf.hasValue() || self == oldSelf.value()", "optionalOldSelf": true, "message": "immutable"}
            ]}}),
            json!([]),
        ));
        assert!(v.validate(&obj(json!({"name": "a"})), None).is_empty());
        let old = obj(json!({"name": "a"}));
        assert_eq!(
            messages(&v.validate(&obj(json!({"name": "b"})), Some(&old))),
            ["spec.name: Invalid value: \"string\": immutable"]
        );
    }

    #[test]
    fn rules_on_array_items_report_the_item_index() {
        let v = validator(spec_schema(
            json!({"ports": {"type": "array", "items": {
                "type": "object",
                "properties": {"port": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.port > 0 && self.port < 65536", "message": "bad port"}],
            }}}),
            json!([]),
        ));
        let errs = v.validate(
            &obj(json!({"ports": [{"port": 80}, {"port": 0}, {"port": 70000}]})),
            None,
        );
        assert_eq!(
            messages(&errs),
            [
                "spec.ports[1]: Invalid value: \"object\": bad port",
                "spec.ports[2]: Invalid value: \"object\": bad port",
            ]
        );
    }

    #[test]
    fn map_list_items_correlate_with_old_items_by_their_keys_and_set_items_do_not() {
        let items = json!({
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.value >= oldSelf.value", "message": "value may not decrease"}],
        });
        let v = validator(spec_schema(
            json!({"entries": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"], "items": items}}),
            json!([]),
        ));
        let old = obj(json!({"entries": [{"name": "a", "value": 5}, {"name": "b", "value": 1}]}));
        let new = obj(
            json!({"entries": [{"name": "b", "value": 2}, {"name": "c", "value": 0}, {"name": "a", "value": 4}]}),
        );
        assert_eq!(
            messages(&v.validate(&new, Some(&old))),
            ["spec.entries[2]: Invalid value: \"object\": value may not decrease"]
        );
        let errs = compile_errors(spec_schema(
            json!({"entries": {"type": "array", "items": items}}),
            json!([]),
        ));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].properties[entries].items.x-kubernetes-validations[0].rule: Invalid value: \"self.value >= oldSelf.value\": oldSelf cannot be used on the uncorrelatable portion of the schema within {AT}.properties[spec].properties[entries]"
            )]
        );
    }

    #[test]
    fn additional_properties_correlate_by_key_and_report_the_key_path() {
        let v = validator(spec_schema(
            json!({"limits": {"type": "object", "additionalProperties": {
                "type": "integer",
                "x-kubernetes-validations": [{"rule": "self >= oldSelf"}],
            }}}),
            json!([]),
        ));
        let old = obj(json!({"limits": {"cpu": 4, "mem": 8}}));
        let new = obj(json!({"limits": {"cpu": 2, "mem": 9, "gpu": 0}}));
        assert_eq!(
            messages(&v.validate(&new, Some(&old))),
            ["spec.limits[cpu]: Invalid value: \"integer\": failed rule: self >= oldSelf"]
        );
    }

    #[test]
    fn reason_and_field_path_shape_the_reported_error() {
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "too many",
            "reason": "FieldValueForbidden",
            "fieldPath": ".replicas",
        })));
        let bad = obj(json!({"replicas": 5, "maxReplicas": 3}));
        assert_eq!(
            messages(&v.validate(&bad, None)),
            ["spec.replicas: Forbidden: too many"]
        );
        let errs = v.validate(&bad, None);
        assert_eq!(errs[0].reason(), "FieldValueForbidden");
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "message": "missing",
            "reason": "FieldValueRequired",
        })));
        assert_eq!(
            messages(&v.validate(&bad, None)),
            ["spec: Required value: missing"]
        );
        let v = validator(replicas_schema(json!({
            "rule": "self.replicas <= self.maxReplicas",
            "reason": "FieldValueDuplicate",
            "fieldPath": "['maxReplicas']",
        })));
        assert_eq!(
            messages(&v.validate(&bad, None)),
            ["spec.maxReplicas: Duplicate value: \"object\""]
        );
    }

    #[test]
    fn a_missing_field_is_a_runtime_error_and_has_guards_it() {
        let v = validator(replicas_schema(
            json!({"rule": "self.replicas <= self.maxReplicas"}),
        ));
        assert_eq!(
            messages(&v.validate(&obj(json!({"replicas": 5})), None)),
            [
                "spec: Invalid value: \"object\": no such key: maxReplicas evaluating rule: self.replicas <= self.maxReplicas"
            ]
        );
        let v = validator(replicas_schema(
            json!({"rule": "!has(self.maxReplicas) || self.replicas <= self.maxReplicas"}),
        ));
        assert!(v.validate(&obj(json!({"replicas": 5})), None).is_empty());
    }

    #[test]
    fn root_rules_see_the_name_and_are_reported_at_nil() {
        let v = validator(json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {"prefix": {"type": "string"}}}},
            "x-kubernetes-validations": [
                {"rule": "self.metadata.name.startsWith(self.spec.prefix)", "messageExpression": "'name must start with ' + self.spec.prefix"}
            ],
        }));
        assert!(v.validate(&obj(json!({"prefix": "fo"})), None).is_empty());
        assert_eq!(
            messages(&v.validate(&obj(json!({"prefix": "ba"})), None)),
            ["<nil>: Invalid value: \"object\": name must start with ba"]
        );
        let errs = compile_errors(json!({
            "type": "object",
            "x-kubernetes-validations": [{"rule": "has(self.metadata.labels)"}],
        }));
        assert!(errs[0].contains("undefined field 'labels'"), "{}", errs[0]);
    }

    #[test]
    fn integers_stay_int_numbers_are_double_and_int_or_string_keeps_ints() {
        let v = validator(spec_schema(
            json!({
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "port": {"x-kubernetes-int-or-string": true},
            }),
            json!([
                {"rule": "type(self.count) == int && self.count / 2 == 1"},
                {"rule": "type(self.ratio) == double && self.ratio > 0.5"},
                {"rule": "type(self.port) == int || self.port.endsWith('%')"},
            ]),
        ));
        assert!(
            v.validate(&obj(json!({"count": 3, "ratio": 1, "port": 8080})), None)
                .is_empty()
        );
        assert!(
            v.validate(
                &obj(json!({"count": 2, "ratio": 0.75, "port": "50%"})),
                None
            )
            .is_empty()
        );
        assert_eq!(
            messages(&v.validate(&obj(json!({"count": 3, "ratio": 0.75, "port": "50"})), None)),
            [
                "spec: Invalid value: \"object\": failed rule: type(self.port) == int || self.port.endsWith('%')"
            ]
        );
    }

    #[test]
    fn library_functions_and_macros_used_by_crd_rules_work() {
        let v = validator(spec_schema(
            json!({
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "sizes": {"type": "array", "items": {"type": "integer"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }),
            json!([
                {"rule": "size(self.name) <= 10 && self.name.matches('^[a-z]+$')"},
                {"rule": "self.name.upperAscii().lowerAscii() == self.name && self.name.indexOf('b') == 1"},
                {"rule": "self.tags.all(t, t.startsWith('x-')) && self.tags.exists(t, t.contains('y'))"},
                {"rule": "self.tags.map(t, size(t)).filter(n, n > 3).size() == 1"},
                {"rule": "self.sizes.isSorted() && self.sizes.sum() == 6 && self.sizes.min() == 1 && self.sizes.max() == 3"},
                {"rule": "self.sizes.indexOf(2) == 1 && self.sizes.lastIndexOf(9) == -1"},
                {"rule": "'app' in self.labels && self.labels.app == 'web' && self.labels.exists(k, k == 'tier')"},
                {"rule": "self.name.split('b').join('-') == 'a-c'"},
            ]),
        ));
        let good = obj(json!({
            "name": "abc", "tags": ["x-y", "x-zzz"], "sizes": [1, 2, 3],
            "labels": {"app": "web", "tier": "front"},
        }));
        assert_eq!(messages(&v.validate(&good, None)), Vec::<String>::new());
        let bad = obj(json!({
            "name": "aBc", "tags": ["x-y", "z"], "sizes": [2, 1, 3],
            "labels": {"app": "db"},
        }));
        let errs = messages(&v.validate(&bad, None));
        assert_eq!(errs.len(), 8, "{errs:?}");
        assert!(
            errs.iter()
                .all(|e| e.starts_with("spec: Invalid value: \"object\": failed rule: ")),
            "{errs:?}"
        );
    }

    #[test]
    fn property_names_that_are_keywords_or_have_dashes_are_escaped() {
        let v = validator(spec_schema(
            json!({"namespace": {"type": "string"}, "max-size": {"type": "integer"}}),
            json!([{"rule": "self.__namespace__ == 'ns' && self.max__dash__size > 1"}]),
        ));
        assert!(
            v.validate(&obj(json!({"namespace": "ns", "max-size": 2})), None)
                .is_empty()
        );
        assert_eq!(
            v.validate(&obj(json!({"namespace": "ns", "max-size": 0})), None)
                .len(),
            1
        );
        assert_eq!(
            escape("a__b.c/d"),
            Some("a__underscores__b__dot__c__slash__d".into())
        );
        assert_eq!(escape("1a"), None);
        assert_eq!(escape("a b"), None);
    }
}
