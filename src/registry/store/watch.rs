//! Watch (upstream's `Store.Watch`): initial events, changes in revision order translated
//! through selectors, bookmarks, and each change decoded once for all of a store's watchers.

use super::metadata::parse_rv;
use super::{ListParams, Result, Store};
use crate::registry::errors::RegistryError;
use crate::storage::{self, ErrorCode, EventKind};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The annotation of the bookmark that ends a watch's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";
/// How often a watch with bookmarks enabled gets one, as upstream's ~1 minute.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Watch parameters after parsing the query.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    /// Selectors and resourceVersion (limit/continue are ignored for watches, as upstream).
    pub list: ListParams,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
}

/// One event of a watch stream, ready to encode as `{"type":…,"object":…}`.
#[derive(Debug, Clone)]
pub struct Event {
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub kind: &'static str,
    /// The object (a Status for ERROR); a change's object is shared by every watcher of the
    /// store that receives it.
    pub object: Arc<Value>,
    /// The frames already encoded for this change, shared like `object`; `None` for events
    /// made for one watcher (initial ADDED, BOOKMARK, ERROR).
    pub frames: Option<Arc<FrameCache>>,
}

impl Event {
    fn new(kind: &'static str, object: Value) -> Self {
        Self {
            kind,
            object: Arc::new(object),
            frames: None,
        }
    }
}

/// Equal events carry the same type and object; encoded frames are only a cache.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.object == other.object
    }
}

/// One change's encoded watch frames by (event type, encoding): with N watchers of a resource
/// each change is otherwise encoded N times. The event type is part of the key because
/// selectors can turn one change into ADDED, MODIFIED or DELETED for different watchers.
#[derive(Debug, Default)]
pub struct FrameCache(Mutex<Vec<(&'static str, &'static str, Bytes)>>);

impl FrameCache {
    /// The frame of `kind` in `encoding`, made by `encode` unless a watcher already made it.
    pub fn get_or_encode<E>(
        &self,
        kind: &'static str,
        encoding: &'static str,
        encode: impl FnOnce() -> std::result::Result<Bytes, E>,
    ) -> std::result::Result<Bytes, E> {
        let cached = |frames: &[(&'static str, &'static str, Bytes)]| {
            frames
                .iter()
                .find(|(k, e, _)| *k == kind && *e == encoding)
                .map(|(_, _, b)| b.clone())
        };
        if let Some(frame) = cached(&self.lock()) {
            return Ok(frame);
        }
        // Encoded outside the lock so other encodings are not held up; two watchers racing on
        // a fresh change may both encode it, which costs only time.
        let frame = encode()?;
        let mut frames = self.lock();
        if cached(&frames).is_none() {
            frames.push((kind, encoding, frame.clone()));
        }
        Ok(frame)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, &'static str, Bytes)>> {
        // A panic while holding the lock leaves a valid (if incomplete) cache.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Changes this store's watchers decoded recently, kept so that the next watcher of the same
/// change shares them. Watchers of one resource see the same storage events at about the same
/// time, so a short window catches nearly all of them; a watcher further behind decodes for
/// itself. Bounded by count because entries hold decoded objects.
pub(super) const DECODED_CHANGES: usize = 128;

/// One storage change decoded once for all of a store's watchers.
#[derive(Debug)]
pub(super) struct DecodedChange {
    key: String,
    revision: i64,
    object: Arc<Value>,
    /// The previous object, decoded on first need: only watchers with selectors look at it.
    prev: OnceLock<Option<Value>>,
    frames: Arc<FrameCache>,
}

impl Store {
    fn bookmark(&self, revision: i64, initial_events_end: bool) -> Event {
        let info = self.info();
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        Event::new(
            "BOOKMARK",
            json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": metadata}),
        )
    }

    /// Watches objects in `ns`: optional initial ADDED events, then changes in revision order.
    pub async fn watch(
        self: &Arc<Self>,
        ns: Option<&str>,
        params: WatchParams,
    ) -> Result<BoxStream<'static, Event>> {
        self.check_field_selector(&params.list.fields)?;
        let rv = params.list.resource_version.clone().unwrap_or_default();
        let send_initial = params
            .send_initial_events
            .unwrap_or(rv.is_empty() || rv == "0");
        if params.send_initial_events == Some(true)
            && params.list.resource_version_match.as_deref() != Some("NotOlderThan")
        {
            return Err(RegistryError::BadRequest(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            ));
        }
        // Set when an initial object does not decode: its ERROR event then ends the watch.
        let failed = Arc::new(AtomicBool::new(false));
        let (initial, start) = if send_initial {
            self.initial_events(ns, &params.list, failed.clone())
                .await?
        } else {
            (futures::stream::empty().boxed(), parse_rv(&rv)?)
        };
        let initial_end = (params.send_initial_events == Some(true) && params.bookmarks)
            .then(|| self.bookmark(start, true));
        let from = if start == 0 {
            self.storage
                .current_revision()
                .await
                .map_err(|e| self.storage_err(e, ""))?
        } else {
            start
        };
        let events = self.storage.watch(&self.prefix(ns), from).await;
        let events = match events {
            Ok(events) => events,
            // Upstream answers a watch from a compacted revision with one ERROR event, not an HTTP error.
            Err(e) if e.code == ErrorCode::Compacted => {
                return Ok(futures::stream::iter([expired_event(from, e.revision)]).boxed());
            }
            Err(e) => return Err(self.storage_err(e, "")),
        };
        let store = self.clone();
        let list = params.list.clone();
        // Translated synchronously: no per-event clones of the store or the selectors.
        let changes =
            events.filter_map(move |ev| std::future::ready(store.translate(ev, &list, from)));
        let changes: BoxStream<'static, Event> = if params.bookmarks {
            with_bookmarks(changes, self.clone(), from).boxed()
        } else {
            changes.boxed()
        };
        let rest = futures::stream::iter(initial_end).chain(changes).boxed();
        let rest = futures::stream::once(async move {
            if failed.load(Ordering::Relaxed) {
                futures::stream::empty().boxed()
            } else {
                rest
            }
        })
        .flatten();
        Ok(initial.chain(rest).boxed())
    }

