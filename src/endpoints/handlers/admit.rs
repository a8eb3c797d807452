//! The one place a write request becomes admission attributes. Every write handler (create,
//! update, the patch types, apply, delete, deletecollection, subresources) builds an
//! [`AdmissionPoint`] for its request and hands it to the store, which calls it at upstream's
//! points: mutating admission, then the kind's validation, then validating admission.

use super::scope::RequestScope;
use crate::admission::{Attributes, Chain, Operation, Options};
use crate::registry::{Admit, RegistryError};
use serde_json::Value;

/// The admission of one write request: its static attributes and the chain they pass.
pub(super) struct AdmissionPoint<'a> {
    chain: &'a Chain,
    attributes: Attributes<'a>,
}

impl<'a> AdmissionPoint<'a> {
    /// The admission of `scope`'s request doing `operation` to object `name`.
    pub fn new(
        scope: &'a RequestScope<'a>,
        operation: Operation,
        name: &'a str,
        dry_run: bool,
        options: Options<'a>,
    ) -> Self {
        Self::of(
            scope.admission,
            Attributes {
                operation,
                resource: scope.store.info(),
                subresource: scope.subresource(),
                namespace: scope.namespace,
                name,
                old_object: None,
                user: &scope.user,
                dry_run,
                options,
                warnings: &scope.warnings,
                annotations: &scope.annotations,
            },
        )
    }

    /// The admission of a request with these attributes (a request no store serves).
    pub fn of(chain: &'a Chain, attributes: Attributes<'a>) -> Self {
        Self { chain, attributes }
    }

    /// The attributes with the stored object the write changes.
    fn with_old<'o>(&'o self, old: Option<&'o Value>) -> Attributes<'o> {
        Attributes {
            old_object: old,
            ..self.attributes.clone()
        }
    }
}

#[async_trait::async_trait]
impl Admit for AdmissionPoint<'_> {
    async fn mutate(&self, obj: &mut Value, old: Option<&Value>) -> Result<(), RegistryError> {
        self.chain.admit(&self.with_old(old), Some(obj)).await
    }

    async fn validate(&self, obj: &Value, old: Option<&Value>) -> Result<(), RegistryError> {
        self.chain.validate(&self.with_old(old), Some(obj)).await
    }

    async fn delete(&self, old: &Value) -> Result<(), RegistryError> {
        let attributes = self.with_old(Some(old));
        self.chain.admit(&attributes, None).await?;
        self.chain.validate(&attributes, None).await
    }

    fn user(&self) -> Option<&crate::auth::UserInfo> {
        Some(self.attributes.user)
    }
}
