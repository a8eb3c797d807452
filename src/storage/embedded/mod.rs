//! Embedded storage backend on redb: one file, durable group commits, watch from a disk log.
//!
//! Layout (three tables, kine-like):
//! - `log`: revision → event record (kind, key, create revision, pointer to the previous
//!   version's revision, value). The append-only history that watches replay and past-revision
//!   lists undo. Deletes store no value: the pointer leads to it, so history is never duplicated.
//! - `current`: key → (create revision, mod revision). The live state, so count and the keys of
//!   a current list are one ordered range scan; each value is the `log` record at its mod
//!   revision, so every version is stored once (layout 2; layout 1 also copied the value here,
//!   and opening such a file cuts the copies off).
//! - `meta`: the current and compacted revisions, and the layout.
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
//!
//! The modules follow that shape: `codec` (the tables and their record layouts), `writer` (the
//! writer and committer threads, batching, the log's sync, replay and compaction), `read` (durable
//! snapshots, get, count and lists), `watch` (history replay and the broadcast to watchers) and
//! `wal` (the log file).

mod codec;
mod read;
mod wal;
mod watch;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableTable};
use tokio::sync::{broadcast, oneshot};

use super::{
    ErrorCode, KeyValue, ListOptions, ListResult, ProgressRequests, Result, Storage, StorageError,
    WatchEvent, WatchStream,
};
use codec::{
    CURRENT, CURRENT_LEN, FORMAT, LOG, META, META_COMPACTED, META_FORMAT, META_REVISION, rev,
};
use writer::{Op, Request};

/// Tuning of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Committed events buffered for live watchers; a watcher further behind is dropped with
    /// `WatchLagged`.
    pub watch_buffer: usize,
    /// Most requests committed in one transaction.
    pub max_batch: usize,
    /// Memory redb may use for its page cache and write buffer (half of it at most).
    pub cache_bytes: usize,
}

/// redb's default cache is 1 GiB, which it fills with every page it writes: a second copy of
/// the objects the watch caches already hold. Reads that miss it come from the kernel's page
/// cache, and writes need only the pages of one checkpoint interval.
const CACHE_BYTES: usize = 32 << 20;

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            watch_buffer: 10_000,
            max_batch: 1_024,
            cache_bytes: CACHE_BYTES,
        }
    }
}

