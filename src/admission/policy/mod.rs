//! The ValidatingAdmissionPolicy plugin (admissionregistration.k8s.io/v1), as upstream's: each
//! binding applies its policy to the requests both match — with the params its `paramRef`
//! names or selects (of the policy's `paramKind`), the policy's matchConditions and variables,
//! then its validations in CEL over `object`, `oldObject`, `request`, `params`,
//! `namespaceObject` and `variables`. A failed validation is refused with upstream's words
//! (`ValidatingAdmissionPolicy '<p>' with binding '<b>' denied request: …`, its reason's code)
//! under the `Deny` action and warned of under `Warn`; an expression that cannot be evaluated
//! counts as failed unless the policy's failurePolicy is Ignore. With no binding a request
//! costs one lock and an empty list.

mod compiled;

use super::matching::{exempt, namespace_labels};
use super::{Attributes, Operation, Result, Validating, expression_authorizer};
use crate::apiextensions::cel::{CelValue, map_of, value_of};
use crate::auth::authorizer::Authorizer;
use crate::registry::informer::Informer;
use crate::registry::selectors::{LabelSelector, label_selector_string};
use crate::registry::store::ListParams;
use crate::registry::store::labels_of;
use crate::registry::{RegistryError, Store, StoreFactory};
use compiled::{Binding, Policy};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The stores of param kinds by apiVersion and kind (`None`: not a built-in kind).
type ParamStores = HashMap<(String, String), Option<Arc<Store>>>;

/// The policies and bindings as compiled at given informer generations.
type Applications = Arc<Vec<(Arc<Policy>, Binding)>>;

/// Applies ValidatingAdmissionPolicies through their bindings.
pub struct ValidatingPolicies {
    policies: Arc<Informer>,
    bindings: Arc<Informer>,
    namespaces: Arc<Store>,
    storage: Arc<dyn StoreFactory>,
    authorizer: Arc<Authorizer>,
    compiled: Mutex<((u64, u64), Applications)>,
    param_stores: Mutex<ParamStores>,
}

/// A failed validation (or an evaluation error failing closed): its message and reason.
struct Failure {
    message: String,
    reason: Option<String>,
    /// The failed validation's index; `None` for a failure of the policy as a whole.
    index: Option<usize>,
}

/// One evaluation of a policy: its failures, and its auditAnnotations' values by key.
#[derive(Default)]
struct Evaluated {
    failures: Vec<Failure>,
    annotations: Vec<(String, String)>,
}

/// The audit annotation upstream records the failures of `Audit` bindings under.
const VALIDATION_FAILURE: &str = "validation.policy.admission.k8s.io/validation_failure";

impl ValidatingPolicies {
    /// Follows policies and bindings through their informers; reads namespaces and params
    /// (built-in kinds) from `storage`; expressions' `authorizer` asks `authorizer`.
    pub fn new(
        policies: Arc<Informer>,
        bindings: Arc<Informer>,
        namespaces: Arc<Store>,
        storage: Arc<dyn StoreFactory>,
        authorizer: Arc<Authorizer>,
    ) -> Self {
        Self {
            policies,
            bindings,
            namespaces,
            storage,
            authorizer,
            compiled: Mutex::new(((0, 0), Arc::default())),
            param_stores: Mutex::default(),
        }
    }

    /// Every binding with its policy, recompiled when either changed.
    fn applications(&self) -> Applications {
        let generation = (self.policies.generation(), self.bindings.generation());
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if compiled.0 != generation {
            let policies: HashMap<String, Arc<Policy>> = self
                .policies
                .objects()
                .values()
                .filter_map(|p| {
                    serde_json::from_value::<ValidatingAdmissionPolicy>((**p).clone()).ok()
                })
                .filter_map(Policy::compile)
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect();
            let applications = self
                .bindings
                .objects()
                .values()
                .filter_map(|b| {
                    serde_json::from_value::<ValidatingAdmissionPolicyBinding>((**b).clone()).ok()
                })
                .filter_map(Binding::compile)
                .filter_map(|b| Some((policies.get(&b.policy)?.clone(), b)))
                .collect();
            *compiled = (generation, Arc::new(applications));
        }
        compiled.1.clone()
    }

    /// The store of a built-in `paramKind`.
    fn param_store(&self, api_version: &str, kind: &str) -> Option<Arc<Store>> {
        let key = (api_version.to_string(), kind.to_string());
        let mut stores = self.param_stores.lock().unwrap_or_else(|e| e.into_inner());
        stores
            .entry(key)
            .or_insert_with(|| {
                let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
                let info = crate::registry::kinds::builtin()
                    .into_iter()
                    .map(|s| s.info().clone())
                    .find(|i| i.group == group && i.version == version && i.kind == kind)?;
                Some(self.storage.builtin_store(&info.group, &info.resource))
            })
            .clone()
    }

