//! How the embedded store lays out its redb tables: the tables, the `log` and `current` records
//! (revisions as little-endian u64), and the `meta` revisions.

use bytes::Bytes;
use redb::{ReadableTable, TableDefinition};

use super::internal;
use crate::storage::{ErrorCode, EventKind, KeyValue, Result, StorageError};

/// Revision → event record: the history watches replay and past-revision lists undo.
pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Key → (create revision, mod revision): the live state. The value is the `log` record at the
/// mod revision, so each version is stored once.
pub(super) const CURRENT: TableDefinition<&str, &[u8]> = TableDefinition::new("current");
/// The current and compacted revisions, under the two keys below.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const META_REVISION: &str = "revision";
pub(super) const META_COMPACTED: &str = "compacted";
/// The layout version under `meta`; absent in files written before `current` lost its values.
pub(super) const META_FORMAT: &str = "format";
/// The layout this code reads and writes.
pub(super) const FORMAT: u64 = 2;

/// The error for a record that does not decode.
pub(super) fn corrupt(key: &str, what: &str) -> StorageError {
    StorageError::new(
        ErrorCode::Internal,
        key,
        0,
        format!("corrupt record: {what}"),
    )
}

/// A stored revision as the API's i64.
pub(super) fn rev(r: u64) -> i64 {
    // Revisions come from an i64 counter, so they always fit.
    r as i64
}

/// A `meta` value in the snapshot `txn`, 0 if unset.
pub(super) fn meta_get(txn: &redb::ReadTransaction, key: &str) -> Result<i64> {
    let meta = txn.open_table(META).map_err(internal)?;
    Ok(meta
        .get(key)
        .map_err(internal)?
        .map(|v| rev(v.value()))
        .unwrap_or(0))
}

/// The event kind byte that opens a `log` record.
const KIND_ADDED: u8 = 1;
const KIND_MODIFIED: u8 = 2;
const KIND_DELETED: u8 = 3;

/// A decoded `log` record.
pub(super) struct LogRecord<'a> {
    pub(super) kind: EventKind,
    pub(super) key: &'a str,
    pub(super) create_revision: i64,
    /// Revision of the previous version of the key, 0 if there was none.
    pub(super) prev_revision: i64,
    pub(super) value: &'a [u8],
}

/// A `log` record: kind, create revision, previous version's revision, key length, key, value.
pub(super) fn encode_log(
    kind: EventKind,
    key: &str,
    create: i64,
    prev: i64,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(21 + key.len() + value.len());
    out.push(match kind {
        EventKind::Added => KIND_ADDED,
        EventKind::Modified => KIND_MODIFIED,
        EventKind::Deleted => KIND_DELETED,
        // The writer logs changes only; progress exists on watch streams alone.
        EventKind::Progress => unreachable!("a progress event is never logged"),
    });
    out.extend_from_slice(&(create as u64).to_le_bytes());
    out.extend_from_slice(&(prev as u64).to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out
}

/// Decodes a `log` record, borrowing its key and value from `raw`.
pub(super) fn decode_log(raw: &[u8]) -> Result<LogRecord<'_>> {
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

/// A `current` record: create revision, mod revision.
pub(super) fn encode_current(create: i64, modified: i64) -> [u8; CURRENT_LEN] {
    let mut out = [0; CURRENT_LEN];
    out[..8].copy_from_slice(&(create as u64).to_le_bytes());
    out[8..].copy_from_slice(&(modified as u64).to_le_bytes());
    out
}

/// Bytes of a `current` record; format 1 appended the value after them.
pub(super) const CURRENT_LEN: usize = 16;

/// The (create, mod) revisions of `key`'s `current` record.
pub(super) fn decode_current(key: &str, raw: &[u8]) -> Result<(i64, i64)> {
    if raw.len() != CURRENT_LEN {
        return Err(corrupt(key, "current record"));
    }
    let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
    Ok((rev(u64_at(0)), rev(u64_at(8))))
}

/// The value `log` holds for `key` at `revision`: where `current` and every previous-version
/// pointer lead.
pub(super) fn log_value(
    log: &impl ReadableTable<u64, &'static [u8]>,
    key: &str,
    revision: i64,
) -> Result<Bytes> {
    let raw = log
        .get(revision as u64)
        .map_err(internal)?
        .ok_or_else(|| corrupt(key, "dangling version pointer"))?;
    Ok(Bytes::copy_from_slice(decode_log(raw.value())?.value))
}

/// The live key-value of `key` from its `current` record and the `log` record it points at.
pub(super) fn current_kv(
    log: &impl ReadableTable<u64, &'static [u8]>,
    key: &str,
    raw: &[u8],
) -> Result<KeyValue> {
    let (create_revision, mod_revision) = decode_current(key, raw)?;
    Ok(KeyValue {
        key: key.into(),
        value: log_value(log, key, mod_revision)?,
        create_revision,
        mod_revision,
        layout: Default::default(),
    })
}
