//! Admission webhooks (admissionregistration.k8s.io/v1), as upstream's MutatingAdmissionWebhook
//! and ValidatingAdmissionWebhook plugins: the configurations are followed by an informer; a
//! request is sent, as an AdmissionReview, to every webhook whose rules, namespaceSelector,
//! objectSelector and matchConditions match it — mutating ones in turn, each seeing the patches
//! of those before, validating ones all at once — and refused with upstream's words when one
//! denies it, or when one cannot be called and its failurePolicy is Fail. With no configuration
//! a request costs one lock and an empty list.

mod hook;
mod matching;
mod review;

use super::matching::{exempt, namespace_labels};
use super::{Attributes, Mutating, Operation, Result, Validating, expression_authorizer};
use crate::admission::equivalent::Equivalent;
use crate::apiextensions::cel::{CelValue, value_of};
use crate::auth::Authorizer;
use crate::registry::equivalence::EquivalentResources;
use crate::registry::informer::Informer;
use crate::registry::store::new_uid;
use crate::registry::{RegistryError, Store};
use crate::webhook::ServiceResolver;
use bytes::Bytes;
use hook::{Hook, Hooks};
use matching::{conditions_hold, rules_match};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What calling webhooks needs besides their configurations: namespaces for selectors,
/// Services with their endpoints for webhooks referenced by `service`, and the authorizer
/// matchConditions may ask.
pub struct WebhookContext {
    namespaces: Arc<Store>,
    resolver: ServiceResolver,
    authorizer: Arc<Authorizer>,
    equivalents: Arc<EquivalentResources>,
}

impl WebhookContext {
    /// Reads namespaces, Services and EndpointSlices from these stores; matches equivalent
    /// resources through `equivalents`.
    pub fn new(
        namespaces: Arc<Store>,
        services: Arc<Store>,
        endpoint_slices: Arc<Store>,
        authorizer: Arc<Authorizer>,
        equivalents: Arc<EquivalentResources>,
    ) -> Self {
        Self {
            namespaces,
            resolver: ServiceResolver {
                services,
                endpoint_slices,
            },
            authorizer,
            equivalents,
        }
    }
}

/// A webhook a request is sent to, and the equivalent resource its rules matched, if not the
/// requested one.
struct Matched {
    hook: Arc<Hook>,
    via: Option<Equivalent>,
}

/// Why a webhook did not admit a request.
enum CallError {
    /// It could not be called or answered nonsense; its failurePolicy decides.
    Calling(String),
    /// It refused, or the request cannot be sent to it; final.
    Refused(RegistryError),
}

/// One kind of webhook configurations and the context to call them.
struct Dispatcher {
    hooks: Hooks,
    context: Arc<WebhookContext>,
    mutating: bool,
}

