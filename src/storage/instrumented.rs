//! A [`Storage`] that times every backend call of one resource
//! (`etcd_request_duration_seconds`, by operation and resource, for both backends as upstream
//! records them for etcd).

use super::{KeyValue, ListOptions, ListResult, ProgressRequests, Result, Storage, WatchStream};
use crate::metrics::{StorageLabels, metrics};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `inner`, its calls for resource `resource` timed.
pub struct Instrumented {
    inner: Arc<dyn Storage>,
    resource: String,
}

impl Instrumented {
    /// Times `inner`'s calls as `resource`'s (`configmaps`, `deployments.apps`).
    pub fn new(inner: Arc<dyn Storage>, resource: String) -> Self {
        Self { inner, resource }
    }

    fn observe(&self, operation: &str, started: Instant) {
        metrics()
            .storage_duration
            .get_or_create(&StorageLabels {
                operation: operation.into(),
                r#type: self.resource.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl Storage for Instrumented {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let started = Instant::now();
        let out = self.inner.create(key, value).await;
        self.observe("create", started);
        out
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let started = Instant::now();
        let out = self.inner.get(key).await;
        self.observe("get", started);
        out
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let started = Instant::now();
        let out = self.inner.list(prefix, options).await;
        self.observe("list", started);
        out
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
    ) -> Result<KeyValue> {
        let started = Instant::now();
        let out = self
            .inner
            .guaranteed_update(key, expected_mod_revision, value)
            .await;
        self.observe("update", started);
        out
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<KeyValue> {
        let started = Instant::now();
        let out = self.inner.delete(key, expected_mod_revision).await;
        self.observe("delete", started);
        out
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let started = Instant::now();
        let out = self.inner.count(prefix).await;
        self.observe("count", started);
        out
    }

    async fn current_revision(&self) -> Result<i64> {
        self.inner.current_revision().await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        self.inner.watch(prefix, from_revision).await
    }

    fn reports_progress(&self) -> bool {
        self.inner.reports_progress()
    }

    async fn compacted_revision(&self) -> Result<Option<i64>> {
        self.inner.compacted_revision().await
    }

    async fn watch_with_progress(
        &self,
        prefix: &str,
        from_revision: i64,
        requests: ProgressRequests,
    ) -> Result<WatchStream> {
        self.inner
            .watch_with_progress(prefix, from_revision, requests)
            .await
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn size(&self) -> Result<Option<(String, i64)>> {
        self.inner.size().await
    }

    fn expires_keys(&self) -> bool {
        self.inner.expires_keys()
    }

    async fn create_expiring(&self, key: &str, value: Bytes, ttl: Duration) -> Result<i64> {
        let started = Instant::now();
        let out = self.inner.create_expiring(key, value, ttl).await;
        self.observe("create", started);
        out
    }

    async fn update_expiring(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
        ttl: Duration,
    ) -> Result<KeyValue> {
        let started = Instant::now();
        let out = self
            .inner
            .update_expiring(key, expected_mod_revision, value, ttl)
            .await;
        self.observe("update", started);
        out
    }
}
