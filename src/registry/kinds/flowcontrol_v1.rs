//! flowcontrol.apiserver.k8s.io/v1 rules: FlowSchema and PriorityLevelConfiguration defaults,
//! upstream's validation (the mandatory objects' fixed specs among it) and printers.

use crate::flowcontrol::bootstrap::{self, EXEMPT, semantic};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Rules, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::{dns1123_label, dns1123_subdomain};
use k8s_openapi::api::flowcontrol::v1::{
    FlowSchema, FlowSchemaSpec, LimitedPriorityLevelConfiguration, NonResourcePolicyRule,
    PolicyRulesWithSubjects, PriorityLevelConfiguration, PriorityLevelConfigurationSpec,
    QueuingConfiguration, ResourcePolicyRule, Subject,
};
use serde_json::{Value, json};

/// The verbs a rule may name.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "proxy",
    "update",
    "watch",
];
/// Upstream's `FlowSchemaMaxMatchingPrecedence`.
const MAX_MATCHING_PRECEDENCE: i32 = 10000;
/// Upstream's `priorityLevelConfigurationQueuingMaxQueues`.
const MAX_QUEUES: i32 = 10_000_000;
/// Upstream's shuffle-sharding `MaxHashBits`.
pub const MAX_HASH_BITS: i32 = 60;

fn has_wildcard(list: &[String]) -> bool {
    list.iter().any(|s| s == "*")
}

/// FlowSchema: matchingPrecedence 1000 by default; upstream's validation; upstream's printer.
pub struct FlowSchemaRules;

impl Rules<FlowSchema> for FlowSchemaRules {
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn default(&self, fs: &mut FlowSchema) {
        if let Some(spec) = fs.spec.as_mut()
            && spec.matching_precedence.unwrap_or(0) == 0
        {
            spec.matching_precedence = Some(1000);
        }
    }

    fn validate(&self, fs: &FlowSchema) -> ErrorList {
        let name = fs.metadata.name.as_deref().unwrap_or("");
        let spec = fs.spec.clone().unwrap_or_default();
        let mut errs = validate_flow_schema_spec(name, &spec);
        if let Some(mandatory) = bootstrap::mandatory_flow_schemas()
            .into_iter()
            .find(|b| b.name == name)
            && semantic(&json!(spec)) != semantic(&mandatory.spec)
        {
            errs.push(FieldError::invalid(
                "spec",
                json!(spec),
                format!("spec of '{name}' must equal the fixed value"),
            ));
        }
        errs.extend(duplicate_conditions(
            fs.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.type_.as_deref().unwrap_or("")),
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "PriorityLevel",
                "`name` is the name of the priority level configuration being referenced Required.",
            ),
            Column::text(
                "MatchingPrecedence",
                "`matchingPrecedence` is used to choose among the FlowSchemas that match a given request. The chosen FlowSchema is among those with the numerically lowest (which we take to be logically highest) MatchingPrecedence.  Each MatchingPrecedence value must be ranged in [1,10000]. Note that if the precedence is not specified, it will be set to 1000 as default.",
            ),
            Column::text(
                "DistinguisherMethod",
                "`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema. `nil` specifies that the distinguisher is disabled and thus will always be the empty string.",
            ),
            Column::AGE,
            Column::text(
                "MissingPL",
                "references a broken or non-existent PriorityLevelConfiguration",
            ),
        ])
    }

    fn cells(&self, fs: &FlowSchema, raw: &Value) -> Vec<Value> {
        let spec = fs.spec.clone().unwrap_or_default();
        let dangling = crate::flowcontrol::dangling_condition(fs)
            .and_then(|c| c.status.clone())
            .unwrap_or_else(|| "?".into());
        vec![
            name_cell(raw),
            spec.priority_level_configuration.name.into(),
            json!(spec.matching_precedence.unwrap_or(0)),
            spec.distinguisher_method
                .map_or_else(|| "<none>".into(), |d| d.type_)
                .into(),
            age_cell(raw),
            dangling.into(),
        ]
    }
}

