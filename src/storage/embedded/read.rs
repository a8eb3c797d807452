//! Reads on the embedded store: snapshots that hold only durable writes, get, count, and lists at
//! the current or a past revision (the current state with later log events undone).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use redb::ReadableDatabase;

use super::codec::{
    CURRENT, LOG, META_COMPACTED, META_REVISION, current_kv, decode_log, log_value, meta_get,
};
use super::{Shared, internal};
use crate::storage::{
    ContinueToken, ErrorCode, EventKind, KeyValue, ListOptions, ListResult, ListStart, Result,
    StorageError,
};

impl Shared {
    /// A read transaction holding only durable writes, and the revision it is at.
    ///
    /// The writer commits a batch to redb while the batch's log record is still syncing, so
    /// for the length of one sync a fresh snapshot can be ahead of the published revision; a
    /// reader then waits rather than return a write that a crash could still undo.
    ///
    /// The snapshot is kept while waiting: once its revision is published all of it is
    /// durable, so one sync is the longest a read waits, however steadily writes arrive.
    pub(super) fn begin_read(&self) -> Result<(redb::ReadTransaction, i64)> {
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
}

/// The current value of `key`.
pub(super) fn get_blocking(s: &Shared, key: &str) -> Result<Option<KeyValue>> {
    let (txn, _) = s.begin_read()?;
    let current = txn.open_table(CURRENT).map_err(internal)?;
    let found = current.get(key).map_err(internal)?;
    let Some(found) = found else {
        return Ok(None);
    };
    let log = txn.open_table(LOG).map_err(internal)?;
    current_kv(&log, key, found.value()).map(Some)
}

/// How many keys are under `prefix` now.
pub(super) fn count_blocking(s: &Shared, prefix: &str) -> Result<i64> {
    let (txn, _) = s.begin_read()?;
    let current = txn.open_table(CURRENT).map_err(internal)?;
    let mut n = 0;
    for entry in current.range::<&str>(prefix..).map_err(internal)? {
        let (k, _) = entry.map_err(internal)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// One page of the keys under `prefix`, at the revision and from the key `options` ask for.
pub(super) fn list_blocking(s: &Shared, prefix: &str, options: &ListOptions) -> Result<ListResult> {
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
                // Every version of a key shares its create revision.
                Some(KeyValue {
                    key: rec.key.into(),
                    value: log_value(&log, rec.key, rec.prev_revision)?,
                    create_revision: rec.create_revision,
                    mod_revision: rec.prev_revision,
                    layout: Default::default(),
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
            page.push(key, || current_kv(&log, key, v.value()))?;
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

/// The error for a read at a revision the store has not reached.
fn future_revision(prefix: &str, requested: i64, now: i64) -> StorageError {
    StorageError::new(
        ErrorCode::Unavailable,
        prefix,
        now,
        format!("revision {requested} is in the future (current {now})"),
    )
}
