//! The ValidatingAdmissionPolicy status controller (kube-controller-manager's
//! `validatingadmissionpolicy-status-controller`, run in-process as the other built-in
//! controllers are): each policy whose generation its status has not observed is type-checked
//! against the schemas of the kinds it matches, and `status.typeChecking` records the warnings
//! with the observed generation, as upstream's `TypeChecker` words them.

use crate::apiextensions::cel::{KindSchema, PolicyTypes};
use crate::endpoints::openapi::OpenApi;
use crate::registry::equivalence::EquivalentResources;
use crate::registry::informer::Informer;
use crate::registry::managed_fields::Operation;
use crate::registry::store::{UpdateTarget, WriteOptions};
use crate::registry::{RegistryError, Store};
use k8s_openapi::api::admissionregistration::v1::{
    ExpressionWarning, NamedRuleWithOperations, ValidatingAdmissionPolicy,
};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The field manager of the status, upstream's controller name.
pub const FIELD_MANAGER: &str = "validatingadmissionpolicy-status-controller";

/// At most this many kinds are checked per policy, as upstream's `maxTypesToCheck`.
const MAX_KINDS: usize = 10;

/// How often the informer is checked for a change a notification may have raced past.
const RECHECK: Duration = Duration::from_secs(1);

/// A group, version and kind.
type Gvk = (String, String, String);