fn validate_flow_schema_spec(name: &str, spec: &FlowSchemaSpec) -> ErrorList {
    let mut errs = Vec::new();
    let precedence = spec.matching_precedence.unwrap_or(0);
    if precedence <= 0 {
        errs.push(FieldError::invalid(
            "spec.matchingPrecedence",
            precedence,
            "must be a positive value",
        ));
    }
    if precedence > MAX_MATCHING_PRECEDENCE {
        errs.push(FieldError::invalid(
            "spec.matchingPrecedence",
            precedence,
            format!("must not be greater than {MAX_MATCHING_PRECEDENCE}"),
        ));
    }
    if precedence == 1 && name != EXEMPT {
        errs.push(FieldError::invalid(
            "spec.matchingPrecedence",
            precedence,
            "only the schema named 'exempt' may have matchingPrecedence 1",
        ));
    }
    if let Some(d) = &spec.distinguisher_method
        && !matches!(d.type_.as_str(), "ByNamespace" | "ByUser")
    {
        errs.push(FieldError::not_supported(
            "spec.distinguisherMethod.type",
            json!(d),
            &["ByNamespace", "ByUser"],
        ));
    }
    let level = &spec.priority_level_configuration.name;
    if level.is_empty() {
        errs.push(FieldError::required(
            "spec.priorityLevelConfiguration.name",
            "must reference a priority level",
        ));
    } else {
        for msg in dns1123_subdomain(level) {
            errs.push(FieldError::invalid(
                "spec.priorityLevelConfiguration.name",
                level.as_str(),
                msg,
            ));
        }
    }
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        errs.extend(validate_rule(rule, &format!("spec.rules[{i}]")));
    }
    errs
}

fn validate_rule(rule: &PolicyRulesWithSubjects, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    if rule.subjects.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.subjects"),
            "subjects must contain at least one value",
        ));
    }
    let resource_rules = rule.resource_rules.as_deref().unwrap_or_default();
    let non_resource_rules = rule.non_resource_rules.as_deref().unwrap_or_default();
    if resource_rules.is_empty() && non_resource_rules.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one of resourceRules and nonResourceRules has to be non-empty",
        ));
    }
    for (i, subject) in rule.subjects.iter().enumerate() {
        errs.extend(validate_subject(subject, &format!("{path}.subjects[{i}]")));
    }
    for (i, r) in resource_rules.iter().enumerate() {
        errs.extend(validate_resource_rule(
            r,
            &format!("{path}.resourceRules[{i}]"),
        ));
    }
    for (i, r) in non_resource_rules.iter().enumerate() {
        errs.extend(validate_non_resource_rule(
            r,
            &format!("{path}.nonResourceRules[{i}]"),
        ));
    }
    errs
}

fn validate_subject(subject: &Subject, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    let forbid = |errs: &mut ErrorList, field: &str, kind: &str, present: bool| {
        if present {
            errs.push(FieldError::forbidden(
                format!("{path}.{field}"),
                format!("{field} is forbidden when subject kind is not '{kind}'"),
            ));
        }
    };
    match subject.kind.as_str() {
        "ServiceAccount" => {
            match &subject.service_account {
                None => errs.push(FieldError::required(
                    format!("{path}.serviceAccount"),
                    "serviceAccount is required when subject kind is 'ServiceAccount'",
                )),
                Some(sa) => {
                    if sa.name.is_empty() {
                        errs.push(FieldError::required(
                            format!("{path}.serviceAccount.name"),
                            "",
                        ));
                    } else if sa.name != "*" {
                        for msg in dns1123_subdomain(&sa.name) {
                            errs.push(FieldError::invalid(
                                format!("{path}.serviceAccount.name"),
                                sa.name.as_str(),
                                msg,
                            ));
                        }
                    }
                    if sa.namespace.is_empty() {
                        errs.push(FieldError::required(
                            format!("{path}.serviceAccount.namespace"),
                            "must specify namespace for service account",
                        ));
                    } else {
                        for msg in dns1123_label(&sa.namespace) {
                            errs.push(FieldError::invalid(
                                format!("{path}.serviceAccount.namespace"),
                                sa.namespace.as_str(),
                                msg,
                            ));
                        }
                    }
                }
            }
            forbid(&mut errs, "user", "User", subject.user.is_some());
            forbid(&mut errs, "group", "Group", subject.group.is_some());
        }
        "User" => {
            match &subject.user {
                None => errs.push(FieldError::required(
                    format!("{path}.user"),
                    "user is required when subject kind is 'User'",
                )),
                Some(u) if u.name.is_empty() => {
                    errs.push(FieldError::required(format!("{path}.user.name"), ""))
                }
                Some(_) => {}
            }
            forbid(&mut errs, "group", "Group", subject.group.is_some());
            forbid(
                &mut errs,
                "serviceAccount",
                "ServiceAccount",
                subject.service_account.is_some(),
            );
        }
        "Group" => {
            match &subject.group {
                None => errs.push(FieldError::required(
                    format!("{path}.group"),
                    "group is required when subject kind is 'Group'",
                )),
                Some(g) if g.name.is_empty() => {
                    errs.push(FieldError::required(format!("{path}.group.name"), ""))
                }
                Some(_) => {}
            }
            forbid(
                &mut errs,
                "serviceAccount",
                "ServiceAccount",
                subject.service_account.is_some(),
            );
            forbid(&mut errs, "user", "User", subject.user.is_some());
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.kind"),
            other,
            &["Group", "ServiceAccount", "User"],
        )),
    }
    errs
}

