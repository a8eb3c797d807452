//! Embedded storage backend on redb: one file, durable group commits, watch from a disk log.
//!
//! Layout (three tables, kine-like):
//! - `log`: revision → event record (kind, key, create revision, pointer to the previous
//!   version's revision, value). The append-only history that watches replay and past-revision
//!   lists undo. Deletes store no value: the pointer leads to it, so history is never duplicated.
//! - `current`: key → (create revision, mod revision, value). The live state, so get, count and
//!   current lists are one ordered range scan and never touch history.
//! - `meta`: the current and compacted revisions.
//!
//! A list at a past revision R reads `current` and undoes the (few) log events after R using
//! their previous-version pointers. Compaction at C deletes log records ≤ C that a later record
//! ≤ C supersedes, plus tombstones ≤ C, exactly as etcd does, so every pointer from a record
//! after C still resolves.
//!
//! All writes go through one writer thread that drains every pending request into one write
//! transaction (group commit: one fsync for many requests), checks each request's precondition
//! and gives it its own revision. Reads use their own read transactions on the blocking pool.
//!
//! Durability comes from a write-ahead log next to the database file ([`wal`]): the writer
//! appends the batch's successful writes as one record and `fdatasync`s it, then commits the
//! redb transaction without a sync (readers see it at once) and only then answers. Every
//! `CHECKPOINT_BATCHES` batches, when the log is full, after a second idle or on close, a redb
//! commit with a sync makes everything durable in redb and the log starts over. Opening
//! replays the log's records newer than redb's revision.

mod wal;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use super::{
    ContinueToken, ErrorCode, EventKind, KeyValue, ListOptions, ListResult, ListStart, Result,
    Storage, StorageError, WatchEvent, WatchStream,
};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const CURRENT: TableDefinition<&str, &[u8]> = TableDefinition::new("current");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// Log entries a watcher reads from disk per read transaction while catching up.
const HISTORY_CHUNK: usize = 1024;

/// Bytes of the pre-allocated write-ahead log; a batch that does not fit is committed to redb
/// durably instead.
const WAL_CAPACITY: u64 = 32 << 20;
/// Non-durable redb commits between checkpoints: each keeps the pages it replaced until the
/// next durable commit, so this bounds the file's growth.
const CHECKPOINT_BATCHES: usize = 512;
/// A writer idle this long checkpoints what the log holds.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

const WAL_CREATE: u8 = 1;
const WAL_UPDATE: u8 = 2;
const WAL_DELETE: u8 = 3;

/// Tuning of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Committed events buffered for live watchers; a watcher further behind is dropped with
    /// `WatchLagged`.
    pub watch_buffer: usize,
    /// Most requests committed in one transaction.
    pub max_batch: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            watch_buffer: 10_000,
            max_batch: 1_024,
        }
    }
}

/// The redb-backed [`Storage`].
pub struct EmbeddedStorage {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
}

/// State shared by the handle, the writer thread, readers and watch streams.
struct Shared {
    db: Database,
    /// Last durable revision, published after commit and sync and before the broadcast.
    /// redb may already hold newer, not yet durable batches; [`Shared::begin_read`] hides them.
    revision: AtomicI64,
    /// Readers in [`Shared::wait_published`]; the writer signals only when there are any.
    waiters: AtomicUsize,
    /// Guards nothing: pairs with `published_cv` for readers waiting on `revision`.
    published: Mutex<()>,
    published_cv: Condvar,
    /// Set when the writer fails or is gone: batches redb holds beyond `revision` never become durable.
    broken: AtomicBool,
    /// Last compacted revision.
    compacted: AtomicI64,
    /// Taken on shutdown so live watchers see the channel close.
    events: Mutex<Option<broadcast::Sender<Arc<WatchEvent>>>>,
}

enum Op {
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

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<KeyValue>>,
}

impl EmbeddedStorage {
    /// Opens (or creates) the database file at `path` and starts its writer thread.
    ///
    /// A file left by a killed process is recovered by redb; every acknowledged write is in it.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(internal)?;
        let (revision, compacted) = init_tables(&db)?;
        let wal_path = wal::path_for(path);
        let (mut wal, records) = wal::Wal::open(&wal_path, WAL_CAPACITY)
            .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?;
        let revision = replay(&db, revision, &records)?;
        wal.reset();
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            db,
            revision: AtomicI64::new(revision),
            waiters: AtomicUsize::new(0),
            published: Mutex::new(()),
            published_cv: Condvar::new(),
            broken: AtomicBool::new(false),
            compacted: AtomicI64::new(compacted),
            events: Mutex::new(Some(events.clone())),
        });
        let committer = Committer::spawn()?;
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        let max_batch = options.max_batch.max(1);
        let writer = std::thread::Builder::new()
            .name("storage-writer".into())
            .spawn(move || {
                Writer {
                    shared: writer_shared,
                    events,
                    wal,
                    committer,
                    pending: 0,
                    broken: None,
                }
                .run(rx, max_batch)
            })
            .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?;
        tracing::debug!(path = %path.display(), revision, compacted, "embedded storage opened");
        Ok(Self {
            shared,
            requests: Some(tx),
            writer: Some(writer),
        })
    }

    async fn submit(&self, op: Op) -> Result<KeyValue> {
        let (reply, rx) = oneshot::channel();
        let closed = || StorageError::new(ErrorCode::Unavailable, "", 0, "storage is closed");
        self.requests
            .as_ref()
            .ok_or_else(closed)?
            .send(Request { op, reply })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?
    }
}

