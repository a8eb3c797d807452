//! Types and schemas of the built-in kinds, as objects rather than HTTP: their OpenAPI
//! definitions (from k8s-openapi's `schemars` impls), the strategic-merge-patch metadata
//! k8s-openapi drops, and the two views derived from them, the field → type graph the strategic
//! merge engine walks and the structured-merge field types server-side apply merges by.
//!
//! Which types a set holds is for its owner to say: the built-in one is `registry::kinds`',
//! derived from the kinds' registrations. A leaf of the registry: the registry and the
//! endpoints use it; it uses nothing of either but the structured-merge type model
//! (`registry::managed_fields`) it builds field types in.

mod field_types;
pub mod graph;
pub mod patch_meta;
mod schemas;
pub mod tags;

pub use graph::SchemaRef;
pub use schemas::{Gvk, SchemaSet, Schemas};