fn validate_verbs(verbs: &[String], path: &str, errs: &mut ErrorList) {
    if verbs.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    } else if has_wildcard(verbs) {
        if verbs.len() > 1 {
            errs.push(FieldError::invalid(
                format!("{path}.verbs"),
                json!(verbs),
                "if '*' is present, must not specify other verbs",
            ));
        }
    } else if verbs.iter().any(|v| !VERBS.contains(&v.as_str())) {
        errs.push(FieldError::not_supported(
            format!("{path}.verbs"),
            json!(verbs),
            VERBS,
        ));
    }
}

fn validate_non_resource_rule(rule: &NonResourcePolicyRule, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    validate_verbs(&rule.verbs, path, &mut errs);
    let urls = &rule.non_resource_urls;
    if urls.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.nonResourceURLs"),
            "nonResourceURLs must contain at least one value",
        ));
    } else if has_wildcard(urls) {
        if urls.len() > 1 {
            errs.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                json!(urls),
                "if '*' is present, must not specify other non-resource URLs",
            ));
        }
    } else {
        for (i, url) in urls.iter().enumerate() {
            if let Some(msg) = non_resource_url_problem(url) {
                errs.push(FieldError::invalid(
                    format!("{path}.nonResourceURLs[{i}]"),
                    url.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

/// Upstream's `ValidateNonResourceURLPath`.
fn non_resource_url_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("must not be empty");
    }
    if path == "/" {
        return None;
    }
    if !path.starts_with('/') {
        return Some("must start with slash");
    }
    if path.contains(' ') {
        return Some("must not contain white-space");
    }
    if path.contains("//") {
        return Some("must not contain double slash");
    }
    let wildcards = path.matches('*').count();
    if wildcards > 1 || (wildcards == 1 && !path.ends_with("/*")) {
        return Some("wildcard can only do suffix matching");
    }
    None
}

fn validate_resource_rule(rule: &ResourcePolicyRule, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    validate_verbs(&rule.verbs, path, &mut errs);
    if rule.api_groups.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    } else if rule.api_groups.len() > 1 && has_wildcard(&rule.api_groups) {
        errs.push(FieldError::invalid(
            format!("{path}.apiGroups"),
            json!(rule.api_groups),
            "if '*' is present, must not specify other api groups",
        ));
    }
    if rule.resources.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    } else if rule.resources.len() > 1 && has_wildcard(&rule.resources) {
        errs.push(FieldError::invalid(
            format!("{path}.resources"),
            json!(rule.resources),
            "if '*' is present, must not specify other resources",
        ));
    }
    let namespaces = rule.namespaces.as_deref().unwrap_or_default();
    if namespaces.is_empty() && !rule.cluster_scope.unwrap_or(false) {
        errs.push(FieldError::required(
            format!("{path}.namespaces"),
            "resource rules that are not cluster scoped must supply at least one namespace",
        ));
    } else if has_wildcard(namespaces) {
        if namespaces.len() > 1 {
            errs.push(FieldError::invalid(
                format!("{path}.namespaces"),
                json!(namespaces),
                "if '*' is present, must not specify other namespaces",
            ));
        }
    } else {
        for (i, ns) in namespaces.iter().enumerate() {
            for msg in dns1123_label(ns) {
                errs.push(FieldError::invalid(
                    format!("{path}.namespaces[{i}]"),
                    ns.as_str(),
                    format!("each member of this list must be '*' or a DNS-1123 label; {msg}"),
                ));
            }
        }
    }
    errs
}

fn duplicate_conditions<'a>(types: impl Iterator<Item = &'a str>) -> ErrorList {
    let mut seen = std::collections::HashSet::new();
    let mut errs = Vec::new();
    for (i, t) in types.enumerate() {
        if t.is_empty() {
            errs.push(FieldError::required(
                format!("status.conditions[{i}].type"),
                "",
            ));
        } else if !seen.insert(t) {
            errs.push(FieldError::duplicate(
                format!("status.conditions[{i}].type"),
                t,
            ));
        }
    }
    errs
}

