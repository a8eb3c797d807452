//! Watch cache in front of any backend, as upstream's Cacher: one backend watch per prefix.
//!
//! A background task lists the prefix, then follows one backend watch, keeping the current
//! objects in memory plus a ring of recent events. Watches under the prefix are served from
//! the ring and a broadcast, so N watchers cost one backend watch. `NotOlderThan` lists are
//! served from memory once the cache has reached the requested revision. Consistent lists are
//! served from memory too, as upstream's `ConsistentListFromCache`: the backend's current
//! revision is read, the cache's backend watch is asked for a progress notification (which
//! moves the cache to that revision even when nothing under the prefix changed), and the list
//! waits for the cache to get there; only a backend that cannot report progress, or a cache
//! that does not catch up in time, sends it to the backend. Continue pages and exact-revision
//! lists come from memory while nothing under the prefix has changed since their revision and
//! the backend says history still holds it (the embedded store does; on etcd they go to
//! etcd); gets, counts and all writes go to the backend. Watches older than the ring also go
//! to the backend.
//!
//! When the backend watch fails the cache re-lists; its watchers are then ended with
//! `Unavailable` (upstream terminates them too) and re-watch from their last revision.
//! Watches and lists that arrive during a re-list wait for it instead of joining the
//! cycle that just ended.
//!
//! A compaction through the cache first waits for the cache to reach the compacted revision:
//! a backend watch still replaying older history (etcd syncs a watch that starts in the past
//! in the background) would otherwise be cancelled by the compaction and force a re-list that
//! ends every watcher, even those watching from revisions the compaction kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::json_layout::LayoutMemo;
use super::{
    ContinueToken, ErrorCode, EventKind, KeyValue, ListOptions, ListResult, ListStart,
    ProgressRequests, Result, RevisionMatch, Storage, StorageError, WatchEvent, WatchStream,
};

/// How long a consistent list waits for an answer to its progress request before asking
/// again, as upstream's progress requester: etcd drops a request that arrives while the watch
/// is still catching up, and a watch being re-opened misses it.
const PROGRESS_RETRY: Duration = Duration::from_millis(100);

/// Tuning of a [`Cacher`].
#[derive(Debug, Clone)]
pub struct CacherOptions {
    /// Recent events kept for watches that start in the past.
    pub event_ring: usize,
    /// Events buffered per live watcher before it is dropped with `WatchLagged`.
    pub watch_buffer: usize,
    /// How long a read waits for the cache to reach a requested revision (upstream: 3s)
    /// before failing with `Unavailable` ("too large resource version"); also how long a
    /// compaction waits for the cache to reach the compacted revision before going ahead.
    pub wait_timeout: Duration,
}

impl Default for CacherOptions {
    fn default() -> Self {
        Self {
            event_ring: 10_000,
            watch_buffer: 10_000,
            wait_timeout: Duration::from_secs(3),
        }
    }
}

/// A [`Storage`] that serves watches and lists of one prefix from memory.
pub struct Cacher {
    backend: Arc<dyn Storage>,
    prefix: String,
    /// The resource in metrics, as upstream's `resourcePrefix`; empty: not recorded.
    resource: String,
    options: CacherOptions,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    inner: RwLock<Inner>,
    /// Cache revision, 0 until the first list; readers wait on it.
    revision: watch::Sender<i64>,
    /// Progress requests to the backend watch, made by consistent lists.
    progress: ProgressRequests,
    /// What each page served from memory left for the next.
    remaining: Mutex<RemainingCounts>,
}

/// How many items lie from a page's continue key to the end of its prefix, for the cached
/// state that page was cut from. A page's `remainingItemCount` is then the previous page's
/// count less its own items: counting the rest of the prefix on every page, as upstream's
/// cache does, makes walking N objects in pages cost N²/limit steps.
#[derive(Default)]
struct RemainingCounts {
    /// The state the counts are for, as `Inner::changed`.
    changed: i64,
    /// By prefix and continue key.
    counts: HashMap<(String, String), usize>,
}

impl RemainingCounts {
    /// Bounds the memory of clients that abandon their walks.
    const MAX: usize = 1024;

    fn take(&mut self, changed: i64, prefix: &str, start_key: &str) -> Option<usize> {
        if self.changed != changed {
            return None;
        }
        self.counts
            .remove(&(prefix.to_owned(), start_key.to_owned()))
    }

