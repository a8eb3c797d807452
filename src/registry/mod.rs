//! The registry: objects and their rules, never HTTP. One generic [`store::Store`] driven by a
//! per-kind [`strategy::Strategy`].

pub mod admit;
pub mod equivalence;
pub mod errors;
pub mod groups;
pub mod informer;
pub mod kinds;
pub mod managed_fields;
pub mod rest;
pub mod schema;
pub mod selectors;
pub mod service_alloc;
pub mod spliced_list;
pub mod store;
pub mod store_factory;
pub mod store_set;
pub mod strategy;
pub mod table;
pub mod validation;

pub use admit::Admit;
pub use errors::{ErrorList, FieldError, RegistryError};
pub use store::Store;
pub use store_factory::StoreFactory;
pub use store_set::StoreSet;
pub use strategy::{ResourceInfo, Rules, Strategy, Typed};