/// The redb-backed [`Storage`].
pub struct EmbeddedStorage {
    path: std::path::PathBuf,
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

impl EmbeddedStorage {
    /// Opens (or creates) the database file at `path` and starts its writer thread.
    ///
    /// A file left by a killed process is recovered by redb; every acknowledged write is in it.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self> {
        let path = path.as_ref();
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(internal)?;
        let (revision, compacted) = init_tables(&db)?;
        let wal_path = wal::path_for(path);
        let (mut wal, records) = wal::Wal::open(&wal_path, writer::WAL_CAPACITY)
            .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?;
        let revision = writer::replay(&db, revision, &records)?;
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
        let (tx, writer) = writer::spawn(shared.clone(), events, wal, options.max_batch.max(1))?;
        tracing::debug!(path = %path.display(), revision, compacted, "embedded storage opened");
        Ok(Self {
            path: path.to_path_buf(),
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
        self.read(move |s| read::get_blocking(s, &key)).await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        self.read(move |s| read::list_blocking(s, &prefix, &options))
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
        self.read(move |s| read::count_blocking(s, &prefix)).await
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        watch::watch(&self.shared, prefix, from_revision, None)
    }

    fn reports_progress(&self) -> bool {
        true
    }

    async fn compacted_revision(&self) -> Result<Option<i64>> {
        Ok(Some(self.shared.compacted.load(Ordering::Acquire)))
    }

    async fn watch_with_progress(
        &self,
        prefix: &str,
        from_revision: i64,
        requests: ProgressRequests,
    ) -> Result<WatchStream> {
        watch::watch(&self.shared, prefix, from_revision, Some(&requests))
    }

    async fn size(&self) -> Result<Option<(String, i64)>> {
        let bytes = std::fs::metadata(&self.path)
            .map_err(|e| StorageError::with_source(ErrorCode::Internal, "", e))?
            .len();
        Ok(Some((
            String::new(),
            i64::try_from(bytes).unwrap_or(i64::MAX),
        )))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        if revision <= self.shared.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        self.submit(Op::Compact { revision }).await.map(|_| ())
    }
}

/// A redb error as a storage error: `Unavailable` when another process holds the file.
fn internal(e: impl Into<redb::Error>) -> StorageError {
    let e: redb::Error = e.into();
    let code = match e {
        redb::Error::DatabaseAlreadyOpen => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    StorageError::with_source(code, "", e)
}

/// Creates the tables on first open, brings an older layout up to [`FORMAT`] and returns
/// (revision, compacted).
fn init_tables(db: &Database) -> Result<(i64, i64)> {
    let txn = db.begin_write().map_err(internal)?;
    let out = {
        txn.open_table(LOG).map_err(internal)?;
        let mut current = txn.open_table(CURRENT).map_err(internal)?;
        let mut meta = txn.open_table(META).map_err(internal)?;
        let format = meta.get(META_FORMAT).map_err(internal)?.map(|v| v.value());
        match format {
            Some(FORMAT) => {}
            Some(newer) => {
                return Err(StorageError::new(
                    ErrorCode::Internal,
                    "",
                    0,
                    format!(
                        "the database file has layout {newer}; this kubeboot reads layout {FORMAT} and older"
                    ),
                ));
            }
            None => {
                drop_current_values(&mut current)?;
                meta.insert(META_FORMAT, FORMAT).map_err(internal)?;
            }
        }
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

/// Layout 1 kept a copy of each live value in `current`; the `log` record it points at holds
/// the same bytes, so cutting the copy off loses nothing.
fn drop_current_values(current: &mut redb::Table<&str, &[u8]>) -> Result<()> {
    let mut long = Vec::new();
    for entry in current.iter().map_err(internal)? {
        let (k, v) = entry.map_err(internal)?;
        if v.value().len() > CURRENT_LEN {
            long.push((k.value().to_owned(), v.value()[..CURRENT_LEN].to_vec()));
        }
    }
    if !long.is_empty() {
        tracing::info!(keys = long.len(), "storage moved to layout {FORMAT}");
    }
    for (k, v) in long {
        current.insert(k.as_str(), v.as_slice()).map_err(internal)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EventKind;
    use codec::encode_log;
    use redb::ReadableDatabase;

    /// A layout-1 file: `a` created at 2 and updated at 3, `current` holding a copy of the value.
    fn write_layout_1(path: &Path) {
        let db = Database::create(path).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let mut log = txn.open_table(LOG).expect("log");
            let added = encode_log(EventKind::Added, "/a", 2, 0, b"one");
            let modified = encode_log(EventKind::Modified, "/a", 2, 2, b"two");
            log.insert(2, added.as_slice()).expect("insert");
            log.insert(3, modified.as_slice()).expect("insert");
            let mut current = txn.open_table(CURRENT).expect("current");
            let mut record = codec::encode_current(2, 3).to_vec();
            record.extend_from_slice(b"two");
            current.insert("/a", record.as_slice()).expect("insert");
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert(META_REVISION, 3).expect("insert");
        }
        txn.commit().expect("commit");
    }

    #[tokio::test]
    async fn a_layout_1_file_opens_with_its_data_and_stores_each_value_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        write_layout_1(&path);

        let store = EmbeddedStorage::open(&path, EmbeddedOptions::default()).expect("open");
        let kv = store.get("/a").await.expect("get").expect("found");
        assert_eq!(
            (&kv.value[..], kv.create_revision, kv.mod_revision),
            (&b"two"[..], 2, 3)
        );
        let past = store
            .list(
                "/",
                ListOptions {
                    revision: Some(2),
                    ..Default::default()
                },
            )
            .await
            .expect("list at 2");
        assert_eq!(past.items.len(), 1);
        assert_eq!(&past.items[0].value[..], b"one");
        drop(store);

        let db = Database::create(&path).expect("reopen");
        let txn = db.begin_read().expect("read");
        let current = txn.open_table(CURRENT).expect("current");
        let record = current.get("/a").expect("get").expect("record");
        assert_eq!(record.value(), codec::encode_current(2, 3).as_slice());
        let meta = txn.open_table(META).expect("meta");
        let format = meta.get(META_FORMAT).expect("get").map(|v| v.value());
        assert_eq!(format, Some(FORMAT));
    }

    #[test]
    fn a_file_from_a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            txn.open_table(META)
                .expect("meta")
                .insert(META_FORMAT, FORMAT + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = EmbeddedStorage::open(&path, EmbeddedOptions::default())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("layout 3"), "{err}");
    }
}
