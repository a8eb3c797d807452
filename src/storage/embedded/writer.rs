//! The embedded store's write path: one writer thread drains pending requests into one redb
//! transaction (group commit), checks each precondition and gives each write its revision,
//! makes the batch durable in the write-ahead log while a committer thread commits it to redb,
//! then publishes the revision and broadcasts the events. Replay at open and compaction are
//! writes too.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use redb::{Database, ReadableTable};
use tokio::sync::{broadcast, oneshot};

use super::codec::{
    CURRENT, LOG, META, META_COMPACTED, META_REVISION, corrupt, current_kv, decode_log,
    encode_current, encode_log,
};
use super::{Shared, internal, wal};
use crate::storage::{ErrorCode, EventKind, KeyValue, Result, StorageError, WatchEvent};

/// Bytes of the pre-allocated write-ahead log; a batch that does not fit is committed to redb
/// durably instead.
pub(super) const WAL_CAPACITY: u64 = 32 << 20;
/// Non-durable redb commits between checkpoints: each keeps the pages it replaced until the
/// next durable commit, so this bounds the file's growth.
const CHECKPOINT_BATCHES: usize = 512;
/// A writer idle this long checkpoints what the log holds.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The kind byte of a write in a log record.
const WAL_CREATE: u8 = 1;
const WAL_UPDATE: u8 = 2;
const WAL_DELETE: u8 = 3;

/// A write the writer thread applies.
pub(super) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        expected: Option<i64>,
        value: Bytes,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
    Compact {
        revision: i64,
    },
}

/// A write and where its outcome goes.
pub(super) struct Request {
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<Result<KeyValue>>,
}

/// Starts the writer thread (and its committer) on `shared`; it runs until the returned sender
/// is dropped.
pub(super) fn spawn(
    shared: Arc<Shared>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    wal: wal::Wal,
    max_batch: usize,
) -> Result<(mpsc::Sender<Request>, JoinHandle<()>)> {
    let committer = Committer::spawn()?;
    let (tx, rx) = mpsc::channel();
    let writer = std::thread::Builder::new()
        .name("storage-writer".into())
        .spawn(move || {
            Writer {
                shared,
                events,
                wal,
                committer,
                pending: 0,
                broken: None,
            }
            .run(rx, max_batch)
        })
        .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?;
    Ok((tx, writer))
}

impl Shared {
    /// Makes `revision` the last durable one and wakes readers waiting for it.
    fn publish(&self, revision: i64) {
        self.revision.store(revision, Ordering::SeqCst);
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.published.lock().unwrap_or_else(|e| e.into_inner());
            self.published_cv.notify_all();
        }
    }
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    wal: wal::Wal,
    committer: Committer,
    /// Batches committed to redb without a sync since the last checkpoint.
    pending: usize,
    /// Set when the log and redb may disagree (a failed sync or commit): every later write
    /// fails rather than risk acknowledging what a replay would not reproduce.
    broken: Option<StorageError>,
}

