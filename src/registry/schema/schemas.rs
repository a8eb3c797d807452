//! A set of JSON schemas generated from k8s-openapi's `schemars` impls, with the kinds among
//! them, and the views the patch engine and server-side apply derive from it on first use.

use super::field_types::FieldTypes;
use super::graph::{Graph, SchemaRef};
use crate::registry::managed_fields::TypeRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// A group/version/kind.
pub type Gvk = (&'static str, &'static str, &'static str);

/// Collects the types of a [`Schemas`]: each type brings the definitions it refers to.
pub struct SchemaSet {
    generator: SchemaGenerator,
    kinds: Vec<(Gvk, String)>,
}

impl Default for SchemaSet {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaSet {
    /// A set holding the meta types every API document refers to (Status, DeleteOptions,
    /// Patch, WatchEvent, APIResourceList, ListMeta).
    pub fn new() -> Self {
        let mut generator = SchemaGenerator::default();
        generator.subschema_for::<meta::Status>();
        generator.subschema_for::<meta::DeleteOptions>();
        generator.subschema_for::<meta::Patch>();
        generator.subschema_for::<meta::WatchEvent<Value>>();
        generator.subschema_for::<meta::APIResourceList>();
        generator.subschema_for::<meta::ListMeta>();
        SchemaSet {
            generator,
            kinds: Vec::new(),
        }
    }

    /// Adds the kind of k8s-openapi type `T`.
    pub fn add_kind<T: k8s_openapi::Resource + JsonSchema>(&mut self) {
        self.generator.subschema_for::<T>();
        self.kinds.push((
            (T::GROUP, T::VERSION, T::KIND),
            T::schema_name().into_owned(),
        ));
    }

    /// The schemas of the types added.
    pub fn finish(self) -> Schemas {
        let definitions = self
            .generator
            .definitions()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Schemas {
            definitions,
            kinds: self.kinds,
            graph: OnceLock::new(),
            field_types: OnceLock::new(),
        }
    }
}

/// Every definition of a set of types, keyed by upstream's definition name, with `$ref`s in
/// schemars' `#/$defs/` form, the kinds (group/version/kind → definition name) among them, and
/// what patches and server-side apply derive from them.
pub struct Schemas {
    /// Definitions by name.
    pub definitions: Map<String, Value>,
    /// The resource kinds and the definition of each.
    pub kinds: Vec<(Gvk, String)>,
    graph: OnceLock<Graph>,
    field_types: OnceLock<FieldTypes>,
}

impl Schemas {
    /// The field → type graph strategic merge patches walk.
    fn graph(&self) -> &Graph {
        self.graph.get_or_init(|| Graph::of(self))
    }

    /// The strategic-merge schema of a kind (`""`, `"v1"`, `"Pod"`), or `None` for kinds not in
    /// the set (custom resources among them).
    pub fn schema_for_kind(
        &'static self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<SchemaRef> {
        self.graph().kind_root(group, version, kind)
    }

    /// The strategic-merge schema of a type by its OpenAPI definition name.
    pub fn schema_for_definition(&'static self, definition: &str) -> Option<SchemaRef> {
        self.graph().root(definition)
    }

    /// The structured-merge field types of a kind, or `None` for kinds not in the set.
    pub fn field_types_for_kind(&self, group: &str, version: &str, kind: &str) -> Option<TypeRef> {
        self.field_types
            .get_or_init(|| FieldTypes::of(self))
            .for_kind(group, version, kind)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core};

    /// The schemas of a few kinds, for the tests of what is derived from them.
    pub(in crate::registry::schema) fn schemas() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| {
            let mut set = SchemaSet::new();
            set.add_kind::<core::Pod>();
            set.add_kind::<core::ConfigMap>();
            set.add_kind::<apps::Deployment>();
            set.finish()
        })
    }
}
