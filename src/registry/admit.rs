//! Admission as the store sees it: the points of a write where upstream's generic store and
//! handlers call admission (`rest.ValidateObjectFunc` and friends). The store knows when to
//! call; the caller knows who asks and which plugins run, so the store holds only this trait.

use super::errors::RegistryError;
use serde_json::Value;

/// The admission one write request passes; the server's own writes pass none.
#[async_trait::async_trait]
pub trait Admit: Send + Sync {
    /// Mutating admission of a create (`old` is `None`) or an update, on the decoded object
    /// before the kind's rules and validation run; it may change `obj`.
    async fn mutate(&self, obj: &mut Value, old: Option<&Value>) -> Result<(), RegistryError>;

    /// Validating admission of a create or update, once the object passed the kind's
    /// validation and just before it is written.
    async fn validate(&self, obj: &Value, old: Option<&Value>) -> Result<(), RegistryError>;

    /// Admission of the delete of `old` (mutating, then validating, as upstream's
    /// `AdmissionToValidateObjectDeleteFunc`), once preconditions hold.
    async fn delete(&self, old: &Value) -> Result<(), RegistryError>;

    /// Who makes the request, for kinds that record their requester (CertificateSigningRequest).
    fn user(&self) -> Option<&crate::auth::UserInfo> {
        None
    }
}
