//! Compiling a schema's rules: the node tree built from the schema, each rule's fields checked as
//! upstream's CRD validation does, its expressions type-checked, and `oldSelf` use found.

use super::check::{Out, check};
use super::cost::{self, Budget};
use super::schema::{CompiledRule, Node};
use crate::registry::errors::{ErrorList, FieldError};
use ::cel::IdedExpr;
use ::cel::common::ast::{EntryExpr, Expr};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};

/// The reasons a rule may give, sorted as upstream lists them.
const SUPPORTED_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// Builds the node for `props` at schema path `path`, compiling its rules into `errs`.
/// `uncorrelatable` is the path of the nearest enclosing list whose items can't be correlated;
/// `cardinality` how many times the node may occur in an object (`None`: no bound declared),
/// and `budget` the schema's rules' cost so far.
pub(super) fn build(
    props: &JSONSchemaProps,
    path: &str,
    resource_root: bool,
    uncorrelatable: Option<&str>,
    cardinality: Option<u64>,
    budget: &mut Budget,
    errs: &mut ErrorList,
) -> Node {
    let mut node = Node {
        ty: props.type_.clone().unwrap_or_default(),
        list_type: props.x_kubernetes_list_type.clone(),
        map_keys: props.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
        map_type: props.x_kubernetes_map_type.clone(),
        int_or_string: props.x_kubernetes_int_or_string == Some(true),
        format: props.format.clone(),
        preserve_unknown: props.x_kubernetes_preserve_unknown_fields == Some(true),
        resource_root,
        default: props.default.as_ref().map(|d| d.0.clone()),
        ..Node::default()
    };
    for (name, p) in props.properties.iter().flatten() {
        let child_path = format!("{path}.properties[{name}]");
        let embedded = p.x_kubernetes_embedded_resource == Some(true);
        let child = build(
            p,
            &child_path,
            embedded,
            uncorrelatable,
            cardinality,
            budget,
            errs,
        );
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
            cardinality
                .zip(props.max_items)
                .map(|(c, m)| c.saturating_mul(m.max(0) as u64)),
            budget,
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
            cardinality
                .zip(props.max_properties)
                .map(|(c, m)| c.saturating_mul(m.max(0) as u64)),
            budget,
            errs,
        );
        node.additional = Some(Box::new(child));
    }
    (node.max_elements, node.min_size) = cost::sizes(props, &node);
    // Upstream's bound for a node under lists or maps without one: as many as fit a request.
    let cardinality = cardinality.unwrap_or_else(|| cost::unbounded_cardinality(&node));
    let rules = props
        .x_kubernetes_validations
        .as_deref()
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        if let Some(c) = compile_rule(
            &node,
            rule,
            &at,
            uncorrelatable,
            (cardinality, budget),
            errs,
        ) {
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
    (cardinality, budget): (u64, &mut Budget),
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

    let rule_value = rule_as_go(rule);
    let program = match check(&rule.rule, node) {
        Ok((program, ty)) => {
            if !matches!(ty, Out::Bool | Out::Dyn) {
                errs.push(FieldError::invalid_struct(
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
            errs.push(FieldError::invalid_struct(
                format!("{at}.rule"),
                rule_value.clone(),
                format!("compilation failed: {detail}"),
            ));
            None
        }
    };
    if let Some(program) = &program {
        let rule_cost = cost::estimate(program.expression(), node)
            .max
            .saturating_mul(cardinality);
        if rule_cost > cost::RULE_COST_LIMIT {
            errs.push(FieldError::forbidden(
                format!("{at}.rule"),
                cost::exceeds_message("estimated rule cost", rule_cost, cost::RULE_COST_LIMIT),
            ));
        }
        budget.observe(format!("{at}.rule"), rule_cost);
    }
    let mut message_program = None;
    if program.is_some() && !msg_expr.is_empty() {
        match check(msg_expr, node) {
            Ok((p, Out::String | Out::Dyn)) => {
                let message_cost = cost::estimate(p.expression(), node).max;
                if message_cost > cost::RULE_COST_LIMIT {
                    errs.push(FieldError::forbidden(
                        format!("{at}.messageExpression"),
                        cost::exceeds_message(
                            "estimated messageExpression cost",
                            message_cost,
                            cost::RULE_COST_LIMIT,
                        ),
                    ));
                }
                budget.observe(format!("{at}.messageExpression"), message_cost);
                message_program = Some(p);
            }
            Ok(_) => errs.push(FieldError::invalid_struct(
                format!("{at}.messageExpression"),
                rule_value.clone(),
                "messageExpression must evaluate to a string",
            )),
            Err(detail) => errs.push(FieldError::invalid_struct(
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
/// The rule as Go's `%#v` writes upstream's internal `apiextensions.ValidationRule`; a set
/// pointer shows as an address in Go, here a fixed one.
fn rule_as_go(rule: &ValidationRule) -> String {
    use crate::golang::quote;
    let pointer = |set: bool, ty: &str| {
        if set {
            format!("({ty})(0xc000000000)")
        } else {
            format!("({ty})(nil)")
        }
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{}, FieldPath:{}, OptionalOldSelf:{}}}",
        quote(&rule.rule),
        quote(rule.message.as_deref().unwrap_or_default()),
        quote(rule.message_expression.as_deref().unwrap_or_default()),
        pointer(
            rule.reason.is_some(),
            "*apiextensions.FieldValueErrorReason"
        ),
        quote(rule.field_path.as_deref().unwrap_or_default()),
        pointer(rule.optional_old_self.is_some(), "*bool"),
    )
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn a_rule_that_is_not_a_bool_and_a_bad_message_expression_are_compile_errors() {
        let errs = compile_errors(replicas_schema(json!({"rule": "self.replicas + 1"})));
        assert_eq!(
            errs,
            [format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.replicas + 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: cel expression must evaluate to a bool"
            )]
        );
        let errs = compile_errors(replicas_schema(
            json!({"rule": "self.replicas > 0", "messageExpression": "self.nope"}),
        ));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!(
                "{AT}.properties[spec].x-kubernetes-validations[0].messageExpression: Invalid value: apiextensions.ValidationRule{{Rule:\"self.replicas > 0\", Message:\"\", MessageExpression:\"self.nope\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: messageExpression compilation failed: ERROR: <input>:1:5: undefined field 'nope'"
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
}
