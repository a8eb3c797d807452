//! Storage benchmark: the embedded (redb) store and etcd side by side in one run, plus the
//! watch cache in front of each. Run with `cargo bench --bench storage --features etcd`
//! (without the feature only the embedded column is measured); prints one markdown table.
//!
//! Durability stays on for both: redb commits with fsync, etcd runs with its defaults. The
//! etcd server is a throw-away `etcd` (or `$ETCD_BIN`) on loopback with a temporary data dir,
//! plain HTTP, killed at the end. Every loop is bounded by a count and a time cap so the
//! whole run stays within a few minutes on a 2-core machine.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kubeboot::storage::cacher::{Cacher, CacherOptions};
use kubeboot::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use kubeboot::storage::{ListOptions, RevisionMatch, Storage, StorageError};

/// Objects written by the concurrent-create phase; the list and disk rows measure them.
const OBJECTS: usize = 10_000;
const CONCURRENT_WRITERS: usize = 16;
/// Upper bounds of the sequential-create phase.
const SEQUENTIAL_MAX: usize = 3_000;
const SEQUENTIAL_TIME_CAP: Duration = Duration::from_secs(5);
const LIST_RUNS: usize = 5;
const WATCHERS: usize = 100;
const WATCH_EVENTS: usize = 200;
/// A watcher that gets nothing for this long means a bug, not a slow machine.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Why a benchmark phase could not run.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    /// A storage call failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Temporary directories, files or the etcd process.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A watch ended or stalled before delivering every event.
    #[error("watch: {0}")]
    Watch(String),
    /// etcd did not come up.
    #[cfg(feature = "etcd")]
    #[error("etcd did not start: {0}")]
    EtcdStart(String),
    /// A spawned task panicked.
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

type Result<T, E = BenchError> = std::result::Result<T, E>;

/// One backend's figures.
#[derive(Debug, Default)]
struct Column {
    sequential_per_s: f64,
    concurrent_per_s: f64,
    list_ms: f64,
    cached_list_ms: f64,
    watch_ms: (f64, f64),
    cached_watch_ms: (f64, f64),
    disk_bytes: u64,
}

fn value() -> Bytes {
    Bytes::from(vec![b'x'; 1024])
}

/// Creates `OBJECTS` keys under `prefix` with `CONCURRENT_WRITERS` tasks; returns creates/s.
async fn concurrent_creates(store: &Arc<dyn Storage>, prefix: &str) -> Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENT_WRITERS {
        let store = store.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (w..OBJECTS).step_by(CONCURRENT_WRITERS) {
                store.create(&format!("{prefix}cm-{i:05}"), value()).await?;
            }
            Ok::<_, StorageError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(OBJECTS as f64 / start.elapsed().as_secs_f64())
}

/// One writer, one create at a time, until the count or the time cap; returns creates/s.
async fn sequential_creates(store: &dyn Storage, prefix: &str) -> Result<f64> {
    let start = Instant::now();
    let mut n = 0;
    while n < SEQUENTIAL_MAX && start.elapsed() < SEQUENTIAL_TIME_CAP {
        store.create(&format!("{prefix}cm-{n:05}"), value()).await?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Median wall time of `LIST_RUNS` lists of `prefix`, in ms; checks the item count.
async fn median_list_ms(store: &dyn Storage, prefix: &str, options: ListOptions) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..LIST_RUNS {
        let start = Instant::now();
        let list = store.list(prefix, options.clone()).await?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        if list.items.len() != OBJECTS {
            return Err(BenchError::Watch(format!(
                "list returned {} items, expected {OBJECTS}",
                list.items.len()
            )));
        }
    }
    Ok(percentile(&mut times, 50.0))
}

/// p50 and p99 in ms over every (watcher, event) pair: from just before the write call to
/// the watcher receiving the event. Writes are sequential, so each latency includes one
/// durable commit.
async fn watch_latency(store: &Arc<dyn Storage>, prefix: &str) -> Result<(f64, f64)> {
    let base = Instant::now();
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..WATCH_EVENTS).map(|_| 0.into()).collect());
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut w = store.watch(prefix, 0).await?;
        let prefix = prefix.to_owned();
        watchers.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(WATCH_EVENTS);
            while got.len() < WATCH_EVENTS {
                let ev = match tokio::time::timeout(HANG_GUARD, w.next()).await {
                    Ok(Some(Ok(ev))) => ev,
                    Ok(Some(Err(e))) => return Err(BenchError::Storage(e)),
                    Ok(None) => return Err(BenchError::Watch("stream ended".into())),
                    Err(_) => return Err(BenchError::Watch("no event within a minute".into())),
                };
                let received = base.elapsed().as_nanos() as u64;
                let i: usize = ev
                    .key
                    .strip_prefix(prefix.as_str())
                    .and_then(|k| k.parse().ok())
                    .ok_or_else(|| BenchError::Watch(format!("unexpected key {}", ev.key)))?;
                got.push((i, received));
            }
            Ok(got)
        }));
    }
    for (i, start) in starts.iter().enumerate() {
        start.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        store.create(&format!("{prefix}{i}"), value()).await?;
    }
    let mut latencies = Vec::with_capacity(WATCHERS * WATCH_EVENTS);
    for w in watchers {
        for (i, received) in w.await?? {
            let sent = starts[i].load(Ordering::Relaxed);
            latencies.push(received.saturating_sub(sent) as f64 / 1e6);
        }
    }
    Ok((
        percentile(&mut latencies, 50.0),
        percentile(&mut latencies, 99.0),
    ))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let idx = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[idx]
}