impl Drop for Writer {
    /// A writer gone (stopped, or panicked mid-batch) publishes nothing more: readers waiting
    /// for a batch redb already holds must fail instead of waiting forever.
    fn drop(&mut self) {
        self.shared.broken.store(true, Ordering::SeqCst);
        self.shared.wake_waiters();
    }
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>, max_batch: usize) {
        loop {
            let first = match rx.recv_timeout(CHECKPOINT_IDLE) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_pending();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let (compactions, writes): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .partition(|r| matches!(r.op, Op::Compact { .. }));
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            for req in compactions {
                let Op::Compact { revision } = req.op else {
                    unreachable!("partitioned above")
                };
                let result = match &self.broken {
                    Some(e) => Err(e.clone()),
                    // A durable commit: it checkpoints the log's records too.
                    None => compact_blocking(&self.shared, revision).inspect(|_| {
                        self.wal.reset();
                        self.pending = 0;
                    }),
                };
                let _ = req.reply.send(result);
            }
        }
        self.checkpoint_if_pending();
        tracing::debug!("storage writer stopped");
    }

    /// Makes every non-durable redb commit durable, then lets the log start over.
    fn checkpoint_if_pending(&mut self) {
        if self.pending == 0 || self.broken.is_some() {
            return;
        }
        let durable = (|| -> Result<()> {
            let txn = self.shared.db.begin_write().map_err(internal)?;
            txn.commit().map_err(internal)
        })();
        match durable {
            Ok(()) => {
                self.wal.reset();
                self.pending = 0;
            }
            // The log still holds every record, so nothing acknowledged is lost; stop writing.
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: StorageError) {
        tracing::error!(error = %e, "storage writer failed; refusing further writes");
        self.broken = Some(StorageError::with_source(ErrorCode::Unavailable, "", e));
        self.shared.broken.store(true, Ordering::SeqCst);
        self.shared.wake_waiters();
    }

    /// Applies `writes` in one transaction, makes them durable (one log record, or a durable
    /// redb commit if it does not fit), commits, then publishes events and answers.
    fn commit_batch(&mut self, writes: Vec<Request>) {
        if let Some(e) = &self.broken {
            for req in writes {
                let _ = req.reply.send(Err(e.clone()));
            }
            return;
        }
        let shared = self.shared.clone();
        let start = shared.revision.load(Ordering::Acquire);
        let mut next = start;
        let mut outcomes: Vec<Result<(KeyValue, WatchEvent)>> = Vec::with_capacity(writes.len());
        let applied = (|| -> Result<()> {
            let mut txn = shared.db.begin_write().map_err(internal)?;
            {
                let mut log = txn.open_table(LOG).map_err(internal)?;
                let mut current = txn.open_table(CURRENT).map_err(internal)?;
                for req in &writes {
                    outcomes.push(apply(&mut log, &mut current, &mut next, &req.op)?);
                }
                if next != start {
                    let mut meta = txn.open_table(META).map_err(internal)?;
                    meta.insert(META_REVISION, next as u64).map_err(internal)?;
                }
            }
            if next == start {
                // Only failed preconditions: nothing to make durable.
                return txn.abort().map_err(internal);
            }
            let record = encode_wal(writes.iter().zip(&outcomes));
            if !self.wal.fits(record.len()) || self.pending + 1 >= CHECKPOINT_BATCHES {
                // A durable redb commit: this batch and every earlier one are in redb for good.
                txn.commit().map_err(internal)?;
                self.wal.reset();
                self.pending = 0;
                return Ok(());
            }
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))
                .inspect_err(|e| self.fail(e.clone()))?;
            // The commit (tens of microseconds of CPU) runs on the committer thread while this
            // thread waits for the log's sync; readers cannot see the batch before `publish`.
            self.committer
                .start(txn)
                .inspect_err(|e| self.fail(e.clone()))?;
            let appended = self.wal.append(start + 1, next, &record);
            let committed = self.committer.finish();
            if let Err(e) = appended {
                // redb may hold the batch now, but nobody can read it: `publish` never comes.
                let e = StorageError::with_source(ErrorCode::Internal, "", e);
                self.fail(e.clone());
                return Err(e);
            }
            committed.inspect_err(|e| self.fail(e.clone()))?;
            self.pending += 1;
            Ok(())
        })();
        if let Err(e) = applied {
            // Every request fails and the revision is unchanged. When the log write failed
            // after redb's commit, redb holds a batch that is never published: reads then
            // fail with Unavailable (the storage health check among them) until a restart
            // replays the log, which holds no record of the batch.
            tracing::error!(error = %e, "storage batch commit failed");
            for req in writes {
                let _ = req.reply.send(Err(e.clone()));
            }
            return;
        }
        shared.publish(next);
        tracing::trace!(
            batch = writes.len(),
            revision = next,
            "storage batch committed"
        );
        // Answer before broadcasting: the answer is what a writer waits for, and a watch
        // started after it still skips these events, as `revision` is already published.
        let mut events = Vec::with_capacity(outcomes.len());
        for (req, outcome) in writes.into_iter().zip(outcomes) {
            let reply = outcome.map(|(kv, ev)| {
                events.push(ev);
                kv
            });
            let _ = req.reply.send(reply);
        }
        for ev in events {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(Arc::new(ev));
        }
    }
}