    fn keep(&mut self, changed: i64, prefix: &str, next_key: &str, count: usize) {
        if self.changed != changed || self.counts.len() >= Self::MAX {
            self.counts.clear();
            self.changed = changed;
        }
        self.counts
            .insert((prefix.to_owned(), next_key.to_owned()), count);
    }
}

/// The cached state; ring pushes and broadcasts happen under the write lock and
/// subscriptions under the read lock, so a new watcher sees each event exactly once.
struct Inner {
    store: BTreeMap<Arc<str>, KeyValue>,
    /// Every event under the prefix up to this revision is applied.
    revision: i64,
    /// Revision of the last change under the prefix (or of the list the cache started from):
    /// the cached state is the state at every revision from here to `revision`.
    changed: i64,
    ring: VecDeque<Arc<WatchEvent>>,
    /// All events after this revision are in `ring`.
    ring_floor: i64,
    compacted: i64,
    events: broadcast::Sender<Arc<WatchEvent>>,
    ready: bool,
}

impl Cacher {
    /// Starts caching `prefix` (ending in `/`) of `backend`; must be called in a tokio runtime.
    pub fn new(backend: Arc<dyn Storage>, prefix: &str, options: CacherOptions) -> Self {
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            inner: RwLock::new(Inner {
                store: BTreeMap::new(),
                revision: 0,
                changed: 0,
                ring: VecDeque::new(),
                ring_floor: 0,
                compacted: 0,
                events,
                ready: false,
            }),
            revision: watch::Sender::new(0),
            progress: ProgressRequests::default(),
            remaining: Mutex::default(),
        });
        let task = tokio::spawn(run(
            backend.clone(),
            prefix.to_owned(),
            options.clone(),
            shared.clone(),
        ));
        Self {
            backend,
            prefix: prefix.to_owned(),
            resource: String::new(),
            options,
            shared,
            task,
        }
    }

    /// Records this cache's consistent lists in `apiserver_watch_cache_consistent_read_total`
    /// under `resource` (upstream's resource prefix, such as `/configmaps`).
    pub fn with_metrics(mut self, resource: String) -> Self {
        self.resource = resource;
        self
    }

    fn count_consistent_read(&self, success: bool, fallback: bool) {
        if self.resource.is_empty() {
            return;
        }
        crate::metrics::metrics()
            .consistent_reads
            .get_or_create(&crate::metrics::ConsistentReadLabels {
                resource: self.resource.clone(),
                success: success.to_string(),
                fallback: fallback.to_string(),
            })
            .inc();
    }

    /// How many objects the cache holds; `None` until its first list.
    pub fn object_count(&self) -> Option<i64> {
        let inner = self.shared.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.ready.then_some(inner.store.len() as i64)
    }

    fn covers(&self, prefix: &str) -> bool {
        prefix.starts_with(self.prefix.as_str())
    }

    /// Waits until the cache is ready and at `revision` or newer; backends start at revision 1,
    /// so the channel's 0 means "not listed yet" (or "re-listing").
    async fn wait_for(&self, revision: i64) -> Result<()> {
        let mut rx = self.shared.revision.subscribe();
        let target = revision.max(1);
        let waited = tokio::time::timeout(self.options.wait_timeout, async {
            rx.wait_for(|r| *r >= target).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(StorageError::new(
                ErrorCode::Unavailable,
                &self.prefix,
                0,
                "watch cache stopped",
            )),
            Err(_) if *self.shared.revision.borrow() == 0 => Err(StorageError::new(
                ErrorCode::Unavailable,
                &self.prefix,
                0,
                "watch cache is not ready: listing its backend",
            )),
            Err(_) => Err(StorageError::new(
                ErrorCode::Unavailable,
                &self.prefix,
                *self.shared.revision.borrow(),
                format!(
                    "too large resource version: watch cache has not reached revision {revision}"
                ),
            )),
        }
    }

    /// Whether the cache holds every change up to `revision`, asking the backend watch for
    /// progress until it does or the wait is over.
    async fn catch_up(&self, revision: i64) -> bool {
        let deadline = tokio::time::Instant::now() + self.options.wait_timeout;
        let mut rx = self.shared.revision.subscribe();
        loop {
            self.shared.progress.request();
            let wait = PROGRESS_RETRY.min(deadline - tokio::time::Instant::now());
            match tokio::time::timeout(wait, rx.wait_for(|r| *r >= revision)).await {
                Ok(reached) => return reached.is_ok(),
                Err(_) if tokio::time::Instant::now() >= deadline => return false,
                Err(_) => {}
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A poisoned lock means a panic mid-update; the data is still structurally valid.
        self.shared.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn list_from_cache(&self, prefix: &str, limit: i64) -> ListResult {
        let inner = self.read();
        let at = inner.revision;
        self.list_items(&inner, prefix, prefix, limit, at)
    }

    /// A list at the past revision `at` (a continue page, or an exact-revision list) from
    /// memory, when nothing under the prefix has changed since `at` and history still holds it
    /// (a compacted revision must keep answering Gone, as the backend would).
    async fn list_at(
        &self,
        prefix: &str,
        start_key: &str,
        limit: i64,
        at: i64,
    ) -> Result<Option<ListResult>> {
        let in_history = self
            .backend
            .compacted_revision()
            .await?
            .is_some_and(|compacted| at >= compacted);
        if !in_history {
            return Ok(None);
        }
        let inner = self.read();
        let unchanged = inner.ready && inner.changed <= at && at <= inner.revision;
        Ok(unchanged.then(|| self.list_items(&inner, prefix, start_key, limit, at)))
    }

    /// Up to `limit` items under `prefix` from `start_key` on, reported at revision `at`.
    fn list_items(
        &self,
        inner: &Inner,
        prefix: &str,
        start_key: &str,
        limit: i64,
        at: i64,
    ) -> ListResult {
        let limit = if limit > 0 {
            limit as usize
        } else {
            usize::MAX
        };
        let mut range = inner
            .store
            .range::<str, _>((
                std::ops::Bound::Included(start_key),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix));
        let items: Vec<KeyValue> = range
            .by_ref()
            .take(limit)
            .map(|(_, kv)| kv.clone())
            .collect();
        let mut continue_token = None;
        let mut remaining = None;
        if let Some((next, _)) = range.next() {
            continue_token = Some(ContinueToken::encode(prefix, at, next));
            let mut counts = self
                .shared
                .remaining
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let rest = match counts.take(inner.changed, prefix, start_key) {
                Some(from_start) => from_start - items.len(),
                None => 1 + range.count(),
            };
            counts.keep(inner.changed, prefix, next, rest);
            remaining = Some(rest as i64);
        }
        ListResult {
            items,
            revision: at,
            continue_token,
            remaining,
        }
    }
}

impl Drop for Cacher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl Storage for Cacher {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        self.backend.create(key, value).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.backend.get(key).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        if !self.covers(prefix) {
            return self.backend.list(prefix, options).await;
        }
        let start = ListStart::resolve(prefix, &options)?;
        if let Some(at) = start.revision {
            // Continue pages and exact-revision lists: from memory while nothing changed.
            if let Some(list) = self
                .list_at(prefix, &start.start_key, options.limit, at)
                .await?
            {
                return Ok(list);
            }
            return self.backend.list(prefix, options).await;
        }
        if options.revision_match == RevisionMatch::NotOlderThan {
            self.wait_for(start.min_revision).await?;
            return Ok(self.list_from_cache(prefix, options.limit));
        }
        // Consistent read: from memory once the cache holds the backend's latest state.
        let current = self.backend.current_revision().await?;
        let caught_up = {
            let inner = self.read();
            inner.ready && inner.revision >= current
        };
        if !self.backend.reports_progress() {
            // Upstream delegates such lists to its storage and counts nothing; memory can
            // still answer when it happens to be current.
            if caught_up {
                return Ok(self.list_from_cache(prefix, options.limit));
            }
            return self.backend.list(prefix, options).await;
        }
        if caught_up || self.catch_up(current).await {
            self.count_consistent_read(true, false);
            return Ok(self.list_from_cache(prefix, options.limit));
        }
        tracing::debug!(
            prefix,
            revision = current,
            "consistent list falls back to the backend"
        );
        let listed = self.backend.list(prefix, options).await;
        self.count_consistent_read(listed.is_ok(), true);
        listed
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        expected: Option<i64>,
        value: Bytes,
    ) -> Result<KeyValue> {
        self.backend.guaranteed_update(key, expected, value).await
    }

    async fn delete(&self, key: &str, expected: Option<i64>) -> Result<KeyValue> {
        self.backend.delete(key, expected).await
    }

    fn expires_keys(&self) -> bool {
        self.backend.expires_keys()
    }

    async fn create_expiring(&self, key: &str, value: Bytes, ttl: Duration) -> Result<i64> {
        self.backend.create_expiring(key, value, ttl).await
    }

    async fn update_expiring(
        &self,
        key: &str,
        expected: Option<i64>,
        value: Bytes,
        ttl: Duration,
    ) -> Result<KeyValue> {
        self.backend
            .update_expiring(key, expected, value, ttl)
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.backend.count(prefix).await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.backend.current_revision().await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        if !self.covers(prefix) {
            return self.backend.watch(prefix, from_revision).await;
        }
        // "From now" is the backend's now: the cache may still be behind it.
        let from = if from_revision > 0 {
            from_revision
        } else {
            self.backend.current_revision().await?
        };
        let from_cache = loop {
            self.wait_for(0).await?;
            let joined = {
                let inner = self.read();
                if from < inner.compacted {
                    return Err(StorageError::compacted(prefix, from, inner.compacted));
                }
                // The backend watch failed between the wait and the lock: joining this cycle
                // would only end in `Unavailable`, so wait for the re-list instead.
                inner.ready.then(|| {
                    (from >= inner.ring_floor).then(|| {
                        let backlog: VecDeque<Arc<WatchEvent>> = inner
                            .ring
                            .iter()
                            .filter(|ev| ev.revision > from && ev.key.starts_with(prefix))
                            .cloned()
                            .collect();
                        (backlog, inner.events.subscribe())
                    })
                })
            };
            match joined {
                Some(from_cache) => break from_cache,
                None => tokio::task::yield_now().await,
            }
        };
        // Older than the ring: only the backend still has those events.
        let Some((backlog, rx)) = from_cache else {
            return self.backend.watch(prefix, from).await;
        };
        let state = CacheWatch {
            prefix: prefix.to_owned(),
            cursor: from,
            backlog,
            rx,
            done: false,
        };
        Ok(super::into_watch_stream(state))
    }

    async fn size(&self) -> Result<Option<(String, i64)>> {
        self.backend.size().await
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        // Only a compaction that covers the cache's own watch position may make it re-list,
        // so let the cache get past `revision` first. If it does not within the bound (the
        // last write up to `revision` may lie outside the prefix, so no event would move it)
        // compact anyway: compaction must not stall behind a slow or idle cache.
        if let Err(e) = self.wait_for(revision).await {
            tracing::debug!(prefix = %self.prefix, revision, error = %e,
                "compacting before the watch cache reached the compacted revision");
        }
        self.backend.compact(revision).await?;
        let mut inner = self.shared.inner.write().unwrap_or_else(|e| e.into_inner());
        if revision > inner.compacted {
            inner.compacted = revision;
            while inner.ring.front().is_some_and(|ev| ev.revision <= revision) {
                inner.ring.pop_front();
            }
            inner.ring_floor = inner.ring_floor.max(revision);
        }
        Ok(())
    }
}

/// One cache watcher: the ring backlog, then the live broadcast.
struct CacheWatch {
    prefix: String,
    /// Events at or below this revision were sent (or predate the watch).
    cursor: i64,
    backlog: VecDeque<Arc<WatchEvent>>,
    rx: broadcast::Receiver<Arc<WatchEvent>>,
    done: bool,
}

impl super::WatchCursor for CacheWatch {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Result<WatchEvent>>> + Send {
        CacheWatch::next(self)
    }
}

impl CacheWatch {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        if let Some(ev) = self.backlog.pop_front() {
            self.cursor = ev.revision;
            return Some(Ok(WatchEvent::clone(&ev)));
        }
        while !self.done {
            match self.rx.recv().await {
                Ok(ev) if ev.revision > self.cursor && ev.key.starts_with(self.prefix.as_str()) => {
                    self.cursor = ev.revision;
                    return Some(Ok(WatchEvent::clone(&ev)));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.done = true;
                    return Some(Err(StorageError::new(
                        ErrorCode::WatchLagged,
                        self.prefix.clone(),
                        self.cursor,
                        format!(
                            "watcher fell {missed} events behind the watch cache and was dropped"
                        ),
                    )));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StorageError::new(
                        ErrorCode::Unavailable,
                        self.prefix.clone(),
                        self.cursor,
                        "watch cache re-listed or stopped; watch again from the last revision",
                    )));
                }
            }
        }
        None
    }
}

