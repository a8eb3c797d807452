//! Types and schemas of the built-in kinds, as objects rather than HTTP: their OpenAPI
//! definitions (from k8s-openapi's `schemars` impls), the strategic-merge-patch metadata
//! k8s-openapi drops, and the two views derived from them, the field → type graph the strategic
//! merge engine walks and the structured-merge field types server-side apply merges by.
//!
//! A leaf of the registry: the registry and the endpoints use it; it uses nothing of either but
//! the structured-merge type model (`registry::managed_fields`) it builds field types in.

mod builtin;
mod field_types;
pub mod graph;
pub mod patch_meta;

pub use builtin::{BuiltinSchemas, Gvk, builtin};
pub use field_types::field_types_for_kind;
pub use graph::{SchemaRef, schema_for_definition, schema_for_kind};
