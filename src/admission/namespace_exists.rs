//! The plugins about a request's namespace existing, as upstream's of the same names:
//! NamespaceAutoProvision creates the namespace a create names when it is missing, and
//! NamespaceExists refuses a request naming a namespace that does not exist (404).

use super::{Attributes, Mutating, Operation, Result, Validating};
use crate::registry::store::{FieldValidation, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// The namespace of a request these plugins look at: a namespaced resource's, other than a
/// namespace's own.
fn namespace_of<'a>(a: &Attributes<'a>) -> Option<&'a str> {
    let own = a.resource.group.is_empty() && a.resource.resource == "namespaces";
    a.namespace.filter(|ns| !ns.is_empty() && !own)
}

/// NamespaceAutoProvision.
pub struct NamespaceAutoProvision {
    namespaces: Arc<Store>,
}

impl NamespaceAutoProvision {
    /// Reads and creates namespaces in `namespaces`.
    pub fn new(namespaces: Arc<Store>) -> Self {
        Self { namespaces }
    }
}

#[async_trait::async_trait]
impl Mutating for NamespaceAutoProvision {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, _object: Option<&mut Value>) -> Result {
        let Some(ns) = namespace_of(a) else {
            return Ok(());
        };
        match self.namespaces.get(None, ns).await {
            Ok(_) => return Ok(()),
            Err(RegistryError::NotFound { .. }) => {}
            Err(e) => return Err(a.forbidden(e.to_string())),
        }
        // A dry run leaves no namespace behind.
        if a.dry_run {
            return Ok(());
        }
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let opts = WriteOptions {
            field_validation: FieldValidation::Strict,
            ..Default::default()
        };
        match self.namespaces.create(None, namespace, opts).await {
            Ok(_) | Err(RegistryError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(a.forbidden(e.to_string())),
        }
    }
}

/// NamespaceExists.
pub struct NamespaceExists {
    namespaces: Arc<Store>,
}

impl NamespaceExists {
    /// Reads namespaces from `namespaces`.
    pub fn new(namespaces: Arc<Store>) -> Self {
        Self { namespaces }
    }
}

#[async_trait::async_trait]
impl Validating for NamespaceExists {
    fn handles(&self, operation: Operation) -> bool {
        matches!(
            operation,
            Operation::Create | Operation::Update | Operation::Delete
        )
    }

    async fn validate(&self, a: &Attributes<'_>, _object: Option<&Value>) -> Result {
        let Some(ns) = namespace_of(a) else {
            return Ok(());
        };
        self.namespaces.get(None, ns).await.map(|_| ())
    }
}
