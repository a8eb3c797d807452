//! `Informer`: one store's objects kept in memory by list-then-watch (upstream's shared informer
//! and lister), for what consults configuration on every request — admission webhooks and
//! policies — without reading the store each time.

use super::Store;
use super::store::{ListParams, WatchParams, meta_str};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The objects by namespace and name.
pub type Objects = BTreeMap<(String, String), Arc<Value>>;

/// A store's objects as last seen, and a counter that changes whenever they do.
pub struct Informer {
    objects: RwLock<Arc<Objects>>,
    generation: AtomicU64,
    synced: watch::Receiver<bool>,
    changes: tokio::sync::Notify,
}

/// How long a failed list or watch waits before it is tried again.
const RETRY: Duration = Duration::from_millis(500);

impl Informer {
    /// Starts following `store` (every namespace) on the current runtime.
    pub fn start(store: Arc<Store>) -> Arc<Self> {
        let (tx, synced) = watch::channel(false);
        let informer = Arc::new(Self {
            objects: RwLock::new(Arc::default()),
            generation: AtomicU64::new(0),
            synced,
            changes: tokio::sync::Notify::new(),
        });
        tokio::spawn(follow(store, Arc::downgrade(&informer), tx));
        informer
    }

    /// The objects now; a snapshot that later changes do not touch.
    pub fn objects(&self) -> Arc<Objects> {
        self.objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A number that changes whenever the objects do (0 until the first list).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until the first list arrived, at most `timeout`; whether it did. Once it has, this
    /// answers without waiting.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        if self.generation() > 0 {
            return true;
        }
        let mut synced = self.synced.clone();
        tokio::time::timeout(timeout, synced.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn replace(&self, f: impl FnOnce(&mut Objects)) {
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        f(Arc::make_mut(&mut objects));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changes.notify_waiters();
    }

    /// Whether the first list has arrived.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits for the next change of the objects (one that happens after the call).
    pub async fn changed(&self) {
        self.changes.notified().await
    }
}

fn key(obj: &Value) -> (String, String) {
    (
        meta_str(obj, "namespace").unwrap_or("").to_string(),
        meta_str(obj, "name").unwrap_or("").to_string(),
    )
}

/// Lists, then watches from the list's revision, again after any failure, until the informer
/// is dropped.
async fn follow(
    store: Arc<Store>,
    informer: std::sync::Weak<Informer>,
    synced: watch::Sender<bool>,
) {
    let what = store.info().resource.clone();
    loop {
        let page = match store.list(None, &ListParams::default()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, resource = %what, "informer: listing failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(me) = informer.upgrade() else { return };
        me.replace(|objects| {
            *objects = page
                .items
                .into_iter()
                .map(|o| (key(&o), Arc::new(o)))
                .collect();
        });
        drop(me);
        let _ = synced.send(true);
        let params = WatchParams {
            list: ListParams {
                resource_version: Some(page.resource_version),
                ..ListParams::default()
            },
            ..WatchParams::default()
        };
        match store.watch(None, params).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    let Some(me) = informer.upgrade() else { return };
                    match ev.kind {
                        "ADDED" | "MODIFIED" => me.replace(|o| {
                            o.insert(key(&ev.object), ev.object.clone());
                        }),
                        "DELETED" => me.replace(|o| {
                            o.remove(&key(&ev.object));
                        }),
                        _ => {}
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, resource = %what, "informer: watching failed"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// `informer-sync` in /readyz: red until every informer admission reads from has listed once,
/// as upstream's check on its shared informer factory.
pub struct InformerSync {
    informers: Vec<Arc<Informer>>,
}

impl InformerSync {
    /// A check over `informers`.
    pub fn new(informers: Vec<Arc<Informer>>) -> Self {
        Self { informers }
    }
}

impl crate::server::healthz::HealthCheck for InformerSync {
    fn name(&self) -> &str {
        "informer-sync"
    }

    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), String>> {
        let unsynced = self.informers.iter().filter(|i| !i.is_synced()).count();
        Box::pin(async move {
            if unsynced == 0 {
                Ok(())
            } else {
                Err(format!("{unsynced} informers not started yet"))
            }
        })
    }
}