/// Keeps the cache in sync forever: list, watch, and on any failure start over.
async fn run(
    backend: Arc<dyn Storage>,
    prefix: String,
    options: CacherOptions,
    shared: Arc<Shared>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let err = match sync(&*backend, &prefix, &options, &shared).await {
            Ok(()) => StorageError::new(ErrorCode::Unavailable, &prefix, 0, "backend watch ended"),
            Err(e) => e,
        };
        tracing::warn!(prefix, error = %err, "watch cache lost its backend watch; re-listing");
        {
            let mut inner = shared.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.ready = false;
            // End this cycle's watchers now rather than after the back-off: they have missed
            // events, and nobody may subscribe to the ended cycle meanwhile.
            let (events, _) = broadcast::channel(options.watch_buffer.max(1));
            inner.events = events;
        }
        shared.revision.send_replace(0);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One list-and-watch cycle; returns when the backend watch ends.
async fn sync(
    backend: &dyn Storage,
    prefix: &str,
    options: &CacherOptions,
    shared: &Shared,
) -> Result<()> {
    let list = backend.list(prefix, ListOptions::default()).await?;
    let mut stream = backend
        .watch_with_progress(prefix, list.revision, shared.progress.clone())
        .await?;
    {
        let mut inner = shared.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.store = list
            .items
            .into_iter()
            .map(|kv| {
                let kv = KeyValue {
                    layout: LayoutMemo::kept(),
                    ..kv
                };
                (kv.key.clone(), kv)
            })
            .collect();
        inner.revision = list.revision;
        inner.changed = list.revision;
        inner.ring.clear();
        inner.ring_floor = list.revision;
        // A fresh channel: watchers of the previous cycle see it close and re-watch, since
        // events between the failure and this list may be missing from what they saw.
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        inner.events = events;
        inner.ready = true;
    }
    shared.revision.send_replace(list.revision);
    while let Some(item) = stream.next().await {
        let ev = item?;
        // Found here, outside the lock, so that lists copy a changed object's bytes from the
        // start; what the first list brought in is laid out on first need instead, sparing
        // start-up the work.
        let layout = match ev.kind {
            EventKind::Added | EventKind::Modified => LayoutMemo::found(&ev.value),
            EventKind::Deleted | EventKind::Progress => LayoutMemo::default(),
        };
        let revision = {
            let mut inner = shared.inner.write().unwrap_or_else(|e| e.into_inner());
            apply(&mut inner, options.event_ring, ev, layout);
            inner.revision
        };
        shared.revision.send_replace(revision);
    }
    Ok(())
}

fn apply(inner: &mut Inner, ring_size: usize, ev: WatchEvent, layout: LayoutMemo) {
    match ev.kind {
        EventKind::Added | EventKind::Modified => {
            // A key already cached keeps its one allocation, shared by index and value.
            let (key, create_revision) = match inner.store.get_key_value(ev.key.as_str()) {
                Some((key, old)) if ev.kind == EventKind::Modified => {
                    (key.clone(), old.create_revision)
                }
                Some((key, _)) => (key.clone(), ev.revision),
                None => (ev.key.as_str().into(), ev.revision),
            };
            inner.store.insert(
                key.clone(),
                KeyValue {
                    key,
                    value: ev.value.clone(),
                    create_revision,
                    mod_revision: ev.revision,
                    layout,
                },
            );
        }
        EventKind::Deleted => {
            inner.store.remove(ev.key.as_str());
        }
        EventKind::Progress => {
            // Nothing changed under the prefix up to this revision: the cache is current.
            inner.revision = inner.revision.max(ev.revision);
            return;
        }
    }
    inner.revision = ev.revision;
    inner.changed = ev.revision;
    let ev = Arc::new(ev);
    inner.ring.push_back(ev.clone());
    while inner.ring.len() > ring_size.max(1) {
        if let Some(old) = inner.ring.pop_front() {
            inner.ring_floor = old.revision;
        }
    }
    // No receivers is fine.
    let _ = inner.events.send(ev);
}
