//! The log backend (`--audit-log-path`, `-` for stdout): JSON lines appended to a file,
//! rotated when it would pass `--audit-log-maxsize` megabytes into
//! `<name>-<timestamp><.ext>` beside it (as upstream's lumberjack names backups), keeping at
//! most `--audit-log-maxbackup` of them, none older than `--audit-log-maxage` days, each
//! gzipped (`.gz`) with `--audit-log-compress`.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where and how the log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The file, or `-` for stdout.
    pub path: String,
    /// Rotate before the file passes this many megabytes (0: never).
    pub max_size_mb: u64,
    /// Backups kept (0: all).
    pub max_backups: usize,
    /// Days a backup is kept, by the time in its name (0: no limit).
    pub max_age_days: u64,
    /// Whether backups are gzipped.
    pub compress: bool,
}

/// Opens the log and starts its writer; the queue to send events to.
pub fn start(config: LogConfig) -> std::io::Result<mpsc::Sender<Arc<Value>>> {
    let mut sink = Sink::open(config)?;
    let (tx, mut rx) = mpsc::channel::<Arc<Value>>(super::QUEUE);
    std::thread::Builder::new()
        .name("audit-log".into())
        .spawn(move || {
            let mut line = Vec::new();
            let mut write = |sink: &mut Sink, event: &Value| {
                line.clear();
                // Serializing a Value into memory cannot fail.
                let _ = serde_json::to_writer(&mut line, event);
                line.push(b'\n');
                sink.write(&line);
            };
            while let Some(event) = rx.blocking_recv() {
                write(&mut sink, &event);
                // Whatever else is queued goes in the same write burst, then to the file.
                while let Ok(event) = rx.try_recv() {
                    write(&mut sink, &event);
                }
                sink.flush();
            }
            sink.flush();
        })?;
    Ok(tx)
}

/// The open log file (or stdout) and its size.
struct Sink {
    config: LogConfig,
    out: Box<dyn Write + Send>,
    size: u64,
}

impl Sink {
    fn open(config: LogConfig) -> std::io::Result<Sink> {
        if config.path == "-" {
            return Ok(Sink {
                config,
                out: Box::new(std::io::BufWriter::new(std::io::stdout())),
                size: 0,
            });
        }
        let path = PathBuf::from(&config.path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Sink {
            config,
            out: Box::new(std::io::BufWriter::new(file)),
            size,
        })
    }

    fn write(&mut self, line: &[u8]) {
        let limit = self.config.max_size_mb * 1024 * 1024;
        if self.config.path != "-"
            && limit > 0
            && self.size + line.len() as u64 > limit
            && let Err(e) = self.rotate()
        {
            tracing::warn!(error = %e, "rotating the audit log failed");
        }
        match self.out.write_all(line) {
            Ok(()) => self.size += line.len() as u64,
            Err(e) => tracing::warn!(error = %e, "writing the audit log failed"),
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            tracing::warn!(error = %e, "writing the audit log failed");
        }
    }

    /// Moves the full file aside under a timestamped name, opens a new one and drops the
    /// oldest backups beyond the limit.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.flush();
        let path = PathBuf::from(&self.config.path);
        let now = time::OffsetDateTime::now_utc();
        let backup = backup_name(&path, &stamp_of(now));
        std::fs::rename(&path, &backup)?;
        if self.config.compress {
            gzip_file(&backup)?;
        }
        *self = Sink::open(self.config.clone())?;
        let mut backups = backups_of(&path);
        // The timestamps sort as the names do.
        backups.sort();
        let excess = match self.config.max_backups {
            0 => 0,
            keep => backups.len().saturating_sub(keep),
        };
        let oldest_kept = (self.config.max_age_days > 0).then(|| {
            let cutoff = now - time::Duration::days(self.config.max_age_days as i64);
            stamp_of(cutoff)
        });
        for (i, old) in backups.iter().enumerate() {
            let expired = oldest_kept.as_deref().is_some_and(|cutoff| {
                backup_stamp(&path, old).is_some_and(|s| s.as_str() < cutoff)
            });
            if i < excess || expired {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }
}

/// Replaces `file` by `file.gz`, as lumberjack compresses a backup.
fn gzip_file(file: &Path) -> std::io::Result<()> {
    let mut name = file.as_os_str().to_owned();
    name.push(".gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(PathBuf::from(name))?,
        flate2::Compression::default(),
    );
    std::io::copy(&mut std::fs::File::open(file)?, &mut encoder)?;
    encoder.finish()?;
    std::fs::remove_file(file)
}

/// lumberjack's backup timestamp: `2006-01-02T15-04-05.000`, UTC.
fn stamp_of(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The timestamp in the name of `backup`, a backup of the log at `path`.
fn backup_stamp(path: &Path, backup: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let name = backup.file_name()?.to_str()?;
    let rest = name.strip_prefix(stem)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let stamp = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => rest.strip_suffix(&format!(".{ext}"))?,
        None => rest,
    };
    Some(stamp.to_string())
}

/// `audit.log` → `audit-<stamp>.log`.
fn backup_name(path: &Path, stamp: &str) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}-{stamp}.{ext}"),
        None => format!("{stem}-{stamp}"),
    };
    path.with_file_name(name)
}

/// The backups of the log at `path`, in any order.
fn backups_of(path: &Path) -> Vec<PathBuf> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p != path
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{stem}-")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_at_its_size_and_keeps_its_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut sink = Sink::open(LogConfig {
            path: path.to_string_lossy().into(),
            max_size_mb: 1,
            max_backups: 2,
            max_age_days: 0,
            compress: false,
        })
        .unwrap();
        let line = vec![b'x'; 400 * 1024];
        for _ in 0..12 {
            sink.write(&line);
            // Distinct backup names need distinct milliseconds.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        sink.flush();
        assert!(std::fs::metadata(&path).unwrap().len() <= 1024 * 1024);
        assert_eq!(backups_of(&path).len(), 2);
    }

    #[test]
    fn backups_older_than_the_max_age_go_at_the_next_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let old = dir.path().join("audit-2020-01-02T03-04-05.000.log");
        let recent = backup_name(&path, &stamp_of(time::OffsetDateTime::now_utc()));
        std::fs::write(&old, "old\n").unwrap();
        std::fs::write(&recent, "recent\n").unwrap();
        assert_eq!(
            backup_stamp(&path, &old).as_deref(),
            Some("2020-01-02T03-04-05.000")
        );
        let mut sink = Sink::open(LogConfig {
            path: path.to_string_lossy().into(),
            max_size_mb: 1,
            max_backups: 0,
            max_age_days: 30,
            compress: true,
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        sink.write(&vec![b'x'; 1024 * 1024]);
        sink.write(b"more\n");
        assert!(!old.exists(), "older than 30 days");
        assert!(recent.exists());
        let backups = backups_of(&path);
        assert_eq!(backups.len(), 2);
        // The new backup is gzipped, and holds what was written.
        let gz = backups
            .iter()
            .find(|b| b.extension().is_some_and(|e| e == "gz"))
            .unwrap();
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap()),
            &mut text,
        )
        .unwrap();
        assert_eq!(text.len(), 1024 * 1024);
    }
}