/// Runs every phase against `store`; `disk_bytes` reads the size of its data once the
/// `OBJECTS` objects are written, before anything else lands.
async fn measure(store: Arc<dyn Storage>, disk_bytes: impl Fn() -> u64) -> Result<Column> {
    let objects = "/registry/configmaps/bench/";
    let concurrent_per_s = concurrent_creates(&store, objects).await?;
    let disk_bytes = disk_bytes();
    let sequential_per_s = sequential_creates(&*store, "/registry/configmaps/sequential/").await?;
    let list_ms = median_list_ms(&*store, objects, ListOptions::default()).await?;
    let watch_ms = watch_latency(&store, "/registry/watch/direct/").await?;

    let cache: Arc<dyn Storage> = Arc::new(Cacher::new(
        store.clone(),
        "/registry/",
        CacherOptions {
            wait_timeout: HANG_GUARD,
            ..Default::default()
        },
    ));
    // resourceVersion "0": whatever the cache holds, once it has listed.
    let from_cache = ListOptions {
        revision_match: RevisionMatch::NotOlderThan,
        ..Default::default()
    };
    let cached_list_ms = median_list_ms(&*cache, objects, from_cache).await?;
    let cached_watch_ms = watch_latency(&cache, "/registry/watch/cached/").await?;
    Ok(Column {
        sequential_per_s,
        concurrent_per_s,
        list_ms,
        cached_list_ms,
        watch_ms,
        cached_watch_ms,
        disk_bytes,
    })
}

async fn measure_embedded() -> Result<Column> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeboot.redb");
    let store = Arc::new(EmbeddedStorage::open(&path, EmbeddedOptions::default())?);
    let file = path.clone();
    measure(store, move || file_len(&file)).await
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(feature = "etcd")]
mod etcd {
    //! A throw-away etcd on loopback, as the storage tests start it.

    use std::path::PathBuf;

    use super::*;
    use crate::support::bench::allocated_bytes;
    use crate::support::socket::free_port;
    use kubeboot::storage::etcd::{EtcdOptions, EtcdStorage};

