//! Admission plugins run before a write reaches the registry.

mod namespace_lifecycle;

pub use namespace_lifecycle::NamespaceLifecycle;