/// PriorityLevelConfiguration: upstream's defaults (30 shares, 64 queues of 50, hands of 8)
/// and validation; upstream's printer.
pub struct PriorityLevelConfigurationRules;

impl Rules<PriorityLevelConfiguration> for PriorityLevelConfigurationRules {
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn default(&self, pl: &mut PriorityLevelConfiguration) {
        let Some(spec) = pl.spec.as_mut() else {
            return;
        };
        if let Some(exempt) = spec.exempt.as_mut() {
            exempt.nominal_concurrency_shares.get_or_insert(0);
            exempt.lendable_percent.get_or_insert(0);
        }
        if let Some(limited) = spec.limited.as_mut() {
            limited.nominal_concurrency_shares.get_or_insert(30);
            limited.lendable_percent.get_or_insert(0);
            if let Some(q) = limited
                .limit_response
                .as_mut()
                .and_then(|r| r.queuing.as_mut())
            {
                for (field, default) in [
                    (&mut q.hand_size, 8),
                    (&mut q.queues, 64),
                    (&mut q.queue_length_limit, 50),
                ] {
                    if field.unwrap_or(0) == 0 {
                        *field = Some(default);
                    }
                }
            }
        }
    }

    fn validate(&self, pl: &PriorityLevelConfiguration) -> ErrorList {
        let name = pl.metadata.name.as_deref().unwrap_or("");
        let spec = pl.spec.clone().unwrap_or_default();
        let mut errs = validate_level_spec(name, &spec);
        if let Some(mandatory) = bootstrap::mandatory_priority_levels()
            .into_iter()
            .find(|b| b.name == name)
        {
            let mut have = json!(spec);
            let message = if name == EXEMPT {
                // The exempt level's `exempt` field is the administrator's to tune.
                have["exempt"] = mandatory.spec["exempt"].clone();
                format!(
                    "spec of '{name}' except the 'spec.exempt' field must equal the fixed value"
                )
            } else {
                format!("spec of '{name}' must equal the fixed value")
            };
            if semantic(&have) != semantic(&mandatory.spec) {
                errs.push(FieldError::invalid("spec", json!(spec), message));
            }
        }
        errs.extend(duplicate_conditions(
            pl.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.type_.as_deref().unwrap_or("")),
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Type",
                "`type` indicates whether this priority level is subject to limitation on request execution.  A value of `\"Exempt\"` means that requests of this priority level are not subject to a limit (and thus are never queued) and do not detract from the capacity made available to other priority levels.  A value of `\"Limited\"` means that (a) requests of this priority level _are_ subject to limits and (b) some of the server's limited capacity is made available exclusively to this priority level. Required.",
            ),
            Column::text(
                "NominalConcurrencyShares",
                "`nominalConcurrencyShares` (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level. This is the number of execution seats available at this priority level.",
            ),
            Column::text(
                "Queues",
                "`queues` is the number of queues for this priority level. The queues exist independently at each apiserver. The value must be positive.  Setting it to 1 effectively precludes shufflesharding and thus makes the distinguisher method of associated flow schemas irrelevant.  This field has a default value of 64.",
            ),
            Column::text(
                "HandSize",
                "`handSize` is a small positive number that configures the shuffle sharding of requests into queues.  When enqueuing a request at this priority level the request's flow identifier (a string pair) is hashed and the hash value is used to shuffle the list of queues and deal a hand of the size specified here.",
            ),
            Column::text(
                "QueueLengthLimit",
                "`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time; excess requests are rejected.  This value must be positive.  If not specified, it will be defaulted to 50.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, pl: &PriorityLevelConfiguration, raw: &Value) -> Vec<Value> {
        let spec = pl.spec.clone().unwrap_or_default();
        let none = || Value::from("<none>");
        let limited = spec.limited.as_ref();
        let queuing = limited
            .and_then(|l| l.limit_response.as_ref())
            .and_then(|r| r.queuing.as_ref());
        let number = |f: fn(&QueuingConfiguration) -> Option<i32>| {
            queuing.and_then(f).map_or_else(none, Value::from)
        };
        vec![
            name_cell(raw),
            spec.type_.clone().into(),
            limited
                .and_then(|l| l.nominal_concurrency_shares)
                .map_or_else(none, Value::from),
            number(|q| q.queues),
            number(|q| q.hand_size),
            number(|q| q.queue_length_limit),
            age_cell(raw),
        ]
    }
}

fn validate_level_spec(name: &str, spec: &PriorityLevelConfigurationSpec) -> ErrorList {
    let mut errs = Vec::new();
    if (name == EXEMPT) != (spec.type_ == "Exempt") {
        errs.push(FieldError::invalid(
            "spec.type",
            spec.type_.as_str(),
            "must be 'Exempt' if and only if `name` is 'exempt'",
        ));
    }
    match spec.type_.as_str() {
        "Exempt" => {
            if spec.limited.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.limited",
                    "must be nil if the type is not Limited",
                ));
            }
            if let Some(exempt) = &spec.exempt {
                errs.extend(shares_and_lending(
                    "spec.exempt",
                    exempt.nominal_concurrency_shares,
                    exempt.lendable_percent,
                ));
            }
        }
        "Limited" => {
            if spec.exempt.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.exempt",
                    "must be nil if the type is Limited",
                ));
            }
            match &spec.limited {
                None => errs.push(FieldError::required(
                    "spec.limited",
                    "must not be empty when type is Limited",
                )),
                Some(limited) => errs.extend(validate_limited(limited)),
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.type",
            other,
            &["Exempt", "Limited"],
        )),
    }
    errs
}