    pub struct EtcdServer {
        child: std::process::Child,
        pub endpoint: String,
        pub data_dir: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Drop for EtcdServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl EtcdServer {
        pub async fn start() -> Result<Self> {
            let dir = tempfile::tempdir()?;
            let data_dir = dir.path().join("data");
            let log = std::fs::File::create(dir.path().join("etcd.log"))?;
            // etcd cannot take a listening socket from its parent: it binds free ports itself.
            let client = format!("http://127.0.0.1:{}", free_port());
            let peer = format!("http://127.0.0.1:{}", free_port());
            let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
            let child = std::process::Command::new(bin)
                .arg("--name=bench")
                .arg(format!("--data-dir={}", data_dir.display()))
                .arg(format!("--listen-client-urls={client}"))
                .arg(format!("--advertise-client-urls={client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=bench={peer}"))
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            let mut server = Self {
                child,
                endpoint: client,
                data_dir,
                _dir: dir,
            };
            let deadline = Instant::now() + HANG_GUARD;
            while Instant::now() < deadline {
                if let Some(status) = server.child.try_wait()? {
                    let log = std::fs::read_to_string(server._dir.path().join("etcd.log"))
                        .unwrap_or_default();
                    return Err(BenchError::EtcdStart(format!(
                        "exited with {status}:\n{log}"
                    )));
                }
                if let Ok(store) = server.connect().await
                    && store.current_revision().await.is_ok()
                {
                    return Ok(server);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(BenchError::EtcdStart("not answering after a minute".into()))
        }

        pub async fn connect(&self) -> Result<EtcdStorage> {
            Ok(EtcdStorage::connect(EtcdOptions {
                endpoints: vec![self.endpoint.clone()],
                connect_timeout: Some(Duration::from_secs(5)),
                ..Default::default()
            })
            .await?)
        }
    }

    /// Measures a fresh etcd; also returns the bytes its data dir holds (WAL included).
    pub async fn measure_etcd() -> Result<(Column, u64)> {
        let server = EtcdServer::start().await?;
        let store = Arc::new(server.connect().await?);
        // bbolt's file is what etcd reports as dbSize; the WAL is preallocated and counted apart.
        let db = server.data_dir.join("member/snap/db");
        let column = measure(store, move || file_len(&db)).await?;
        let dir_bytes = allocated_bytes(&server.data_dir);
        Ok((column, dir_bytes))
    }
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One table row: the measure, the embedded figure, the etcd figure (or why not) and how
/// many times better embedded is, where both exist.
fn row(name: &str, emb: String, etcd: Option<String>, ratio: Option<f64>) -> String {
    match etcd {
        Some(e) => {
            let r = ratio.map(|r| format!("{r:.1}×")).unwrap_or_default();
            format!("| {name} | {emb} | {e} | {r} |")
        }
        None => format!("| {name} | {emb} |"),
    }
}

fn print_table(emb: &Column, etcd: Option<&Column>) {
    let e = |f: &dyn Fn(&Column) -> String| etcd.map(f);
    let ratio = |f: &dyn Fn(&Column) -> f64, higher_is_better: bool| {
        etcd.map(|c| {
            if higher_is_better {
                f(emb) / f(c)
            } else {
                f(c) / f(emb)
            }
        })
    };
    if etcd.is_some() {
        println!("| measure | embedded (redb) | etcd 3.4 | embedded advantage |");
        println!("|---|---:|---:|---:|");
    } else {
        println!("| measure | embedded (redb) |");
        println!("|---|---:|");
    }
    let rate = |c: &Column| format!("{}/s", thousands(c.sequential_per_s));
    println!(
        "{}",
        row(
            "creates/s, 1 writer, sequential (1-KiB values)",
            rate(emb),
            e(&rate),
            ratio(&|c| c.sequential_per_s, true),
        )
    );
    let rate = |c: &Column| format!("{}/s", thousands(c.concurrent_per_s));
    println!(
        "{}",
        row(
            &format!("creates/s, {CONCURRENT_WRITERS} concurrent writers"),
            rate(emb),
            e(&rate),
            ratio(&|c| c.concurrent_per_s, true),
        )
    );
    let ms = |c: &Column| format!("{:.1} ms", c.list_ms);
    println!(
        "{}",
        row(
            &format!("list {OBJECTS} keys, backend (median of {LIST_RUNS})"),
            ms(emb),
            e(&ms),
            ratio(&|c| c.list_ms, false),
        )
    );
    let ms = |c: &Column| format!("{:.1} ms", c.cached_list_ms);
    println!(
        "{}",
        row(
            &format!("list {OBJECTS} keys, watch cache, rv=0 (median of {LIST_RUNS})"),
            ms(emb),
            e(&ms),
            None,
        )
    );
    let lat = |c: &Column| format!("{:.2} / {:.2} ms", c.watch_ms.0, c.watch_ms.1);
    println!(
        "{}",
        row(
            &format!("watch latency p50 / p99, {WATCHERS} watchers on the backend"),
            lat(emb),
            e(&lat),
            ratio(&|c| c.watch_ms.1, false),
        )
    );
    let lat = |c: &Column| format!("{:.2} / {:.2} ms", c.cached_watch_ms.0, c.cached_watch_ms.1);
    println!(
        "{}",
        row(
            &format!("watch latency p50 / p99, {WATCHERS} watchers on the watch cache"),
            lat(emb),
            e(&lat),
            ratio(&|c| c.cached_watch_ms.1, false),
        )
    );
    let disk = |c: &Column| mib(c.disk_bytes);
    println!(
        "{}",
        row(
            &format!("disk bytes per {OBJECTS} 1-KiB objects"),
            disk(emb),
            e(&disk),
            ratio(&|c| c.disk_bytes as f64, false),
        )
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let embedded = measure_embedded().await.expect("embedded benchmark");
        #[cfg(feature = "etcd")]
        let etcd = match etcd::measure_etcd().await {
            Ok(result) => Ok(result),
            Err(e) => Err(format!("etcd: not measured: {e}")),
        };
        #[cfg(not(feature = "etcd"))]
        let etcd: Result<(Column, u64), String> =
            Err("etcd: not compiled in (run `cargo bench --bench storage --features etcd`)".into());
        println!();
        match &etcd {
            Ok((column, _)) => print_table(&embedded, Some(column)),
            Err(_) => print_table(&embedded, None),
        }
        println!();
        match &etcd {
            Ok((_, dir_bytes)) => println!(
                "Disk: embedded = the redb file (its preallocated write-ahead log adds 32 MiB); \
                 etcd = its bbolt file (dbSize); etcd's whole data dir incl. the preallocated \
                 WAL holds {}.",
                mib(*dir_bytes)
            ),
            Err(why) => println!("{why}"),
        }
        println!(
            "Durable writes (one fdatasync per group commit, for redb into its write-ahead log; \
             etcd runs on \
             loopback without TLS); watch latency is from just before the write call to each \
             watcher receiving the event. Total run: {:.0} s.",
            started.elapsed().as_secs_f64()
        );
    });
}
