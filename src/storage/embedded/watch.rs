//! Watches on the embedded store: each watcher replays the disk log from its revision, then
//! follows the broadcast of committed events the writer sends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::broadcast;

use super::codec::{LOG, META_COMPACTED, decode_log, log_value, meta_get, rev};
use super::{Shared, internal};
use crate::storage::{
    ErrorCode, EventKind, ProgressRequests, Result, StorageError, WatchEvent, WatchStream,
};

/// Starts a watch of `prefix` after `from_revision` (0 or less: from now).
pub(super) fn watch(
    shared: &Arc<Shared>,
    prefix: &str,
    from_revision: i64,
    progress: Option<&ProgressRequests>,
) -> Result<WatchStream> {
    let compacted = shared.compacted.load(Ordering::Acquire);
    if from_revision > 0 && from_revision < compacted {
        return Err(StorageError::compacted(prefix, from_revision, compacted));
    }
    let mut state = WatchState {
        shared: shared.clone(),
        prefix: prefix.to_owned(),
        cursor: from_revision,
        rx: None,
        live: false,
        done: false,
        buffer: VecDeque::new(),
        progress: progress.map(ProgressRequests::listen),
        progress_due: None,
    };
    if from_revision <= 0 {
        // "From now": subscribe before reading the revision so nothing after it is missed.
        state.rx = Some(subscribe(shared, prefix)?);
        state.cursor = shared.revision.load(Ordering::Acquire);
    }
    Ok(crate::storage::into_watch_stream(state))
}

/// Log entries a watcher reads from disk per read transaction while catching up.
const HISTORY_CHUNK: usize = 1024;

/// A receiver of the writer's broadcast; fails once the store is closed.
fn subscribe(shared: &Shared, key: &str) -> Result<broadcast::Receiver<Arc<WatchEvent>>> {
    let events = shared
        .events
        .lock()
        .map_err(|_| StorageError::new(ErrorCode::Internal, key, 0, "poisoned lock"))?;
    events
        .as_ref()
        .map(|tx| tx.subscribe())
        .ok_or_else(|| StorageError::new(ErrorCode::Unavailable, key, 0, "storage is closed"))
}

/// One watcher: replays the disk log from `cursor`, then follows the live broadcast.
struct WatchState {
    shared: Arc<Shared>,
    prefix: String,
    /// Highest revision already examined; events at or below it are never sent again.
    cursor: i64,
    /// Subscribed once history caught up, before the last history read, so no event can fall
    /// between disk and broadcast.
    rx: Option<broadcast::Receiver<Arc<WatchEvent>>>,
    /// History is replayed; only the broadcast remains.
    live: bool,
    /// An error was yielded; the stream ends.
    done: bool,
    buffer: VecDeque<WatchEvent>,
    /// Progress requests to answer, if the watch was opened with them.
    progress: Option<tokio::sync::watch::Receiver<u64>>,
    /// A request is answered once `cursor` reaches the revision published when it was made:
    /// every event up to it has then been examined.
    progress_due: Option<i64>,
}

/// What a live watcher woke up for.
enum Woken {
    Event(std::result::Result<Arc<WatchEvent>, broadcast::error::RecvError>),
    ProgressRequested,
    RequestsGone,
}

impl crate::storage::WatchCursor for WatchState {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Result<WatchEvent>>> + Send {
        WatchState::next(self)
    }
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if self.progress_due.is_some_and(|due| self.cursor >= due) {
                self.progress_due = None;
                return Some(Ok(WatchEvent::progress(self.cursor)));
            }
            if !self.live {
                if let Err(e) = self.read_history().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            let rx = self.rx.as_mut().expect("live watchers are subscribed");
            let woken = match self.progress.as_mut() {
                Some(requests) => tokio::select! {
                    ev = rx.recv() => Woken::Event(ev),
                    changed = requests.changed() => match changed {
                        Ok(()) => Woken::ProgressRequested,
                        Err(_) => Woken::RequestsGone,
                    },
                },
                None => Woken::Event(rx.recv().await),
            };
            let received = match woken {
                Woken::Event(received) => received,
                Woken::ProgressRequested => {
                    self.progress_due = Some(self.shared.revision.load(Ordering::Acquire));
                    continue;
                }
                Woken::RequestsGone => {
                    self.progress = None;
                    continue;
                }
            };
            match received {
                Ok(ev) => {
                    if ev.revision <= self.cursor {
                        continue;
                    }
                    self.cursor = ev.revision;
                    if ev.key.starts_with(self.prefix.as_str()) {
                        return Some(Ok(WatchEvent::clone(&ev)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.done = true;
                    return Some(Err(StorageError::new(
                        ErrorCode::WatchLagged,
                        self.prefix.clone(),
                        self.cursor,
                        format!("watcher fell {missed} events behind and was dropped"),
                    )));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StorageError::new(
                        ErrorCode::Unavailable,
                        self.prefix.clone(),
                        self.cursor,
                        "storage is closed",
                    )));
                }
            }
        }
    }

    /// Reads one chunk of history after `cursor`; at its end subscribes (then reads once more
    /// to close the gap) or switches to live.
    async fn read_history(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        let prefix = self.prefix.clone();
        let after = self.cursor;
        let (events, cursor, at_end) = tokio::task::spawn_blocking(move || {
            read_history_blocking(&shared, &prefix, after, HISTORY_CHUNK)
        })
        .await
        .map_err(|e| StorageError::with_source(ErrorCode::Internal, self.prefix.clone(), e))??;
        self.cursor = cursor;
        self.buffer.extend(events);
        if at_end {
            if self.rx.is_some() {
                self.live = true;
            } else {
                self.rx = Some(subscribe(&self.shared, &self.prefix)?);
            }
        }
        Ok(())
    }
}

/// Events under `prefix` after `after` from the log, at most `chunk` records examined.
/// Returns the events, the last revision examined and whether the log's end was reached.
fn read_history_blocking(
    s: &Shared,
    prefix: &str,
    after: i64,
    chunk: usize,
) -> Result<(Vec<WatchEvent>, i64, bool)> {
    let (txn, _) = s.begin_read()?;
    let compacted = meta_get(&txn, META_COMPACTED)?;
    // Checked in the same snapshot as the read: a compaction racing this watcher must not
    // silently drop events from its replay.
    if after < compacted {
        return Err(StorageError::compacted(prefix, after, compacted));
    }
    let log = txn.open_table(LOG).map_err(internal)?;
    let mut events = Vec::new();
    let mut cursor = after;
    let range = log.range((after.max(0) as u64 + 1)..).map_err(internal)?;
    for (examined, entry) in range.enumerate() {
        if examined == chunk {
            return Ok((events, cursor, false));
        }
        let (r, v) = entry.map_err(internal)?;
        cursor = rev(r.value());
        let rec = decode_log(v.value())?;
        if !rec.key.starts_with(prefix) {
            continue;
        }
        let prev_value = if rec.prev_revision > 0 {
            Some(log_value(&log, rec.key, rec.prev_revision)?)
        } else {
            None
        };
        let value = match rec.kind {
            EventKind::Deleted => prev_value.clone().unwrap_or_default(),
            _ => Bytes::copy_from_slice(rec.value),
        };
        events.push(WatchEvent {
            kind: rec.kind,
            key: rec.key.to_owned(),
            value,
            prev_value,
            revision: cursor,
        });
    }
    Ok((events, cursor, true))
}