    /// The ADDED events of the objects in `ns` that match `list`, and the revision they were
    /// read at. Each is decoded only when the stream reaches it, so a watch of a large
    /// collection holds its stored values (shared with the watch cache) rather than a decoded
    /// copy of every object; a kind that converts on read converts the whole list up front.
    async fn initial_events(
        self: &Arc<Self>,
        ns: Option<&str>,
        list: &ListParams,
        failed: Arc<AtomicBool>,
    ) -> Result<(BoxStream<'static, Event>, i64)> {
        let list = ListParams {
            limit: 0,
            continue_token: None,
            resource_version_match: None,
            ..list.clone()
        };
        if self.strategy.storage_conversion().is_some() {
            let page = self.list(ns, &list).await?;
            let start = page.resource_version.parse::<i64>().unwrap_or(0);
            let events = page.items.into_iter().map(|o| Event::new("ADDED", o));
            return Ok((futures::stream::iter(events).boxed(), start));
        }
        let opts = self.storage_list_options(&list)?;
        let page = self.read_page(&self.prefix(ns), opts, &list).await?;
        let store = self.clone();
        let mut items = page.items.into_iter();
        // As upstream's etcd watcher: an object that does not decode ends the watch with an ERROR.
        let events = std::iter::from_fn(move || {
            if failed.load(Ordering::Relaxed) {
                return None;
            }
            for kv in items.by_ref() {
                match store.decode_kv(&kv) {
                    Ok(object) if store.matches(&object, &list) => {
                        return Some(Event::new("ADDED", object));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Some(internal_error_event(&e.to_string()));
                    }
                }
            }
            None
        });
        Ok((futures::stream::iter(events).boxed(), page.revision))
    }