/// Type-checks the policies of `policies` as they change, until the server stops; kinds are
/// resolved through `equivalents` and typed by the schemas `openapi` publishes.
pub async fn run(
    policies: Arc<Store>,
    openapi: Arc<OpenApi>,
    equivalents: Arc<EquivalentResources>,
) {
    let informer = Informer::start(policies.clone());
    let mut seen = 0;
    loop {
        let now = informer.generation();
        if now != seen {
            seen = now;
            // One checker per pass: policies matching the same kinds share their schemas, and
            // every policy shares the Namespace one, each read from a whole OpenAPI document.
            let mut checker = TypeChecker::new(&openapi, &equivalents);
            for object in informer.objects().values() {
                let Ok(policy) =
                    serde_json::from_value::<ValidatingAdmissionPolicy>((**object).clone())
                else {
                    continue;
                };
                let generation = policy.metadata.generation.unwrap_or(0);
                let observed = policy
                    .status
                    .as_ref()
                    .and_then(|s| s.observed_generation)
                    .unwrap_or(0);
                if generation <= observed {
                    continue;
                }
                let warnings = checker.check(&policy);
                let name = policy.metadata.name.unwrap_or_default();
                if let Err(e) = write_status(&policies, &name, generation, &warnings).await {
                    tracing::warn!(policy = %name, error = %e, "writing the type-checking status failed");
                }
            }
        }
        tokio::select! {
            _ = informer.changed() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// Records `warnings` as the type checking of `generation` of the policy `name`; a policy that
/// changed or went away meanwhile is left to its next event.
async fn write_status(
    policies: &Store,
    name: &str,
    generation: i64,
    warnings: &[ExpressionWarning],
) -> Result<(), RegistryError> {
    let opts = WriteOptions {
        writer: Some(policies.writer(FIELD_MANAGER.into(), Operation::Update, "status")),
        ..Default::default()
    };
    let type_checking = if warnings.is_empty() {
        json!({})
    } else {
        json!({"expressionWarnings": warnings})
    };
    let result = policies
        .update_with(None, name, UpdateTarget::STATUS, opts, |current| {
            let mut next = current.clone();
            if next["metadata"]["generation"].as_i64() != Some(generation) {
                return Err(StatusError::Changed);
            }
            if !next["status"].is_object() {
                next["status"] = json!({});
            }
            next["status"]["observedGeneration"] = json!(generation);
            next["status"]["typeChecking"] = type_checking.clone();
            Ok(next)
        })
        .await;
    match result {
        Ok(_)
        | Err(StatusError::Changed | StatusError::Registry(RegistryError::NotFound { .. })) => {
            Ok(())
        }
        Err(StatusError::Registry(e)) => Err(e),
    }
}

/// Why a status was not written.
#[derive(Debug, thiserror::Error)]
enum StatusError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The policy changed since it was checked; its own event checks it again.
    #[error("the policy changed while it was checked")]
    Changed,
}

/// Upstream's `TypeChecker`: the kinds a policy matches, their schemas, and each validation's
/// expression and messageExpression checked against each kind.
struct TypeChecker<'a> {
    openapi: &'a OpenApi,
    equivalents: &'a EquivalentResources,
    schemas: HashMap<Gvk, Option<KindSchema>>,
}

impl<'a> TypeChecker<'a> {
    fn new(openapi: &'a OpenApi, equivalents: &'a EquivalentResources) -> Self {
        Self {
            openapi,
            equivalents,
            schemas: HashMap::new(),
        }
    }

    /// The warnings of `policy`, one per expression with issues, in upstream's order and words.
    fn check(&mut self, policy: &ValidatingAdmissionPolicy) -> Vec<ExpressionWarning> {
        let Some(spec) = &policy.spec else {
            return Vec::new();
        };
        let rules = spec
            .match_constraints
            .as_ref()
            .and_then(|m| m.resource_rules.as_deref())
            .unwrap_or_default();
        let kinds = self.kinds_to_check(rules);
        for gvk in kinds.iter().cloned().chain(param_kind(policy)) {
            self.schema(gvk);
        }
        self.schema(namespace_kind());
        let params = param_kind(policy).and_then(|k| self.schemas[&k].as_ref());
        let namespace = self.schemas[&namespace_kind()].as_ref();
        let typed: Vec<(&Gvk, PolicyTypes)> = kinds
            .iter()
            .filter_map(|gvk| {
                let object = self.schemas[gvk].as_ref()?;
                Some((
                    gvk,
                    PolicyTypes {
                        object,
                        params,
                        namespace,
                    },
                ))
            })
            .collect();
        let variables: Vec<(String, String)> = spec
            .variables
            .iter()
            .flatten()
            .map(|v| (v.name.clone(), v.expression.clone()))
            .collect();
        let check = |expression: &str| {
            let issues: Vec<String> = typed
                .iter()
                .filter_map(|((group, version, kind), types)| {
                    let issues = types.check(expression, &variables).err()?;
                    Some(format!("{group}/{version}, Kind={kind}: {issues}\n"))
                })
                .collect();
            (!issues.is_empty()).then(|| issues.join("\n"))
        };
        let mut warnings = Vec::new();
        for (i, validation) in spec.validations.iter().flatten().enumerate() {
            let expressions = [
                ("expression", Some(validation.expression.as_str())),
                (
                    "messageExpression",
                    validation.message_expression.as_deref(),
                ),
            ];
            for (field, expression) in expressions {
                let Some(expression) = expression.filter(|e| !e.is_empty()) else {
                    continue;
                };
                if let Some(warning) = check(expression) {
                    warnings.push(ExpressionWarning {
                        field_ref: format!("spec.validations[{i}].{field}"),
                        warning,
                    });
                }
            }
        }
        warnings
    }

    /// The kinds of the resource rules without wildcards, at most [`MAX_KINDS`], sorted by
    /// group, version and kind (upstream's `typesToCheck`).
    fn kinds_to_check(&self, rules: &[NamedRuleWithOperations]) -> Vec<Gvk> {
        let mut kinds = BTreeSet::new();
        let mut count = 0;
        for rule in rules {
            let listed = |values: &Option<Vec<String>>| values.clone().unwrap_or_default();
            let mut groups = listed(&rule.api_groups);
            let mut versions = listed(&rule.api_versions);
            if groups.iter().chain(&versions).any(|v| v.contains('*')) {
                continue;
            }
            let mut resources: Vec<String> = listed(&rule.resources)
                .into_iter()
                .filter(|r| !r.contains(['*', '/']))
                .collect();
            groups.sort();
            versions.sort();
            resources.sort();
            for group in &groups {
                for version in &versions {
                    for resource in &resources {
                        let Some(kind) = self.equivalents.kind_of(group, version, resource) else {
                            continue;
                        };
                        kinds.insert((group.clone(), version.clone(), kind));
                        count += 1;
                        if count == MAX_KINDS {
                            return kinds.into_iter().collect();
                        }
                    }
                }
            }
        }
        kinds.into_iter().collect()
    }

    /// Resolves and keeps the schema of `gvk` (None when nothing publishes it).
    fn schema(&mut self, gvk: Gvk) {
        let openapi = self.openapi;
        self.schemas.entry(gvk).or_insert_with_key(|(g, v, k)| {
            let (schema, components) = openapi.kind_schema(g, v, k)?;
            Some(KindSchema::from_openapi(&schema, &components))
        });
    }
}

/// The kind of `params`: the policy's paramKind, when its apiVersion parses.
fn param_kind(policy: &ValidatingAdmissionPolicy) -> Option<Gvk> {
    let param_kind = policy.spec.as_ref()?.param_kind.as_ref()?;
    let api_version = param_kind.api_version.as_deref()?;
    let kind = param_kind.kind.clone()?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    Some((group.to_string(), version.to_string(), kind))
}

fn namespace_kind() -> Gvk {
    (String::new(), "v1".into(), "Namespace".into())
}