    /// The params a binding gives for the request: `[None]` without a paramKind; `Err` is a
    /// decision (a `Deny` parameterNotFoundAction).
    async fn params(
        &self,
        policy: &Policy,
        binding: &Binding,
        a: &Attributes<'_>,
    ) -> std::result::Result<Vec<Option<Value>>, String> {
        let Some((api_version, kind)) = &policy.param_kind else {
            return Ok(vec![None]);
        };
        let Some(param_ref) = &binding.param_ref else {
            return Err(format!(
                "failed to configure binding: no paramRef is given for policy {:?}, which has a paramKind",
                policy.name
            ));
        };
        let store = self.param_store(api_version, kind).ok_or_else(|| {
            format!(
                "failed to configure binding: paramKind {api_version}, Kind={kind} is not served"
            )
        })?;
        let namespace = match (store.info().namespaced, param_ref.namespace.as_deref()) {
            (false, _) => None,
            (true, Some(ns)) if !ns.is_empty() => Some(ns.to_string()),
            (true, _) => a.namespace.map(str::to_string),
        };
        let found: Vec<Option<Value>> = match (&param_ref.name, &param_ref.selector) {
            (Some(name), _) if !name.is_empty() => {
                match store.get(namespace.as_deref(), name).await {
                    Ok(p) => vec![Some(p)],
                    Err(RegistryError::NotFound { .. }) => Vec::new(),
                    Err(e) => return Err(e.to_string()),
                }
            }
            (_, selector) => {
                let labels = selector
                    .as_ref()
                    .map(label_selector_string)
                    .unwrap_or_default();
                let params = ListParams {
                    labels: LabelSelector::parse(&labels)?,
                    ..ListParams::default()
                };
                store
                    .list(namespace.as_deref(), &params)
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .into_iter()
                    .map(Some)
                    .collect()
            }
        };
        if found.is_empty() && param_ref.parameter_not_found_action.as_deref() == Some("Deny") {
            return Err(
                "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
            );
        }
        Ok(found)
    }

    /// Evaluates `policy` for one param: the failed validations and the audit annotations.
    fn evaluate(policy: &Policy, base: &[(&str, CelValue)]) -> Evaluated {
        let failed = |message: String| Failure {
            message,
            reason: None,
            index: None,
        };
        // An expression that cannot be compiled or evaluated fails closed unless Ignore.
        let error = |e: String| {
            if policy.fail_closed {
                vec![failed(e)]
            } else {
                Vec::new()
            }
        };
        let only = |failures: Vec<Failure>| Evaluated {
            failures,
            annotations: Vec::new(),
        };
        for (_, condition) in &policy.match_conditions {
            let result = condition
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|c| c.evaluate(base));
            match result {
                Ok(CelValue::Bool(true)) => {}
                Ok(CelValue::Bool(false)) => return Evaluated::default(),
                Ok(_) => return only(error("match condition did not evaluate to a bool".into())),
                Err(e) => return only(error(e)),
            }
        }
        let mut variables: Vec<(String, CelValue)> = Vec::new();
        for (name, expression) in &policy.variables {
            let mut bound = base.to_vec();
            bound.push(("variables", map_of(variables.clone())));
            let value = expression
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|e| e.evaluate(&bound))
                .unwrap_or(CelValue::Null);
            variables.push((name.clone(), value));
        }
        let mut bound = base.to_vec();
        bound.push(("variables", map_of(variables)));
        let mut decisions = Vec::new();
        for (index, v) in policy.validations.iter().enumerate() {
            let result = v
                .expression
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|e| e.evaluate(&bound));
            match result {
                Ok(CelValue::Bool(true)) => {}
                Ok(CelValue::Bool(false)) => {
                    let from_expression = v.message_expression.as_ref().and_then(|m| {
                        match m.as_ref().ok()?.evaluate(&bound).ok()? {
                            CelValue::String(s) if !s.trim().is_empty() => {
                                Some(s.trim().to_string())
                            }
                            _ => None,
                        }
                    });
                    let message = from_expression
                        .or_else(|| v.message.clone())
                        .unwrap_or_else(|| format!("failed expression: {}", v.source));
                    decisions.push(Failure {
                        message,
                        reason: v.reason.clone(),
                        index: Some(index),
                    });
                }
                Ok(_) => decisions.extend(error(format!(
                    "expression '{}' resulted in non-boolean value",
                    v.source
                ))),
                Err(e) => decisions.extend(error(e)),
            }
        }
        // auditAnnotations: a string value is recorded under the policy's name; null is none.
        let annotations = policy
            .audit_annotations
            .iter()
            .filter_map(|(key, expression)| {
                match expression.as_ref().ok()?.evaluate(&bound).ok()? {
                    CelValue::String(v) if !v.is_empty() => {
                        Some((format!("{}/{key}", policy.name), v.to_string()))
                    }
                    _ => None,
                }
            })
            .collect();
        Evaluated {
            failures: decisions,
            annotations,
        }
    }
}

impl ValidatingPolicies {
    /// What every expression of a policy sees of request `a` with `object`.
    fn variables(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        request: &Value,
        namespace: Option<&Value>,
    ) -> Vec<(&'static str, CelValue)> {
        let mut base = vec![
            ("object", value_of(object)),
            ("oldObject", value_of(a.old_object)),
            ("request", value_of(Some(request))),
            ("namespaceObject", value_of(namespace)),
        ];
        base.extend(expression_authorizer::variables(&self.authorizer, a));
        base
    }
}

