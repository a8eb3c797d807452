//! Write-ahead log of the embedded store: one pre-allocated file of checksummed batch records.
//!
//! redb's durable commit writes a dozen scattered pages and spends milliseconds of CPU, so the
//! writer makes a batch durable here instead: one positioned write into space that already
//! exists on disk and one `fdatasync`, which then has no file metadata to commit. redb gets the
//! batch as a non-durable commit (visible to readers at once) and is made durable now and then
//! by a checkpoint, after which the log starts again at offset 0.
//!
//! A record is a header (magic, payload length, first and last revision, checksum over header
//! and payload) and an opaque payload. Replay reads records from offset 0 while each one is
//! whole, its checksum matches and its revisions continue the previous record's. A torn last
//! record fails its checksum: it was never acknowledged, so dropping it loses nothing. Records
//! left from before a checkpoint hold revisions the checkpoint already covers, so they can never
//! continue the chain of newer records written over them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: u32 = u32::from_le_bytes(*b"KBWL");
const HEADER: usize = 32;
/// Zeroes written per call while pre-allocating.
const FILL_CHUNK: usize = 1 << 20;

/// One record found by [`Wal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub first_revision: i64,
    pub last_revision: i64,
    pub payload: Vec<u8>,
}

/// The open log: appends go to `offset`, the file is `capacity` bytes long.
pub(super) struct Wal {
    file: File,
    offset: u64,
    capacity: u64,
}

/// The log's file for the database file at `db`: the same name with `.wal` appended.
pub(super) fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

impl Wal {
    /// Opens (or creates) the log at `path`, pre-allocated to `capacity` bytes, and returns it
    /// with the chain of valid records it holds, oldest first. Appends start at offset 0: the
    /// caller replays the records and checkpoints before writing.
    pub fn open(path: &Path, capacity: u64) -> io::Result<(Self, Vec<Record>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        let records = scan(&file, len)?;
        if len < capacity {
            fill_zeroes(&file, len, capacity)?;
            file.sync_all()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                // The new file's directory entry must survive a crash as well.
                File::open(dir)?.sync_all()?;
            }
        }
        let capacity = capacity.max(len);
        Ok((
            Self {
                file,
                offset: 0,
                capacity,
            },
            records,
        ))
    }

    /// Whether a record with a payload of `len` bytes fits after the current offset.
    pub fn fits(&self, len: usize) -> bool {
        self.offset + (HEADER + len) as u64 <= self.capacity
    }

    /// Bytes written since the last [`Wal::reset`].
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.offset
    }

    /// Writes one record holding revisions `first..=last` and makes it durable. The caller has
    /// checked [`Wal::fits`]. On error the offset is unchanged, so nothing after a failed record
    /// continues the chain.
    pub fn append(&mut self, first: i64, last: i64, payload: &[u8]) -> io::Result<()> {
        debug_assert!(self.fits(payload.len()), "caller checks fits()");
        let mut buf = Vec::with_capacity(HEADER + payload.len());
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(first as u64).to_le_bytes());
        buf.extend_from_slice(&(last as u64).to_le_bytes());
        buf.extend_from_slice(&checksum(&buf, payload).to_le_bytes());
        buf.extend_from_slice(payload);
        self.file.write_all_at(&buf, self.offset)?;
        self.file.sync_data()?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Starts again at offset 0; called once every record is durable elsewhere.
    pub fn reset(&mut self) {
        self.offset = 0;
    }
}

/// First 8 bytes of SHA-256 over the header's first 24 bytes and the payload.
fn checksum(header: &[u8], payload: &[u8]) -> u64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&header[..24]);
    ctx.update(payload);
    let digest = ctx.finish();
    u64::from_le_bytes(digest.as_ref()[..8].try_into().expect("8 bytes"))
}

fn fill_zeroes(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeroes = vec![0u8; FILL_CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(FILL_CHUNK as u64) as usize;
        file.write_all_at(&zeroes[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The chain of whole, checksummed, contiguous records from offset 0.
///
/// Reads record by record rather than the whole (mostly zero) file, so opening does not hold
/// the log's full size in memory.
fn scan(file: &File, len: u64) -> io::Result<Vec<Record>> {
    let mut records: Vec<Record> = Vec::new();
    let mut at = 0u64;
    let mut header = [0u8; HEADER];
    while at + HEADER as u64 <= len {
        file.read_exact_at(&mut header, at)?;
        let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4"));
        let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8"));
        if u32_at(0) != MAGIC {
            break;
        }
        let payload_len = u32_at(4) as u64;
        if at + HEADER as u64 + payload_len > len {
            break;
        }
        let mut payload = vec![0u8; payload_len as usize];
        file.read_exact_at(&mut payload, at + HEADER as u64)?;
        if checksum(&header, &payload) != u64_at(24) {
            break;
        }
        let (first, last) = (u64_at(8) as i64, u64_at(16) as i64);
        let continues = records.last().is_none_or(|p| first == p.last_revision + 1);
        if !continues || last < first {
            break;
        }
        records.push(Record {
            first_revision: first,
            last_revision: last,
            payload,
        });
        at += HEADER as u64 + payload_len;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir, capacity: u64) -> (Wal, Vec<Record>) {
        Wal::open(&dir.path().join("db.wal"), capacity).expect("open wal")
    }

    #[test]
    fn appended_records_are_replayed_in_order_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, found) = open(&dir, 4096);
        assert!(found.is_empty());
        wal.append(2, 3, b"first").expect("append");
        wal.append(4, 4, b"second").expect("append");
        drop(wal);
        let (_, found) = open(&dir, 4096);
        let got: Vec<_> = found
            .iter()
            .map(|r| (r.first_revision, r.last_revision, r.payload.as_slice()))
            .collect();
        assert_eq!(got, [(2, 3, &b"first"[..]), (4, 4, &b"second"[..])]);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = open(&dir, 4096);
        wal.append(2, 2, b"kept").expect("append");
        let torn_at = wal.used();
        wal.append(3, 3, b"torn record payload").expect("append");
        drop(wal);
        // Cut the second record short, as a crash in the middle of its write would.
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join("db.wal"))
            .expect("open");
        file.write_all_at(&[0u8; 8], torn_at + HEADER as u64 + 4)
            .expect("tear");
        let (_, found) = open(&dir, 4096);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].payload, b"kept");
    }

    #[test]
    fn records_older_than_a_reset_do_not_continue_the_new_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = open(&dir, 4096);
        wal.append(2, 2, b"old-a").expect("append");
        wal.append(3, 3, b"old-b").expect("append");
        wal.reset();
        // Same length as "old-a", so "old-b" stays intact right behind it.
        wal.append(4, 4, b"new-a").expect("append");
        drop(wal);
        let (_, found) = open(&dir, 4096);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].payload, b"new-a");
    }

    #[test]
    fn a_record_that_does_not_fit_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = open(&dir, 64);
        assert!(wal.fits(32));
        assert!(!wal.fits(33));
    }
}