    /// One storage event as the client should see it after selectors, or an ERROR for expiry.
    fn translate(
        &self,
        ev: storage::Result<storage::WatchEvent>,
        list: &ListParams,
        from: i64,
    ) -> Option<Event> {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) if e.code == ErrorCode::Compacted => {
                return Some(expired_event(from, e.revision));
            }
            Err(e) => {
                if e.code == ErrorCode::WatchLagged {
                    let (group, resource) = self.strategy.storage_resource();
                    let labels = crate::metrics::GroupResourceLabels {
                        group: group.to_string(),
                        resource: resource.to_string(),
                    };
                    crate::metrics::metrics()
                        .terminated_watchers
                        .get_or_create(&labels)
                        .inc();
                }
                tracing::debug!(error = %e, "watch ended");
                return None;
            }
        };
        let change = self.decoded_change(&ev)?;
        let (now, before) = if list.labels.is_empty() && list.fields.is_empty() {
            // Without selectors everything matches: the previous value need not be decoded.
            (true, ev.prev_value.is_some())
        } else {
            let prev = change.prev.get_or_init(|| {
                ev.prev_value
                    .as_ref()
                    .and_then(|p| self.decode_stored(p, ev.revision).ok())
            });
            (
                self.matches(&change.object, list),
                prev.as_ref().is_some_and(|p| self.matches(p, list)),
            )
        };
        let kind = match ev.kind {
            EventKind::Added if now => "ADDED",
            EventKind::Modified if now && before => "MODIFIED",
            EventKind::Modified if now => "ADDED",
            EventKind::Modified if before => "DELETED",
            EventKind::Deleted if now || before => "DELETED",
            _ => return None,
        };
        Some(Event {
            kind,
            object: change.object.clone(),
            frames: Some(change.frames.clone()),
        })
    }

    /// `ev` decoded, shared with the other watchers of this store that see the same change.
    fn decoded_change(&self, ev: &storage::WatchEvent) -> Option<Arc<DecodedChange>> {
        let lock = || self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        // Newest first: a watcher is usually at or near the latest change.
        let find = |recent: &VecDeque<Arc<DecodedChange>>| {
            recent
                .iter()
                .rev()
                .find(|c| c.revision == ev.revision && c.key == ev.key)
                .cloned()
        };
        if let Some(change) = find(&lock()) {
            return Some(change);
        }
        // Decoded outside the lock: other watchers may be reading other changes meanwhile.
        let object = match self.decode_stored(&ev.value, ev.revision) {
            Ok(object) => object,
            Err(e) => {
                tracing::warn!(error = %e, key = %ev.key, "watch: a change could not be decoded; it is not sent");
                return None;
            }
        };
        let mut recent = lock();
        // Keep the first copy if another watcher decoded it meanwhile, so frames are shared too.
        if let Some(change) = find(&recent) {
            return Some(change);
        }
        let change = Arc::new(DecodedChange {
            key: ev.key.clone(),
            revision: ev.revision,
            object: Arc::new(object),
            prev: OnceLock::new(),
            frames: Arc::default(),
        });
        recent.push_back(change.clone());
        if recent.len() > DECODED_CHANGES {
            recent.pop_front();
        }
        Some(change)
    }
}

/// The ERROR event of a watch that cannot go on: a 500 InternalError, as upstream's etcd
/// watcher sends when an object does not decode.
fn internal_error_event(message: &str) -> Event {
    let status = Status {
        status: Some("Failure".into()),
        code: Some(500),
        reason: Some("InternalError".into()),
        message: Some(message.to_owned()),
        ..Status::default()
    };
    Event::new(
        "ERROR",
        serde_json::to_value(status).expect("Status serializes"),
    )
}

/// The ERROR event of a watch whose start revision `from` was compacted (at `compacted`).
fn expired_event(from: i64, compacted: i64) -> Event {
    let status = Status {
        status: Some("Failure".into()),
        code: Some(410),
        reason: Some("Expired".into()),
        message: Some(format!("too old resource version: {from} ({compacted})")),
        ..Status::default()
    };
    Event::new(
        "ERROR",
        serde_json::to_value(status).expect("Status serializes"),
    )
}

/// Interleaves a BOOKMARK at the last delivered revision every [`BOOKMARK_INTERVAL`].
fn with_bookmarks(
    changes: impl Stream<Item = Event> + Send + 'static,
    store: Arc<Store>,
    start: i64,
) -> impl Stream<Item = Event> + Send {
    let ticker = tokio_stream_interval(BOOKMARK_INTERVAL);
    futures::stream::unfold(
        (changes.boxed(), ticker, start),
        move |(mut changes, mut ticker, last)| {
            let store = store.clone();
            async move {
                tokio::select! {
                    ev = changes.next() => {
                        let ev = ev?;
                        let rv = ev.object.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(last);
                        Some((ev, (changes, ticker, rv)))
                    }
                    _ = ticker.tick() => Some((store.bookmark(last, false), (changes, ticker, last))),
                }
            }
        },
    )
}

fn tokio_stream_interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