fn shares_and_lending(path: &str, shares: Option<i32>, lendable: Option<i32>) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(s) = shares.filter(|s| *s < 0) {
        errs.push(FieldError::invalid(
            format!("{path}.nominalConcurrencyShares"),
            s,
            "must be a non-negative integer",
        ));
    }
    if let Some(l) = lendable.filter(|l| !(0..=100).contains(l)) {
        errs.push(FieldError::invalid(
            format!("{path}.lendablePercent"),
            l,
            "must be between 0 and 100, inclusive",
        ));
    }
    errs
}

fn validate_limited(limited: &LimitedPriorityLevelConfiguration) -> ErrorList {
    let path = "spec.limited";
    let mut errs = shares_and_lending(
        path,
        limited.nominal_concurrency_shares,
        limited.lendable_percent,
    );
    if let Some(b) = limited.borrowing_limit_percent.filter(|b| *b < 0) {
        errs.push(FieldError::invalid(
            format!("{path}.borrowingLimitPercent"),
            b,
            "if specified, must be a non-negative integer",
        ));
    }
    let response = limited.limit_response.clone().unwrap_or_default();
    match response.type_.as_str() {
        "Reject" => {
            if response.queuing.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{path}.limitResponse.queuing"),
                    "must be nil if limited.limitResponse.type is not Limited",
                ));
            }
        }
        "Queue" => match &response.queuing {
            None => errs.push(FieldError::required(
                format!("{path}.limitResponse.queuing"),
                "must not be empty if limited.limitResponse.type is Limited",
            )),
            Some(q) => errs.extend(validate_queuing(
                q,
                &format!("{path}.limitResponse.queuing"),
            )),
        },
        other => errs.push(FieldError::not_supported(
            format!("{path}.limitResponse.type"),
            other,
            &["Queue", "Reject"],
        )),
    }
    errs
}

