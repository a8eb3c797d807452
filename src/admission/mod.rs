//! Admission (upstream's `k8s.io/apiserver/pkg/admission`): after authentication and
//! authorization, every write passes the mutating plugins, then the kind's own validation, then
//! the validating plugins. The endpoints turn each write request into [`Attributes`] in one
//! place (`endpoints::handlers::admit`); the registry calls back at upstream's points of a
//! write (`registry::Admit`), so every write path passes the same chain.

mod attributes;
mod certificates;
mod chain;
mod config;
mod default_class;
mod defaults;
mod equivalent;
mod event_rate_limit;
mod expression_authorizer;
mod image_policy;
mod limit_ranger;
mod matching;
mod namespace_exists;
mod namespace_lifecycle;
mod node_restriction;
mod owner_references;
pub mod plugins;
mod pod_node_selector;
pub mod pod_security;
mod pod_toleration_restriction;
mod policy;
mod priority;
mod pvc_resize;
mod resource_quota;
mod runtime_class;
mod service_account;
mod webhook;

pub use attributes::{Attributes, Operation, Options, Warnings};
pub use chain::{Chain, Mutating, Validating};
pub use config::AdmissionConfig;
pub use event_rate_limit::EventRateLimitConfig;
pub use namespace_lifecycle::NamespaceLifecycle;
pub use node_restriction::NodeRestriction;
pub use pod_security::{PodSecurity, PodSecurityConfig};
pub use policy::ValidatingPolicies;
pub use priority::system_priority_classes;
pub use resource_quota::ResourceQuotaAdmission;
pub use service_account::ServiceAccountAdmission;
pub use webhook::{MutatingWebhooks, ValidatingWebhooks, WebhookContext};

/// What a plugin answers: `Err` refuses the request with that error.
pub type Result<T = (), E = crate::registry::RegistryError> = std::result::Result<T, E>;