#[cfg(test)]
mod watch_sharing_tests {
    use super::super::{UpdateTarget, WriteOptions};
    use super::*;
    use crate::registry::managed_fields::TypeRef;
    use crate::registry::selectors::LabelSelector;
    use crate::storage::KeyBuilder;
    use crate::storage::embedded::{EmbeddedOptions, EmbeddedStorage};

    fn configmap(label: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "labels": {"a": label}}, "data": {"k": label}})
    }

    /// Watchers share each change's decoded object, and the event type stays per watcher:
    /// a change that leaves a selector is DELETED for that watcher and MODIFIED for others.
    #[tokio::test]
    async fn watchers_share_decoded_changes_but_keep_their_own_event_types() {
        let dir = tempfile::tempdir().unwrap();
        let store = core_store(&dir, "configmaps", EmbeddedOptions::default());
        let from = store.storage.current_revision().await.unwrap().to_string();
        let watch = |labels: &str| {
            let params = WatchParams {
                list: ListParams {
                    labels: LabelSelector::parse(labels).unwrap(),
                    resource_version: Some(from.clone()),
                    ..ListParams::default()
                },
                ..WatchParams::default()
            };
            let store = store.clone();
            async move { store.watch(Some("default"), params).await.unwrap() }
        };
        let (mut all, mut selected) = (watch("").await, watch("a=1").await);
        let opts = WriteOptions::default;
        store
            .create(Some("default"), configmap("1"), opts())
            .await
            .unwrap();
        store
            .update(
                Some("default"),
                "cm",
                configmap("2"),
                UpdateTarget::Main,
                opts(),
            )
            .await
            .unwrap();
        let (a1, a2) = (all.next().await.unwrap(), all.next().await.unwrap());
        let (s1, s2) = (
            selected.next().await.unwrap(),
            selected.next().await.unwrap(),
        );
        assert_eq!((a1.kind, a2.kind), ("ADDED", "MODIFIED"));
        assert_eq!((s1.kind, s2.kind), ("ADDED", "DELETED"));
        assert!(Arc::ptr_eq(&a1.object, &s1.object));
        assert!(Arc::ptr_eq(&a2.object, &s2.object));
        assert_eq!(s2.object["metadata"]["labels"]["a"], "2");
    }

    /// The store of the core `resource` on an embedded store in `dir`.
    fn core_store(dir: &tempfile::TempDir, resource: &str, options: EmbeddedOptions) -> Arc<Store> {
        let storage = EmbeddedStorage::open(dir.path().join("db"), options).unwrap();
        let strategy = crate::registry::kinds::builtin()
            .into_iter()
            .find(|s| &*s.info().resource == resource && s.info().group.is_empty())
            .unwrap();
        Arc::new(Store::new(
            strategy,
            Arc::new(storage),
            KeyBuilder::new("/registry/"),
            TypeRef::untyped(),
        ))
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_ends_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            watch_buffer: 2,
            ..EmbeddedOptions::default()
        };
        let store = core_store(&dir, "podtemplates", options);
        let labels = crate::metrics::GroupResourceLabels {
            group: String::new(),
            resource: "podtemplates".into(),
        };
        let terminated = || {
            crate::metrics::metrics()
                .terminated_watchers
                .get_or_create(&labels)
                .get()
        };
        let before = terminated();
        let from = store.storage.current_revision().await.unwrap().to_string();
        let params = WatchParams {
            list: ListParams {
                resource_version: Some(from),
                ..ListParams::default()
            },
            ..WatchParams::default()
        };
        let mut events = store.watch(Some("default"), params).await.unwrap();
        // Rounds of more writes than the watch may buffer, none read while they are written;
        // in between the watch is read until it pauses (caught up, waiting on live events) or
        // ends. A watcher still reading history when a round is written catches up instead.
        let mut ended = false;
        for round in 0..20 {
            for i in 0..10 {
                let template = json!({"apiVersion": "v1", "kind": "PodTemplate",
                    "metadata": {"name": format!("t{round}-{i}")},
                    "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}});
                store
                    .create(Some("default"), template, WriteOptions::default())
                    .await
                    .unwrap();
            }
            while let Ok(next) =
                tokio::time::timeout(Duration::from_millis(300), events.next()).await
            {
                if next.is_none() {
                    ended = true;
                    break;
                }
            }
            if ended {
                break;
            }
        }
        assert!(ended, "the watch fell behind and ended");
        assert_eq!(terminated(), before + 1);
    }
}