/// Commits redb transactions on a thread of its own, so a batch's commit overlaps the sync of
/// its log record instead of following it.
struct Committer {
    jobs: Option<mpsc::Sender<redb::WriteTransaction>>,
    done: mpsc::Receiver<Result<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    fn spawn() -> Result<Self> {
        let (jobs, job_rx) = mpsc::channel::<redb::WriteTransaction>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("storage-commit".into())
            .spawn(move || {
                for txn in job_rx {
                    if done_tx.send(txn.commit().map_err(internal)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Hands `txn` over for commit; [`Committer::finish`] returns the outcome.
    fn start(&self, txn: redb::WriteTransaction) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(txn).ok())
            .ok_or_else(|| StorageError::new(ErrorCode::Internal, "", 0, "committer is gone"))
    }

    /// Waits for the commit handed over by the last [`Committer::start`].
    fn finish(&self) -> Result<()> {
        self.done
            .recv()
            .map_err(|_| StorageError::new(ErrorCode::Internal, "", 0, "committer is gone"))?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The log record of a batch: its successful writes in revision order.
fn encode_wal<'a>(
    batch: impl Iterator<Item = (&'a Request, &'a Result<(KeyValue, WatchEvent)>)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (req, outcome) in batch {
        if outcome.is_err() {
            continue;
        }
        let (kind, key, value) = match &req.op {
            Op::Create { key, value } => (WAL_CREATE, key, &value[..]),
            Op::Update { key, value, .. } => (WAL_UPDATE, key, &value[..]),
            Op::Delete { key, .. } => (WAL_DELETE, key, &[][..]),
            Op::Compact { .. } => unreachable!("compactions are not batched with writes"),
        };
        out.reserve(9 + key.len() + value.len());
        out.push(kind);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// The writes of one log record, without preconditions: replayed in order on the state they
/// were first applied to, they reproduce the same revisions and records.
fn decode_wal(mut raw: &[u8]) -> Result<Vec<Op>> {
    let bad = || corrupt("", "write-ahead log record");
    let mut take = |n: usize| -> Result<&[u8]> {
        let (head, tail) = raw.split_at_checked(n).ok_or_else(bad)?;
        raw = tail;
        Ok(head)
    };
    let mut ops = Vec::new();
    loop {
        let Ok(kind) = take(1) else { break };
        let kind = kind[0];
        let key_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let key = std::str::from_utf8(take(key_len)?)
            .map_err(|_| bad())?
            .to_owned();
        let value_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let value = Bytes::copy_from_slice(take(value_len)?);
        ops.push(match kind {
            WAL_CREATE => Op::Create { key, value },
            WAL_UPDATE => Op::Update {
                key,
                expected: None,
                value,
            },
            WAL_DELETE => Op::Delete {
                key,
                expected: None,
            },
            _ => return Err(bad()),
        });
    }
    Ok(ops)
}

/// Applies the log's writes newer than `revision` (redb's, as of its last durable commit) in
/// one durable commit; returns the revision after them.
pub(super) fn replay(db: &Database, revision: i64, records: &[wal::Record]) -> Result<i64> {
    let Some(first) = records.iter().find(|r| r.last_revision > revision) else {
        return Ok(revision);
    };
    if first.first_revision > revision + 1 {
        return Err(StorageError::new(
            ErrorCode::Internal,
            "",
            revision,
            format!(
                "write-ahead log starts at revision {} but the database ends at {revision}",
                first.first_revision
            ),
        ));
    }
    let mut next = revision;
    let txn = db.begin_write().map_err(internal)?;
    {
        let mut log = txn.open_table(LOG).map_err(internal)?;
        let mut current = txn.open_table(CURRENT).map_err(internal)?;
        for record in records.iter().filter(|r| r.last_revision > revision) {
            let ops = decode_wal(&record.payload)?;
            if ops.len() as i64 != record.last_revision - record.first_revision + 1 {
                return Err(corrupt("", "write-ahead log record length"));
            }
            for (r, op) in (record.first_revision..).zip(&ops) {
                if r <= next {
                    continue;
                }
                if let Err(e) = apply(&mut log, &mut current, &mut next, op)? {
                    return Err(corrupt(&e.key, "write-ahead log does not apply"));
                }
            }
        }
        let mut meta = txn.open_table(META).map_err(internal)?;
        meta.insert(META_REVISION, next as u64).map_err(internal)?;
    }
    txn.commit().map_err(internal)?;
    if next > revision {
        tracing::info!(
            from = revision,
            to = next,
            "storage replayed its write-ahead log"
        );
    }
    Ok(next)
}

/// Applies one write; `Ok(Err(_))` is a failed precondition that leaves the batch intact.
fn apply(
    log: &mut redb::Table<u64, &[u8]>,
    current: &mut redb::Table<&str, &[u8]>,
    next: &mut i64,
    op: &Op,
) -> Result<Result<(KeyValue, WatchEvent)>> {
    let key = match op {
        Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key.as_str(),
        Op::Compact { .. } => unreachable!("compactions are not batched with writes"),
    };
    let existing = current
        .get(key)
        .map_err(internal)?
        .map(|v| current_kv(log, key, v.value()))
        .transpose()?;
    let check = |expected: &Option<i64>| -> Result<KeyValue> {
        let Some(old) = existing.clone() else {
            return Err(StorageError::not_found(key));
        };
        match expected {
            Some(e) if *e != old.mod_revision => {
                Err(StorageError::conflict(key, *e, old.mod_revision))
            }
            _ => Ok(old),
        }
    };
    let r = *next + 1;
    let done = match op {
        Op::Create { value, .. } => {
            if let Some(old) = &existing {
                return Ok(Err(StorageError::already_exists(key, old.mod_revision)));
            }
            log.insert(
                r as u64,
                encode_log(EventKind::Added, key, r, 0, value).as_slice(),
            )
            .map_err(internal)?;
            current
                .insert(key, encode_current(r, r).as_slice())
                .map_err(internal)?;
            let kv = KeyValue {
                key: key.into(),
                value: value.clone(),
                create_revision: r,
                mod_revision: r,
                layout: Default::default(),
            };
            let ev = WatchEvent {
                kind: EventKind::Added,
                key: key.to_owned(),
                value: value.clone(),
                prev_value: None,
                revision: r,
            };
            (kv, ev)
        }
        Op::Update {
            expected, value, ..
        } => {
            let old = match check(expected) {
                Ok(old) => old,
                Err(e) => return Ok(Err(e)),
            };
            let rec = encode_log(
                EventKind::Modified,
                key,
                old.create_revision,
                old.mod_revision,
                value,
            );
            log.insert(r as u64, rec.as_slice()).map_err(internal)?;
            current
                .insert(key, encode_current(old.create_revision, r).as_slice())
                .map_err(internal)?;
            let kv = KeyValue {
                key: key.into(),
                value: value.clone(),
                create_revision: old.create_revision,
                mod_revision: r,
                layout: Default::default(),
            };
            let ev = WatchEvent {
                kind: EventKind::Modified,
                key: key.to_owned(),
                value: value.clone(),
                prev_value: Some(old.value),
                revision: r,
            };
            (kv, ev)
        }
        Op::Delete { expected, .. } => {
            let old = match check(expected) {
                Ok(old) => old,
                Err(e) => return Ok(Err(e)),
            };
            let rec = encode_log(
                EventKind::Deleted,
                key,
                old.create_revision,
                old.mod_revision,
                &[],
            );
            log.insert(r as u64, rec.as_slice()).map_err(internal)?;
            current.remove(key).map_err(internal)?;
            let kv = KeyValue {
                key: key.into(),
                value: old.value.clone(),
                create_revision: old.create_revision,
                mod_revision: r,
                layout: Default::default(),
            };
            let ev = WatchEvent {
                kind: EventKind::Deleted,
                key: key.to_owned(),
                value: old.value.clone(),
                prev_value: Some(old.value),
                revision: r,
            };
            (kv, ev)
        }
        Op::Compact { .. } => unreachable!("compactions are not batched with writes"),
    };
    *next = r;
    Ok(Ok(done))
}

/// Drops log records ≤ `revision` superseded by a later record ≤ `revision`, and tombstones.
fn compact_blocking(shared: &Shared, revision: i64) -> Result<KeyValue> {
    let compacted = shared.compacted.load(Ordering::Acquire);
    let current = shared.revision.load(Ordering::Acquire);
    if revision <= compacted {
        return Ok(empty_kv(compacted));
    }
    if revision > current {
        return Err(StorageError::invalid(
            "",
            format!("cannot compact to future revision {revision} (current {current})"),
        ));
    }
    let txn = shared.db.begin_write().map_err(internal)?;
    let mut dropped = 0usize;
    {
        let mut log = txn.open_table(LOG).map_err(internal)?;
        let mut doomed = Vec::new();
        for entry in log
            .range((compacted as u64 + 1)..=(revision as u64))
            .map_err(internal)?
        {
            let (r, v) = entry.map_err(internal)?;
            let rec = decode_log(v.value())?;
            if rec.prev_revision > 0 {
                doomed.push(rec.prev_revision as u64);
            }
            if rec.kind == EventKind::Deleted {
                doomed.push(r.value());
            }
        }
        for r in doomed {
            if log.remove(r).map_err(internal)?.is_some() {
                dropped += 1;
            }
        }
        let mut meta = txn.open_table(META).map_err(internal)?;
        meta.insert(META_COMPACTED, revision as u64)
            .map_err(internal)?;
    }
    txn.commit().map_err(internal)?;
    shared.compacted.store(revision, Ordering::Release);
    tracing::debug!(revision, dropped, "storage compacted");
    Ok(empty_kv(revision))
}

/// The answer to a compaction: no key, the compacted revision.
fn empty_kv(revision: i64) -> KeyValue {
    KeyValue {
        key: "".into(),
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: revision,
        layout: Default::default(),
    }
}