/// The hash bits shuffle sharding `hand_size` cards of `queues` takes (upstream's
/// `RequiredEntropyBits`).
pub fn required_entropy_bits(queues: i32, hand_size: i32) -> i32 {
    (f64::from(queues).log2() * f64::from(hand_size)).ceil() as i32
}

fn validate_queuing(q: &QueuingConfiguration, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    let (queues, hand_size, limit) = (
        q.queues.unwrap_or(0),
        q.hand_size.unwrap_or(0),
        q.queue_length_limit.unwrap_or(0),
    );
    if limit <= 0 {
        errs.push(FieldError::invalid(
            format!("{path}.queueLengthLimit"),
            limit,
            "must be positive",
        ));
    }
    if queues <= 0 {
        errs.push(FieldError::invalid(
            format!("{path}.queues"),
            queues,
            "must be positive",
        ));
    } else if queues > MAX_QUEUES {
        errs.push(FieldError::invalid(
            format!("{path}.queues"),
            queues,
            format!("must not be greater than {MAX_QUEUES}"),
        ));
    }
    if hand_size <= 0 {
        errs.push(FieldError::invalid(
            format!("{path}.handSize"),
            hand_size,
            "must be positive",
        ));
    } else if hand_size > queues {
        errs.push(FieldError::invalid(
            format!("{path}.handSize"),
            hand_size,
            format!("should not be greater than queues ({queues})"),
        ));
    } else if required_entropy_bits(queues, hand_size) > MAX_HASH_BITS {
        errs.push(FieldError::invalid(
            format!("{path}.handSize"),
            hand_size,
            format!(
                "required entropy bits of deckSize {queues} and handSize {hand_size} should not be greater than {MAX_HASH_BITS}"
            ),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("flowcontrol.apiserver.k8s.io", "Thing", rules)
    }

    #[test]
    fn flow_schemas_default_their_precedence_and_keep_mandatory_specs_fixed() {
        let s = strategy::<FlowSchema, _>(FlowSchemaRules);
        let mut fs = json!({"metadata": {"name": "mine"}, "spec": {
            "priorityLevelConfiguration": {"name": "global-default"},
            "rules": [{"subjects": [{"kind": "User", "user": {"name": "noisy"}}],
                       "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}]}});
        s.default(&mut fs);
        assert_eq!(fs["spec"]["matchingPrecedence"], 1000);
        let errs: Vec<_> = s.validate(&fs).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            [
                "spec.rules[0].resourceRules[0].namespaces: Required value: resource rules that are not cluster scoped must supply at least one namespace"
            ]
        );

        let mut catch_all = bootstrap::mandatory_flow_schemas()[1].object();
        assert!(s.validate(&catch_all).is_empty());
        catch_all["spec"]["matchingPrecedence"] = json!(9000);
        assert!(
            s.validate(&catch_all)[0]
                .to_string()
                .ends_with("spec of 'catch-all' must equal the fixed value")
        );
    }

    #[test]
    fn priority_levels_default_queuing_and_check_shuffle_sharding() {
        let s = strategy::<PriorityLevelConfiguration, _>(PriorityLevelConfigurationRules);
        let mut pl = json!({"metadata": {"name": "mine"}, "spec": {"type": "Limited",
            "limited": {"limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 9}}}}});
        s.default(&mut pl);
        assert_eq!(pl["spec"]["limited"]["nominalConcurrencyShares"], 30);
        assert_eq!(
            pl["spec"]["limited"]["limitResponse"]["queuing"]["queueLengthLimit"],
            50
        );
        assert_eq!(
            s.validate(&pl)[0].to_string(),
            "spec.limited.limitResponse.queuing.handSize: Invalid value: 9: required entropy bits of deckSize 128 and handSize 9 should not be greater than 60"
        );
        let exempt = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt",
            "exempt": {"nominalConcurrencyShares": 10}}});
        assert!(s.validate(&exempt).is_empty());
        let cells = s.cells(&bootstrap::mandatory_priority_levels()[0].object());
        assert_eq!(
            cells[1..6],
            [
                json!("Limited"),
                json!(5),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
