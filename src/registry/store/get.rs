//! Get (upstream's `Store.Get`): one object, or just the fields a caller needs of it.

use super::{Result, Store};
use crate::registry::errors::RegistryError;
use crate::storage::KeyValue;
use serde_json::Value;

impl Store {
    /// Reads one object.
    pub async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value> {
        self.decode_kv(&self.get_kv(ns, name).await?)
    }

    /// The stored key-value of an object, or NotFound.
    pub(super) async fn get_kv(&self, ns: Option<&str>, name: &str) -> Result<KeyValue> {
        self.storage
            .get(&self.key(ns, name))
            .await
            .map_err(|e| self.storage_err(e, name))?
            .ok_or_else(|| self.not_found(name))
    }

    /// Reads just the fields `T` declares of an object, straight from the stored bytes: a
    /// check that needs two fields (admission reading a namespace's phase on every create)
    /// should not build the whole object. Kinds that convert on read decode fully first.
    pub async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        ns: Option<&str>,
        name: &str,
    ) -> Result<T> {
        let kv = self.get_kv(ns, name).await?;
        let decoded = if self.strategy.storage_conversion().is_none()
            && !crate::protobuf::is_protobuf(&kv.value)
        {
            serde_json::from_slice(&kv.value)
        } else {
            T::deserialize(self.decode_kv(&kv)?)
        };
        decoded.map_err(|e| RegistryError::Internal(format!("stored object: {e}")))
    }
}
