//! The chain of admission plugins: mutating ones in order, then (after the kind's validation)
//! validating ones in order, each asked only for the operations it handles.

use super::{Attributes, Operation, Result};
use crate::metrics::{AdmissionLabels, StepLabels, metrics};
use crate::registry::informer::Informer;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// A plugin that may change the object (upstream's `MutationInterface`).
#[async_trait::async_trait]
pub trait Mutating: Send + Sync {
    /// Whether the plugin acts on `operation` (upstream's `Handles`).
    fn handles(&self, operation: Operation) -> bool;
    /// Admits the request, changing `object` (absent for deletes) where it must.
    async fn admit(&self, attributes: &Attributes<'_>, object: Option<&mut Value>) -> Result;
}

/// A plugin that only judges the object (upstream's `ValidationInterface`).
#[async_trait::async_trait]
pub trait Validating: Send + Sync {
    /// Whether the plugin acts on `operation` (upstream's `Handles`).
    fn handles(&self, operation: Operation) -> bool;
    /// Validates the request; `object` is absent for deletes.
    async fn validate(&self, attributes: &Attributes<'_>, object: Option<&Value>) -> Result;
}

/// The plugins a server runs, in upstream's order, each with the name its latency is
/// recorded under (`apiserver_admission_controller_admission_duration_seconds`).
#[derive(Clone, Default)]
pub struct Chain {
    mutating: Vec<(&'static str, Arc<dyn Mutating>)>,
    validating: Vec<(&'static str, Arc<dyn Validating>)>,
    informers: Vec<Arc<Informer>>,
}

impl Chain {
    /// The same chain, also reporting `informers` (those its plugins read from) in
    /// [`Chain::informers`].
    pub fn with_informers(mut self, informers: impl IntoIterator<Item = Arc<Informer>>) -> Self {
        self.informers.extend(informers);
        self
    }

    /// The informers the plugins read from, whose first list readiness waits for.
    pub fn informers(&self) -> Vec<Arc<Informer>> {
        self.informers.clone()
    }

    /// The same chain with `plugin` appended to its mutating plugins.
    pub fn with_mutating(mut self, plugin: Arc<dyn Mutating>) -> Self {
        self.mutating.push(("", plugin));
        self
    }

    /// The same chain with `plugin` appended to its validating plugins.
    pub fn with_validating(mut self, plugin: Arc<dyn Validating>) -> Self {
        self.validating.push(("", plugin));
        self
    }

    /// The same chain with the plugins added since the last naming named `name`.
    pub fn named(mut self, name: &'static str) -> Self {
        for (n, _) in &mut self.mutating {
            if n.is_empty() {
                *n = name;
            }
        }
        for (n, _) in &mut self.validating {
            if n.is_empty() {
                *n = name;
            }
        }
        self
    }

    /// Runs the mutating plugins that handle the operation; the first refusal ends the chain.
    pub async fn admit(
        &self,
        attributes: &Attributes<'_>,
        mut object: Option<&mut Value>,
    ) -> Result {
        let step = Instant::now();
        for (name, plugin) in &self.mutating {
            if plugin.handles(attributes.operation) {
                let started = Instant::now();
                let result = plugin.admit(attributes, object.as_deref_mut()).await;
                observe(name, attributes.operation, "admit", started, &result);
                if result.is_err() {
                    observe_step(attributes.operation, "admit", step, &result);
                    return result;
                }
            }
        }
        observe_step(attributes.operation, "admit", step, &Ok(()));
        Ok(())
    }

    /// Runs the validating plugins that handle the operation; the first refusal ends the chain.
    pub async fn validate(&self, attributes: &Attributes<'_>, object: Option<&Value>) -> Result {
        let step = Instant::now();
        for (name, plugin) in &self.validating {
            if plugin.handles(attributes.operation) {
                let started = Instant::now();
                let result = plugin.validate(attributes, object).await;
                observe(name, attributes.operation, "validate", started, &result);
                if result.is_err() {
                    observe_step(attributes.operation, "validate", step, &result);
                    return result;
                }
            }
        }
        observe_step(attributes.operation, "validate", step, &Ok(()));
        Ok(())
    }
}

/// Records one plugin's latency.
fn observe(name: &str, operation: Operation, step: &str, started: Instant, result: &Result) {
    metrics()
        .admission_controller
        .get_or_create(&AdmissionLabels {
            name: name.into(),
            operation: operation.as_str().into(),
            rejected: result.is_err().to_string(),
            r#type: step.into(),
        })
        .observe(started.elapsed().as_secs_f64());
}

/// Records a whole step's latency.
fn observe_step(operation: Operation, step: &str, started: Instant, result: &Result) {
    metrics()
        .admission_step
        .get_or_create(&StepLabels {
            operation: operation.as_str().into(),
            rejected: result.is_err().to_string(),
            r#type: step.into(),
        })
        .observe(started.elapsed().as_secs_f64());
}