impl Dispatcher {
    /// The webhooks `a` (with `object`) is sent to, in order.
    async fn relevant(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result<Vec<Matched>> {
        if exempt(a) {
            return Ok(Vec::new());
        }
        if !self.hooks.ready().await {
            return Err(a.forbidden("not yet ready to handle request".into()));
        }
        let all = self.hooks.all();
        let mut ns_labels: Option<Option<BTreeMap<String, String>>> = None;
        let mut relevant = Vec::new();
        let mut variables: Option<Vec<(&str, CelValue)>> = None;
        for hook in all.iter() {
            let via = if rules_match(hook, a) {
                None
            } else if hook.equivalent {
                let found =
                    Equivalent::find(&self.context.equivalents, a, |a| rules_match(hook, a));
                match found {
                    Some(e) => Some(e),
                    None => continue,
                }
            } else {
                continue;
            };
            if ns_labels.is_none() {
                ns_labels = Some(namespace_labels(&self.context.namespaces, a, object).await?);
            }
            let labels = ns_labels.as_ref().and_then(Option::as_ref);
            if !hook
                .selectors
                .matches(object, a.old_object, labels)
                .map_err(RegistryError::Internal)?
            {
                continue;
            }
            let held = if hook.match_conditions.as_ref().is_ok_and(Vec::is_empty) {
                Ok(true)
            } else if let Some(e) = &via {
                // The conditions see the request as made to the resource matched.
                e.seen(a, object, "", |seen, object, request| {
                    conditions_hold(hook, &self.variables(seen, object, &request))
                })?
            } else {
                let variables = variables
                    .get_or_insert_with(|| self.variables(a, object, &a.request("", object)));
                conditions_hold(hook, variables)
            };
            match held {
                Ok(true) => relevant.push(Matched {
                    hook: hook.clone(),
                    via,
                }),
                Ok(false) => {}
                Err(_) if hook.ignore_failures => {}
                Err(e) => {
                    return Err(a.forbidden(format!("failed calling webhook {:?}: {e}", hook.name)));
                }
            }
        }
        Ok(relevant)
    }

    /// What matchConditions see of request `a` with `object`.
    fn variables(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
        request: &Value,
    ) -> Vec<(&'static str, CelValue)> {
        let mut v = vec![
            ("object", value_of(object)),
            ("oldObject", value_of(a.old_object)),
            ("request", value_of(Some(request))),
        ];
        v.extend(expression_authorizer::variables(
            &self.context.authorizer,
            a,
        ));
        v
    }

    /// Sends `a` with `object` to the matched webhook and reads its verdict, its latency
    /// recorded (`apiserver_admission_webhook_admission_duration_seconds`).
    async fn call(
        &self,
        matched: &Matched,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> std::result::Result<review::Verdict, CallError> {
        let started = std::time::Instant::now();
        let verdict = self.call_once(matched, a, object).await;
        crate::metrics::metrics()
            .admission_webhook
            .get_or_create(&crate::metrics::AdmissionLabels {
                name: matched.hook.name.clone(),
                operation: a.operation.as_str().into(),
                rejected: verdict.is_err().to_string(),
                r#type: if self.mutating { "admit" } else { "validating" }.into(),
            })
            .observe(started.elapsed().as_secs_f64());
        verdict
    }

    /// Sends `a` with `object` to the matched webhook (converted to the resource its rules
    /// matched) and reads its verdict; warnings go to the request.
    async fn call_once(
        &self,
        matched: &Matched,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> std::result::Result<review::Verdict, CallError> {
        let hook = &*matched.hook;
        if a.dry_run && !matches!(hook.side_effects.as_str(), "None" | "NoneOnDryRun") {
            return Err(CallError::Refused(RegistryError::BadRequest(format!(
                "admission webhook {:?} does not support dry run",
                hook.name
            ))));
        }
        let Some(version) = hook.review_version else {
            return Err(CallError::Calling(
                "webhook does not accept known AdmissionReview versions".into(),
            ));
        };
        let uid = new_uid();
        let request = match &matched.via {
            None => a.request(&uid, object),
            Some(e) => e
                .seen(a, object, &uid, |_, _, request| request)
                .map_err(CallError::Refused)?,
        };
        let body = review::review(version, request);
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let answer = hook
            .endpoint
            .post(&self.context.resolver, body)
            .await
            .map_err(|e| match e {
                crate::webhook::CallError::Post(e) => {
                    CallError::Calling(format!("failed to call webhook: {e}"))
                }
                e => CallError::Calling(e.to_string()),
            })?;
        let verdict =
            review::verify(version, &uid, self.mutating, &answer).map_err(CallError::Calling)?;
        for w in &verdict.warnings {
            a.warnings.add(w.clone());
        }
        // As upstream, each of the webhook's annotations under its name.
        for (key, value) in &verdict.audit_annotations {
            a.annotations
                .add(format!("{}/{key}", hook.name), value.clone());
        }
        if !verdict.allowed {
            return Err(CallError::Refused(review::rejection(
                &hook.name,
                verdict.status.as_ref(),
            )));
        }
        Ok(verdict)
    }
}

/// A failed call: nothing when the webhook's failurePolicy is Ignore, else upstream's 500.
fn failed(hook: &Hook, reason: String) -> Result {
    let error = format!("failed calling webhook {:?}: {reason}", hook.name);
    if hook.ignore_failures {
        tracing::warn!(webhook = %hook.name, %error, "failed calling webhook, failing open");
        Ok(())
    } else {
        tracing::warn!(webhook = %hook.name, %error, "failed calling webhook, failing closed");
        Err(RegistryError::Internal(error))
    }
}

/// The ValidatingAdmissionWebhook plugin.
pub struct ValidatingWebhooks(Dispatcher);

impl ValidatingWebhooks {
    /// Calls the webhooks of the ValidatingWebhookConfigurations `configurations` follows.
    pub fn new(configurations: Arc<Informer>, context: Arc<WebhookContext>) -> Self {
        Self(Dispatcher {
            hooks: Hooks::new(configurations),
            context,
            mutating: false,
        })
    }
}

#[async_trait::async_trait]
impl Validating for ValidatingWebhooks {
    fn handles(&self, _: Operation) -> bool {
        true
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let d = &self.0;
        let relevant = d.relevant(a, object).await?;
        if relevant.is_empty() {
            return Ok(());
        }
        // All at once, as upstream; the first refusal in the webhooks' order is the answer.
        let outcomes =
            futures::future::join_all(relevant.iter().map(|m| d.call(m, a, object))).await;
        for (matched, outcome) in relevant.iter().zip(outcomes) {
            match outcome {
                Ok(_) => {}
                Err(CallError::Calling(reason)) => failed(&matched.hook, reason)?,
                Err(CallError::Refused(e)) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The MutatingAdmissionWebhook plugin.
pub struct MutatingWebhooks(Dispatcher);

impl MutatingWebhooks {
    /// Calls the webhooks of the MutatingWebhookConfigurations `configurations` follows.
    pub fn new(configurations: Arc<Informer>, context: Arc<WebhookContext>) -> Self {
        Self(Dispatcher {
            hooks: Hooks::new(configurations),
            context,
            mutating: true,
        })
    }

    /// Calls the matched webhook and applies its patch (to the object as the resource its
    /// rules matched serves it); whether the object changed.
    async fn mutate(
        &self,
        matched: &Matched,
        a: &Attributes<'_>,
        object: &mut Option<&mut Value>,
    ) -> Result<bool> {
        let hook = &*matched.hook;
        let verdict = match self.0.call(matched, a, object.as_deref()).await {
            Ok(v) => v,
            Err(CallError::Calling(reason)) => return failed(hook, reason).map(|()| false),
            Err(CallError::Refused(e)) => return Err(e),
        };
        let Some(patch) = verdict.patch.filter(|p| !p.0.is_empty()) else {
            return Ok(false);
        };
        let Some(obj) = object.as_deref_mut() else {
            return Err(RegistryError::Internal(format!(
                "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
                hook.name
            )));
        };
        let mut patched = match &matched.via {
            Some(e) => e.to_matched(obj)?,
            None => obj.clone(),
        };
        json_patch::patch(&mut patched, &patch)
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        if let Some(e) = &matched.via {
            patched = e.back(&patched)?;
        }
        let changed = patched != *obj;
        *obj = patched;
        Ok(changed)
    }
}

#[async_trait::async_trait]
impl Mutating for MutatingWebhooks {
    fn handles(&self, _: Operation) -> bool {
        true
    }

    async fn admit(&self, a: &Attributes<'_>, mut object: Option<&mut Value>) -> Result {
        let relevant = self.0.relevant(a, object.as_deref()).await?;
        // Webhooks with reinvocationPolicy IfNeeded are called once more when a webhook after
        // them changed the object, as upstream's reinvocation round.
        let mut reinvoke: Vec<Arc<Hook>> = Vec::new();
        let mut invoked: Vec<Arc<Hook>> = Vec::new();
        for matched in &relevant {
            if self.mutate(matched, a, &mut object).await? {
                reinvoke.append(&mut invoked);
            }
            if matched.hook.reinvoke {
                invoked.push(matched.hook.clone());
            }
        }
        if reinvoke.is_empty() {
            return Ok(());
        }
        let again = self.0.relevant(a, object.as_deref()).await?;
        for matched in again
            .iter()
            .filter(|m| reinvoke.iter().any(|r| r.id == m.hook.id))
        {
            self.mutate(matched, a, &mut object).await?;
        }
        Ok(())
    }
}