/// The HTTP code of a validation's reason, as upstream's `reasonToCode`.
fn code_of(reason: &str) -> u16 {
    match reason {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

#[async_trait::async_trait]
impl Validating for ValidatingPolicies {
    fn handles(&self, _: Operation) -> bool {
        true
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        if exempt(a) {
            return Ok(());
        }
        // As upstream, at most 10 s for the first lists.
        let wait = Duration::from_secs(10);
        if !self.policies.wait_synced(wait).await || !self.bindings.wait_synced(wait).await {
            return Err(a.forbidden("not yet ready to handle request".into()));
        }
        let applications = self.applications();
        if applications.is_empty() {
            return Ok(());
        }
        // Resource rules first: most requests match no policy and read nothing more.
        let equivalents = self.storage.equivalents();
        let candidates: Vec<_> = applications
            .iter()
            .filter_map(|(policy, binding)| {
                let via = policy.constraints.matched(a, &equivalents)?;
                let bound = binding
                    .match_resources
                    .as_ref()
                    .is_none_or(|r| r.matched(a, &equivalents).is_some());
                bound.then_some((policy, binding, via))
            })
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let namespace_object = match a.namespace {
            Some(ns) => self.namespaces.get(None, ns).await.ok(),
            None => None,
        };
        let labels = match (a.namespace, &namespace_object) {
            (Some(_), Some(ns)) => Some(labels_of(ns)),
            (Some(_), None) => Some(Default::default()),
            (None, _) => namespace_labels(&self.namespaces, a, object).await?,
        };
        // The variables every expression sees, converted to CEL once per request (and once
        // more for a policy that matched an equivalent resource, which sees it as that's).
        let mut shared: Option<Vec<(&str, CelValue)>> = None;
        let mut audited: Vec<Value> = Vec::new();
        for (policy, binding, via) in candidates {
            let matched = policy
                .constraints
                .matches_selectors(a, object, labels.as_ref())
                .and_then(|m| match (&binding.match_resources, m) {
                    (Some(r), true) => r.matches_selectors(a, object, labels.as_ref()),
                    (_, m) => Ok(m),
                })
                .map_err(RegistryError::Internal)?;
            if !matched {
                continue;
            }
            let converted;
            let base = match &via {
                None => &*shared.get_or_insert_with(|| {
                    let request = a.request("", object);
                    self.variables(a, object, &request, namespace_object.as_ref())
                }),
                Some(e) => {
                    converted = e.seen(a, object, "", |seen, object, request| {
                        self.variables(seen, object, &request, namespace_object.as_ref())
                    })?;
                    &converted
                }
            };
            let mut decisions = Vec::new();
            match self.params(policy, binding, a).await {
                Ok(params) => {
                    for param in params {
                        let mut bound = base.clone();
                        bound.push(("params", value_of(param.as_ref())));
                        let evaluated = Self::evaluate(policy, &bound);
                        decisions.extend(evaluated.failures);
                        for (key, value) in evaluated.annotations {
                            a.annotations.add(key, value);
                        }
                    }
                }
                Err(message) => decisions.push(Failure {
                    message,
                    reason: None,
                    index: None,
                }),
            }
            for Failure {
                message,
                reason,
                index,
            } in decisions
            {
                if binding.audit {
                    let mut failure = serde_json::json!({"message": message,
                        "policy": policy.name, "binding": binding.name,
                        "validationActions": binding.actions()});
                    if let Some(i) = index {
                        failure["expressionIndex"] = i.into();
                    }
                    audited.push(failure);
                }
                if binding.warn {
                    a.warnings.add(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                        policy.name, binding.name
                    ));
                }
                if binding.deny {
                    let denied = format!(
                        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
                        policy.name, binding.name
                    );
                    let reason = reason.unwrap_or_else(|| "Invalid".into());
                    let forbidden = a.forbidden(denied.clone());
                    record_audited(a, &audited);
                    return Err(RegistryError::Status {
                        code: code_of(&reason),
                        reason,
                        message: forbidden.to_string(),
                        details: Some(Box::new(StatusDetails {
                            name: (!a.name.is_empty()).then(|| a.name.to_string()),
                            group: (!a.resource.group.is_empty())
                                .then(|| a.resource.group.to_string()),
                            kind: Some(a.resource.resource.to_string()),
                            causes: Some(vec![StatusCause {
                                message: Some(denied),
                                ..Default::default()
                            }]),
                            ..Default::default()
                        })),
                    });
                }
            }
        }
        record_audited(a, &audited);
        Ok(())
    }
}

/// Records the failures of `Audit` bindings in the request's audit event, as upstream: one
/// annotation holding them all as a JSON list.
fn record_audited(a: &Attributes<'_>, audited: &[Value]) {
    if !audited.is_empty() {
        a.annotations.add(
            VALIDATION_FAILURE,
            Value::Array(audited.to_vec()).to_string(),
        );
    }
}
