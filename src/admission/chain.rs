//! The chain of admission plugins: mutating ones in order, then (after the kind's validation)
//! validating ones in order, each asked only for the operations it handles.

use super::{Attributes, Operation, Result};
use serde_json::Value;
use std::sync::Arc;

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

/// The plugins a server runs, in upstream's order.
#[derive(Clone, Default)]
pub struct Chain {
    mutating: Vec<Arc<dyn Mutating>>,
    validating: Vec<Arc<dyn Validating>>,
}

impl Chain {
    /// The same chain with `plugin` appended to its mutating plugins.
    pub fn with_mutating(mut self, plugin: Arc<dyn Mutating>) -> Self {
        self.mutating.push(plugin);
        self
    }

    /// The same chain with `plugin` appended to its validating plugins.
    pub fn with_validating(mut self, plugin: Arc<dyn Validating>) -> Self {
        self.validating.push(plugin);
        self
    }

    /// Runs the mutating plugins that handle the operation; the first refusal ends the chain.
    pub async fn admit(
        &self,
        attributes: &Attributes<'_>,
        mut object: Option<&mut Value>,
    ) -> Result {
        for plugin in &self.mutating {
            if plugin.handles(attributes.operation) {
                plugin.admit(attributes, object.as_deref_mut()).await?;
            }
        }
        Ok(())
    }

    /// Runs the validating plugins that handle the operation; the first refusal ends the chain.
    pub async fn validate(&self, attributes: &Attributes<'_>, object: Option<&Value>) -> Result {
        for plugin in &self.validating {
            if plugin.handles(attributes.operation) {
                plugin.validate(attributes, object).await?;
            }
        }
        Ok(())
    }
}