impl Drop for EmbeddedStorage {
    fn drop(&mut self) {
        // Closing the request channel lets the writer finish the pending batch and exit;
        // dropping the last broadcast sender then ends every live watch with `Unavailable`.
        self.requests.take();
        if let Ok(mut events) = self.shared.events.lock() {
            events.take();
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let kv = self
            .submit(Op::Create {
                key: key.to_owned(),
                value,
            })
            .await?;
        Ok(kv.mod_revision)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |s| {
            let (txn, _) = s.begin_read()?;
            let current = txn.open_table(CURRENT).map_err(internal)?;
            let found = current.get(key.as_str()).map_err(internal)?;
            found.map(|v| decode_current(&key, v.value())).transpose()
        })
        .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        self.read(move |s| list_blocking(s, &prefix, &options))
            .await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
    ) -> Result<KeyValue> {
        self.submit(Op::Update {
            key: key.to_owned(),
            expected: expected_mod_revision,
            value,
        })
        .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<KeyValue> {
        self.submit(Op::Delete {
            key: key.to_owned(),
            expected: expected_mod_revision,
        })
        .await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let prefix = prefix.to_owned();
        self.read(move |s| {
            let (txn, _) = s.begin_read()?;
            let current = txn.open_table(CURRENT).map_err(internal)?;
            let mut n = 0;
            for entry in current.range::<&str>(prefix.as_str()..).map_err(internal)? {
                let (k, _) = entry.map_err(internal)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if from_revision > 0 && from_revision < compacted {
            return Err(StorageError::compacted(prefix, from_revision, compacted));
        }
        let mut state = WatchState {
            shared: self.shared.clone(),
            prefix: prefix.to_owned(),
            cursor: from_revision,
            rx: None,
            live: false,
            done: false,
            buffer: VecDeque::new(),
        };
        if from_revision <= 0 {
            // "From now": subscribe before reading the revision so nothing after it is missed.
            state.rx = Some(subscribe(&self.shared, prefix)?);
            state.cursor = self.shared.revision.load(Ordering::Acquire);
        }
        Ok(super::into_watch_stream(state))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        if revision <= self.shared.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        self.submit(Op::Compact { revision }).await.map(|_| ())
    }
}

fn internal(e: impl Into<redb::Error>) -> StorageError {
    let e: redb::Error = e.into();
    let code = match e {
        redb::Error::DatabaseAlreadyOpen => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    StorageError::with_source(code, "", e)
}

fn corrupt(key: &str, what: &str) -> StorageError {
    StorageError::new(
        ErrorCode::Internal,
        key,
        0,
        format!("corrupt record: {what}"),
    )
}

fn rev(r: u64) -> i64 {
    // Revisions come from an i64 counter, so they always fit.
    r as i64
}

/// Creates the tables on first open and returns (revision, compacted).
fn init_tables(db: &Database) -> Result<(i64, i64)> {
    let txn = db.begin_write().map_err(internal)?;
    let out = {
        txn.open_table(LOG).map_err(internal)?;
        txn.open_table(CURRENT).map_err(internal)?;
        let mut meta = txn.open_table(META).map_err(internal)?;
        if meta.get(META_REVISION).map_err(internal)?.is_none() {
            // Like etcd, an empty store is at revision 1, so "watch from the current revision"
            // is never confused with `0`, which means "from now".
            meta.insert(META_REVISION, 1).map_err(internal)?;
        }
        let get = |k| -> Result<i64> {
            Ok(meta
                .get(k)
                .map_err(internal)?
                .map(|v| rev(v.value()))
                .unwrap_or(0))
        };
        (get(META_REVISION)?, get(META_COMPACTED)?)
    };
    txn.commit().map_err(internal)?;
    Ok(out)
}

/// A `meta` value in the snapshot `txn`, 0 if unset.
fn meta_get(txn: &redb::ReadTransaction, key: &str) -> Result<i64> {
    let meta = txn.open_table(META).map_err(internal)?;
    Ok(meta
        .get(key)
        .map_err(internal)?
        .map(|v| rev(v.value()))
        .unwrap_or(0))
}

impl Shared {
    /// A read transaction holding only durable writes, and the revision it is at.
    ///
    /// The writer commits a batch to redb while the batch's log record is still syncing, so
    /// for the length of one sync a fresh snapshot can be ahead of the published revision; a
    /// reader then waits rather than return a write that a crash could still undo.
    ///
    /// The snapshot is kept while waiting: once its revision is published all of it is
    /// durable, so one sync is the longest a read waits, however steadily writes arrive.
    fn begin_read(&self) -> Result<(redb::ReadTransaction, i64)> {
        let txn = self.db.begin_read().map_err(internal)?;
        let at = meta_get(&txn, META_REVISION)?;
        if at > self.revision.load(Ordering::SeqCst) {
            self.wait_published(at)?;
        }
        Ok((txn, at))
    }

    /// Blocks until `revision` is published; fails once the writer is broken, since then it
    /// never will be.
    fn wait_published(&self, revision: i64) -> Result<()> {
        let mut guard = self.published.lock().unwrap_or_else(|e| e.into_inner());
        // SeqCst pairs with `publish`: either it sees this waiter or this sees its revision.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            if self.broken.load(Ordering::SeqCst) {
                break Err(StorageError::new(
                    ErrorCode::Unavailable,
                    "",
                    self.revision.load(Ordering::SeqCst),
                    "storage writer failed",
                ));
            }
            if self.revision.load(Ordering::SeqCst) >= revision {
                break Ok(());
            }
            // The timeout only bounds the damage of a missed wake-up; `publish` signals.
            guard = self
                .published_cv
                .wait_timeout(guard, std::time::Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

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

// ---- record encoding -------------------------------------------------------------------

const KIND_ADDED: u8 = 1;
const KIND_MODIFIED: u8 = 2;
const KIND_DELETED: u8 = 3;

/// A decoded `log` record.
struct LogRecord<'a> {
    kind: EventKind,
    key: &'a str,
    create_revision: i64,
    /// Revision of the previous version of the key, 0 if there was none.
    prev_revision: i64,
    value: &'a [u8],
}

fn encode_log(kind: EventKind, key: &str, create: i64, prev: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(21 + key.len() + value.len());
    out.push(match kind {
        EventKind::Added => KIND_ADDED,
        EventKind::Modified => KIND_MODIFIED,
        EventKind::Deleted => KIND_DELETED,
    });
    out.extend_from_slice(&(create as u64).to_le_bytes());
    out.extend_from_slice(&(prev as u64).to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out
}

fn decode_log(raw: &[u8]) -> Result<LogRecord<'_>> {
    let bad = || corrupt("", "log record");
    if raw.len() < 21 {
        return Err(bad());
    }
    let kind = match raw[0] {
        KIND_ADDED => EventKind::Added,
        KIND_MODIFIED => EventKind::Modified,
        KIND_DELETED => EventKind::Deleted,
        _ => return Err(bad()),
    };
    let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
    let key_len = u32::from_le_bytes(raw[17..21].try_into().expect("4 bytes")) as usize;
    let key = raw
        .get(21..21 + key_len)
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(bad)?;
    Ok(LogRecord {
        kind,
        key,
        create_revision: rev(u64_at(1)),
        prev_revision: rev(u64_at(9)),
        value: &raw[21 + key_len..],
    })
}

fn encode_current(create: i64, modified: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&(create as u64).to_le_bytes());
    out.extend_from_slice(&(modified as u64).to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn decode_current(key: &str, raw: &[u8]) -> Result<KeyValue> {
    if raw.len() < 16 {
        return Err(corrupt(key, "current record"));
    }
    let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(&raw[16..]),
        create_revision: rev(u64_at(0)),
        mod_revision: rev(u64_at(8)),
    })
}

// ---- writer ----------------------------------------------------------------------------

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
fn replay(db: &Database, revision: i64, records: &[wal::Record]) -> Result<i64> {
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
        .map(|v| decode_current(key, v.value()))
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
                .insert(key, encode_current(r, r, value).as_slice())
                .map_err(internal)?;
            let kv = KeyValue {
                key: key.to_owned(),
                value: value.clone(),
                create_revision: r,
                mod_revision: r,
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
                .insert(
                    key,
                    encode_current(old.create_revision, r, value).as_slice(),
                )
                .map_err(internal)?;
            let kv = KeyValue {
                key: key.to_owned(),
                value: value.clone(),
                create_revision: old.create_revision,
                mod_revision: r,
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
                key: key.to_owned(),
                value: old.value.clone(),
                create_revision: old.create_revision,
                mod_revision: r,
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

fn future_revision(prefix: &str, requested: i64, now: i64) -> StorageError {
    StorageError::new(
        ErrorCode::Unavailable,
        prefix,
        now,
        format!("revision {requested} is in the future (current {now})"),
    )
}

fn empty_kv(revision: i64) -> KeyValue {
    KeyValue {
        key: String::new(),
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: revision,
    }
}

// ---- reads -----------------------------------------------------------------------------

fn list_blocking(s: &Shared, prefix: &str, options: &ListOptions) -> Result<ListResult> {
    let start = ListStart::resolve(prefix, options)?;
    let (txn, now) = s.begin_read()?;
    let compacted = meta_get(&txn, META_COMPACTED)?;
    let at = start.revision.unwrap_or(now);
    if now < start.min_revision {
        return Err(future_revision(prefix, start.min_revision, now));
    }
    if at < compacted {
        return Err(StorageError::compacted(prefix, at, compacted));
    }
    if at > now {
        return Err(future_revision(prefix, at, now));
    }
    let log = txn.open_table(LOG).map_err(internal)?;
    let current = txn.open_table(CURRENT).map_err(internal)?;
    let in_range = |k: &str| k.starts_with(prefix) && k >= start.start_key.as_str();

    // Undo the events after `at`, newest first, so the last write per key wins and leaves
    // the key's state at `at` (None: it did not exist then).
    let mut undo: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
    if at < now {
        for entry in log.range((at as u64 + 1)..).map_err(internal)?.rev() {
            let (_, v) = entry.map_err(internal)?;
            let rec = decode_log(v.value())?;
            if !in_range(rec.key) {
                continue;
            }
            let before = if rec.kind == EventKind::Added || rec.prev_revision == 0 {
                None
            } else {
                let prev = log
                    .get(rec.prev_revision as u64)
                    .map_err(internal)?
                    .ok_or_else(|| corrupt(rec.key, "dangling previous-version pointer"))?;
                let p = decode_log(prev.value())?;
                Some(KeyValue {
                    key: rec.key.to_owned(),
                    value: Bytes::copy_from_slice(p.value),
                    create_revision: p.create_revision,
                    mod_revision: rec.prev_revision,
                })
            };
            undo.insert(rec.key.to_owned(), before);
        }
    }

    let limit = if options.limit > 0 {
        options.limit as usize
    } else {
        usize::MAX
    };
    let mut page = Page {
        limit,
        items: Vec::new(),
        next_key: None,
        remaining: 0,
    };
    // Merge the current state with the undo map, both in key order; the undo map wins.
    let mut undo_iter = undo.into_iter().peekable();
    for entry in current
        .range::<&str>(start.start_key.as_str()..)
        .map_err(internal)?
    {
        let (k, v) = entry.map_err(internal)?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        let mut overridden = false;
        while let Some((uk, _)) = undo_iter.peek() {
            if uk.as_str() > key {
                break;
            }
            let (uk, before) = undo_iter.next().expect("peeked");
            overridden = uk == key;
            if let Some(kv) = before {
                page.push(&uk, || Ok(kv))?;
            }
        }
        if !overridden {
            page.push(key, || decode_current(key, v.value()))?;
        }
    }
    for (uk, before) in undo_iter {
        if let Some(kv) = before {
            page.push(&uk, || Ok(kv))?;
        }
    }
    let continue_token = page
        .next_key
        .as_deref()
        .map(|k| ContinueToken::encode(prefix, at, k));
    Ok(ListResult {
        items: page.items,
        revision: at,
        remaining: continue_token.as_ref().map(|_| page.remaining),
        continue_token,
    })
}

/// Accumulates one list page and counts what follows it.
struct Page {
    limit: usize,
    items: Vec<KeyValue>,
    next_key: Option<String>,
    remaining: i64,
}

impl Page {
    /// Adds `key`, building its value only when it lands on the page.
    fn push(&mut self, key: &str, make: impl FnOnce() -> Result<KeyValue>) -> Result<()> {
        if self.items.len() < self.limit {
            self.items.push(make()?);
        } else {
            if self.next_key.is_none() {
                self.next_key = Some(key.to_owned());
            }
            self.remaining += 1;
        }
        Ok(())
    }
}

// ---- watch -----------------------------------------------------------------------------

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
}

impl super::WatchCursor for WatchState {
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
            if !self.live {
                if let Err(e) = self.read_history().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            let rx = self.rx.as_mut().expect("live watchers are subscribed");
            match rx.recv().await {
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
            let prev = log
                .get(rec.prev_revision as u64)
                .map_err(internal)?
                .ok_or_else(|| corrupt(rec.key, "dangling previous-version pointer"))?;
            Some(Bytes::copy_from_slice(decode_log(prev.value())?.value))
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
