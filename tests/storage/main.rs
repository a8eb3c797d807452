//! Storage integration tests: the conformance suite per backend plus backend-specific cases,
//! in one test binary to keep link time down.

#[macro_use]
mod conformance;

use std::sync::Arc;

use bytes::Bytes;
use kubeboot::storage::cacher::{Cacher, CacherOptions};
use kubeboot::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use kubeboot::storage::{ErrorCode, ListOptions, Storage};

use conformance::{Fixture, next_event};

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "etcd")]
mod cluster;

/// A fresh embedded store in its own temporary directory.
async fn embedded_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStorage::open(dir.path().join("kubeboot.redb"), EmbeddedOptions::default())
        .expect("open embedded store");
    Fixture {
        store: Arc::new(store),
        prefix: "/registry/".into(),
        _guard: Box::new(dir),
    }
}

mod embedded_conformance {
    conformance_tests!(super::embedded_fixture);
}

/// Cacher options for tests: waits for the cache are bounded by the hang guard instead of
/// upstream's 3 s, so a loaded machine makes a case slower, never red.
fn cacher_options() -> CacherOptions {
    CacherOptions {
        wait_timeout: conformance::HANG_GUARD,
        ..Default::default()
    }
}

/// The watch cache in front of a fresh embedded store.
async fn cached_embedded_fixture() -> Fixture {
    let fx = embedded_fixture().await;
    Fixture {
        store: Arc::new(Cacher::new(fx.store, &fx.prefix, cacher_options())),
        prefix: fx.prefix,
        _guard: fx._guard,
    }
}

mod cached_embedded_conformance {
    conformance_tests!(super::cached_embedded_fixture);
}

mod embedded {
    use super::*;

    const CHILD_ENV: &str = "KUBEBOOT_STORAGE_CRASH_CHILD";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopening_keeps_data_revisions_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let (rev, compacted) = {
            let s = EmbeddedStorage::open(&path, EmbeddedOptions::default()).unwrap();
            s.create("/r/a", Bytes::from_static(b"1")).await.unwrap();
            let c = s.create("/r/b", Bytes::from_static(b"2")).await.unwrap();
            s.delete("/r/a", None).await.unwrap();
            s.compact(c).await.unwrap();
            (s.current_revision().await.unwrap(), c)
        };
        let s = EmbeddedStorage::open(&path, EmbeddedOptions::default()).unwrap();
        assert_eq!(s.current_revision().await.unwrap(), rev);
        assert!(s.get("/r/a").await.unwrap().is_none());
        assert_eq!(
            s.get("/r/b").await.unwrap().unwrap().mod_revision,
            compacted
        );
        let e = s
            .watch("/r/", compacted - 1)
            .await
            .err()
            .expect("compacted");
        assert_eq!(e.code, ErrorCode::Compacted);
        // New writes continue the revision sequence.
        assert_eq!(s.create("/r/c", Bytes::new()).await.unwrap(), rev + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watcher_lagging_past_the_buffer_is_dropped_with_watch_lagged() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            watch_buffer: 4,
            ..Default::default()
        };
        let s = EmbeddedStorage::open(dir.path().join("db.redb"), options).unwrap();
        let mut w = s.watch("/lag/", 0).await.unwrap();
        // Catch the watcher up to live mode before the burst.
        let r = s.create("/lag/first", Bytes::new()).await.unwrap();
        assert_eq!(next_event(&mut w).await.unwrap().revision, r);
        for i in 0..20 {
            s.create(&format!("/lag/k{i}"), Bytes::new()).await.unwrap();
        }
        let err = loop {
            match next_event(&mut w).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.code, ErrorCode::WatchLagged, "{err}");
        assert!(
            futures::StreamExt::next(&mut w).await.is_none(),
            "stream ends"
        );
        // Writers were never blocked, and a re-watch from the last seen revision catches up.
        let mut again = s.watch("/lag/", r).await.unwrap();
        for _ in 0..20 {
            next_event(&mut again).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_the_store_ends_live_watches_with_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let s =
            EmbeddedStorage::open(dir.path().join("db.redb"), EmbeddedOptions::default()).unwrap();
        let mut w = s.watch("/c/", 0).await.unwrap();
        s.create("/c/x", Bytes::new()).await.unwrap();
        next_event(&mut w).await.unwrap();
        drop(s);
        let e = next_event(&mut w).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
    }

    /// Child half of the crash test: writes under load forever, printing each acknowledged
    /// write. Does nothing unless started by the parent with the env var set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_child() {
        let Ok(path) = std::env::var(CHILD_ENV) else {
            return;
        };
        let s = Arc::new(EmbeddedStorage::open(path, EmbeddedOptions::default()).unwrap());
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/t{t}/k{i}");
                    let rev = s.create(&key, Bytes::from(key.clone())).await.unwrap();
                    println!("ACK {rev} {key}");
                    if i % 3 == 0 {
                        let kv = s
                            .guaranteed_update(&key, Some(rev), Bytes::from(format!("{key}+")))
                            .await
                            .unwrap();
                        println!("UPD {} {key}", kv.mod_revision);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    /// A child writing under load is SIGKILLed; every write it acknowledged survives reopening.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_writes_survive_sigkill() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.redb");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "embedded::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child test process");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut acked = std::collections::BTreeMap::new();
        let mut killed = false;
        let mut line = String::new();
        while {
            line.clear();
            stdout.read_line(&mut line).unwrap() > 0
        } {
            // A line cut short by the kill was never fully acknowledged to us: skip it.
            if line.ends_with('\n') {
                record_ack(&line, &mut acked);
            }
            if !killed && acked.len() >= 400 {
                child.kill().expect("SIGKILL child");
                killed = true;
            }
        }
        child.wait().unwrap();
        assert!(
            killed,
            "child exited before writing enough: {} acks",
            acked.len()
        );

        let s = EmbeddedStorage::open(&path, EmbeddedOptions::default()).expect("reopen");
        let current = s.current_revision().await.unwrap();
        for (key, (rev, updated)) in &acked {
            let kv = s
                .get(key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("lost {key}"));
            assert!(
                kv.mod_revision >= *rev,
                "{key} at {} < acked {rev}",
                kv.mod_revision
            );
            assert!(current >= kv.mod_revision);
            if *updated {
                assert_eq!(kv.value, Bytes::from(format!("{key}+")));
            }
        }
        // The file is consistent: lists, counts and the event log agree.
        let all = s.list("/crash/", ListOptions::default()).await.unwrap();
        assert_eq!(all.items.len() as i64, s.count("/crash/").await.unwrap());
        assert!(all.items.len() >= acked.len());
        let mut w = s.watch("/crash/", 1).await.unwrap();
        let mut replayed = std::collections::BTreeMap::new();
        // Replaying the log from the start rebuilds exactly the current state.
        while replayed.values().map(|(_, r)| *r).max().unwrap_or(0) < current {
            let ev = next_event(&mut w).await.unwrap();
            replayed.insert(ev.key.clone(), (ev.value, ev.revision));
        }
        let from_log: Vec<_> = replayed.into_iter().map(|(k, (v, _))| (k, v)).collect();
        let listed: Vec<_> = all
            .items
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value))
            .collect();
        assert_eq!(from_log, listed);
        // And the store still accepts writes after recovery.
        assert_eq!(
            s.create("/after/crash", Bytes::new()).await.unwrap(),
            current + 1
        );
    }

    /// Parses `ACK rev key` / `UPD rev key` into key → (latest acked revision, updated).
    fn record_ack(line: &str, acked: &mut std::collections::BTreeMap<String, (i64, bool)>) {
        let mut parts = line.split_whitespace();
        let (Some(tag), Some(rev), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let Ok(rev) = rev.parse::<i64>() else { return };
        match tag {
            "ACK" => {
                acked.insert(key.to_owned(), (rev, false));
            }
            "UPD" => {
                acked.insert(key.to_owned(), (rev, true));
            }
            _ => {}
        }
    }
}

/// A throw-away etcd on loopback ports with a temporary data dir, killed on drop.
#[cfg(feature = "etcd")]
struct EtcdServer {
    child: std::process::Child,
    endpoint: String,
    dir: tempfile::TempDir,
    /// Client-side TLS settings when the server requires mutual TLS.
    tls: Option<kubeboot::storage::etcd::EtcdOptions>,
}

#[cfg(feature = "etcd")]
impl EtcdServer {
    /// Starts a plain-HTTP etcd.
    async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Starts `etcd` (or `$ETCD_BIN`), with mutual TLS if `tls`; retries with new ports if a
    /// port was taken meanwhile (etcd cannot take a listening socket from its parent).
    async fn start_with(tls: bool) -> Self {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start(tls).await {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not start:\n{last_log}");
    }

    async fn try_start(tls: bool) -> Result<Self, String> {
        use support::socket::free_port;
        let (client_port, peer_port) = (free_port(), free_port());
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log file");
        let scheme = if tls { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let client_tls = if tls {
            let files = write_test_pki(dir.path());
            cmd.arg(format!("--cert-file={}", files.server_cert.display()))
                .arg(format!("--key-file={}", files.server_key.display()))
                .arg(format!("--trusted-ca-file={}", files.ca.display()))
                .arg("--client-cert-auth");
            Some(kubeboot::storage::etcd::EtcdOptions {
                ca_file: Some(files.ca),
                cert_file: Some(files.client_cert),
                key_file: Some(files.client_key),
                ..Default::default()
            })
        } else {
            None
        };
        let child = cmd
            .spawn()
            .expect("spawn etcd (apt-get install etcd-server)");
        let mut server = Self {
            child,
            endpoint: client,
            dir,
            tls: client_tls,
        };
        // Poll until it answers or exits; the deadline only guards against a hang.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                return Err(server.log());
            }
            if let Ok(store) = server.connect().await
                && store.current_revision().await.is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(server.log())
    }

    async fn connect(
        &self,
    ) -> Result<kubeboot::storage::etcd::EtcdStorage, kubeboot::storage::StorageError> {
        let base = self.tls.clone().unwrap_or_default();
        kubeboot::storage::etcd::EtcdStorage::connect(kubeboot::storage::etcd::EtcdOptions {
            endpoints: vec![self.endpoint.clone()],
            connect_timeout: Some(std::time::Duration::from_secs(2)),
            ..base
        })
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

#[cfg(feature = "etcd")]
impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PEM files of a test CA, an etcd serving certificate for 127.0.0.1 and a client certificate.
#[cfg(feature = "etcd")]
struct TestPki {
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_cert: std::path::PathBuf,
    client_key: std::path::PathBuf,
}

#[cfg(feature = "etcd")]
fn write_test_pki(dir: &std::path::Path) -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
        let mut params = CertificateParams::new(sans).unwrap();
        params.extended_key_usages = usages;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let (client_cert, client_key) = leaf(
        vec!["kube-apiserver".into()],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    TestPki {
        ca: write("ca.crt", &ca.pem()),
        server_cert: write("server.crt", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.crt", &client_cert),
        client_key: write("client.key", &client_key),
    }
}

/// The etcd backend speaks mutual TLS with the CA, certificate and key files it is given.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_backend_connects_with_mutual_tls() {
    let server = EtcdServer::start_with(true).await;
    let store = server.connect().await.expect("TLS connect");
    let r = store
        .create("/tls/x", Bytes::from_static(b"v"))
        .await
        .unwrap();
    assert_eq!(store.get("/tls/x").await.unwrap().unwrap().mod_revision, r);
    // Without a client certificate the server refuses the client.
    let anonymous =
        kubeboot::storage::etcd::EtcdStorage::connect(kubeboot::storage::etcd::EtcdOptions {
            endpoints: vec![server.endpoint.clone()],
            ca_file: server.tls.as_ref().and_then(|t| t.ca_file.clone()),
            connect_timeout: Some(std::time::Duration::from_secs(2)),
            ..Default::default()
        })
        .await;
    let refused = match anonymous {
        Err(e) => e,
        Ok(s) => s.get("/tls/x").await.expect_err("no client certificate"),
    };
    assert_eq!(refused.code, ErrorCode::Unavailable, "{refused}");
}

/// A list reply over tonic's default 4 MiB limit comes back whole, as with upstream's client.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_lists_replies_larger_than_4_mib() {
    let server = EtcdServer::start().await;
    let store = server.connect().await.expect("connect to etcd");
    // etcd takes requests up to 1.5 MiB by default, so six 1-MiB values make a 6-MiB reply.
    let value = Bytes::from(vec![b'v'; 1024 * 1024]);
    for i in 0..6 {
        store
            .create(&format!("/big/{i}"), value.clone())
            .await
            .unwrap();
    }
    let list = store.list("/big/", ListOptions::default()).await.unwrap();
    assert_eq!(list.items.len(), 6);
    let mut w = store.watch("/big/", 1).await.unwrap();
    for _ in 0..6 {
        assert_eq!(next_event(&mut w).await.unwrap().value.len(), value.len());
    }
}

/// A fresh etcd per case, so compaction in one case cannot break another's history.
#[cfg(feature = "etcd")]
async fn etcd_fixture() -> Fixture {
    let server = EtcdServer::start().await;
    let store = server.connect().await.expect("connect to etcd");
    Fixture {
        store: Arc::new(store),
        prefix: "/registry/".into(),
        _guard: Box::new(server),
    }
}

#[cfg(feature = "etcd")]
mod etcd_conformance {
    conformance_tests!(super::etcd_fixture);
}

/// The watch cache in front of a fresh etcd.
#[cfg(feature = "etcd")]
async fn cached_etcd_fixture() -> Fixture {
    let fx = etcd_fixture().await;
    Fixture {
        store: Arc::new(Cacher::new(fx.store, &fx.prefix, cacher_options())),
        prefix: fx.prefix,
        _guard: fx._guard,
    }
}

#[cfg(feature = "etcd")]
mod cached_etcd_conformance {
    conformance_tests!(super::cached_etcd_fixture);
}

mod cacher {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::StreamExt;

    use async_trait::async_trait;
    use kubeboot::storage::json_layout::JsonLayout;
    use kubeboot::storage::{
        KeyValue, ListResult, ProgressRequests, Result, RevisionMatch, WatchStream, run_compactor,
    };

    use super::*;

    /// A real store that counts the watches opened on it and can hold back the start of each
    /// watch, as etcd does for a watch starting in the past (it syncs those in the background).
    /// It also counts lists, and passes progress requests on when told to.
    struct CountingWatches {
        inner: Arc<dyn Storage>,
        watches: AtomicUsize,
        lists: AtomicUsize,
        first_poll_delay: Duration,
        forward_progress: bool,
    }

    impl CountingWatches {
        fn new(inner: Arc<dyn Storage>) -> Self {
            Self {
                inner,
                watches: AtomicUsize::new(0),
                lists: AtomicUsize::new(0),
                first_poll_delay: Duration::ZERO,
                forward_progress: false,
            }
        }
    }

    #[async_trait]
    impl Storage for CountingWatches {
        async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
            self.inner.create(key, value).await
        }
        async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            self.inner.list(prefix, options).await
        }
        fn reports_progress(&self) -> bool {
            self.forward_progress && self.inner.reports_progress()
        }
        async fn compacted_revision(&self) -> Result<Option<i64>> {
            self.inner.compacted_revision().await
        }
        async fn watch_with_progress(
            &self,
            prefix: &str,
            from: i64,
            requests: ProgressRequests,
        ) -> Result<WatchStream> {
            if !self.forward_progress {
                return self.watch(prefix, from).await;
            }
            self.watches.fetch_add(1, Ordering::SeqCst);
            self.inner.watch_with_progress(prefix, from, requests).await
        }
        async fn guaranteed_update(
            &self,
            key: &str,
            expected: Option<i64>,
            value: Bytes,
        ) -> Result<KeyValue> {
            self.inner.guaranteed_update(key, expected, value).await
        }
        async fn delete(&self, key: &str, expected: Option<i64>) -> Result<KeyValue> {
            self.inner.delete(key, expected).await
        }
        async fn count(&self, prefix: &str) -> Result<i64> {
            self.inner.count(prefix).await
        }
        async fn current_revision(&self) -> Result<i64> {
            self.inner.current_revision().await
        }
        async fn watch(&self, prefix: &str, from: i64) -> Result<WatchStream> {
            self.watches.fetch_add(1, Ordering::SeqCst);
            let stream = self.inner.watch(prefix, from).await?;
            let delay = self.first_poll_delay;
            Ok(Box::pin(
                futures::stream::once(async move {
                    tokio::time::sleep(delay).await;
                    stream
                })
                .flatten(),
            ))
        }
        async fn compact(&self, revision: i64) -> Result<()> {
            self.inner.compact(revision).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_watchers_share_one_backend_watch() {
        let fx = embedded_fixture().await;
        let backend = Arc::new(CountingWatches::new(fx.store.clone()));
        let cache = Cacher::new(backend.clone(), "/registry/", cacher_options());
        let mut watchers = Vec::new();
        for _ in 0..20 {
            watchers.push(cache.watch("/registry/pods/", 0).await.unwrap());
        }
        let r = cache
            .create("/registry/pods/ns/p", Bytes::new())
            .await
            .unwrap();
        for w in &mut watchers {
            assert_eq!(next_event(w).await.unwrap().revision, r);
        }
        assert_eq!(backend.watches.load(Ordering::SeqCst), 1);
    }

    /// The cache keeps each version's JSON layout: what it first listed is laid out on first
    /// need, a change as it is applied, and every list's copy shares it. A value read from the
    /// backend keeps none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_share_the_layout_the_cache_keeps_for_each_version() {
        let fx = embedded_fixture().await;
        let key = "/registry/configmaps/ns/a";
        let stored = br#"{"kind":"ConfigMap","metadata":{"name":"a"}}"#;
        fx.store
            .create(key, Bytes::from_static(stored))
            .await
            .unwrap();
        let cache = Cacher::new(fx.store.clone(), "/registry/", cacher_options());
        let list = || async {
            let mut list = cache
                .list("/registry/configmaps/", ListOptions::default())
                .await
                .unwrap();
            assert_eq!(list.items.len(), 1);
            list.items.remove(0)
        };
        let first = list().await;
        // Not laid out yet: asked about other bytes, the memo lays those out.
        assert_eq!(first.layout.layout(b"not json"), None);
        let again = list().await;
        assert_eq!(
            again.layout.layout(&again.value),
            None,
            "found once, then kept"
        );
        let direct = fx.store.get(key).await.unwrap().unwrap();
        assert_eq!(direct.layout.layout(&direct.value), None, "nothing kept");

        let changed = br#"{"metadata":{"name":"a","uid":"u"}}"#;
        cache
            .guaranteed_update(key, None, Bytes::from_static(changed))
            .await
            .unwrap();
        let next = list().await;
        assert_eq!(&next.value[..], changed);
        let layout = JsonLayout::of(changed).expect("a layout");
        assert_eq!(
            next.layout.layout(b"not json"),
            Some(layout),
            "found when applied"
        );
    }

    /// Consistent lists come from the cache, as upstream's ConsistentListFromCache: a write
    /// through the cache is in the next list, and so is the revision of a write elsewhere, yet
    /// the backend is listed only once, by the cache itself. Without progress reports from the
    /// backend (etcd older than 3.4.31 or 3.5.13), a list after a write elsewhere has to go to
    /// the backend.
    async fn consistent_lists_come_from_the_cache(fx: super::conformance::Fixture) {
        let backend = Arc::new(CountingWatches {
            forward_progress: true,
            ..CountingWatches::new(fx.store.clone())
        });
        let pods = "/registry/pods/";
        let cache = Cacher::new(backend.clone(), pods, cacher_options());
        let consistent = || cache.list(pods, ListOptions::default());
        let names = |l: &ListResult| -> Vec<String> {
            l.items.iter().map(|kv| kv.key.to_string()).collect()
        };
        let a = cache
            .create("/registry/pods/ns/a", Bytes::new())
            .await
            .unwrap();
        let l = consistent().await.unwrap();
        assert_eq!(names(&l), ["/registry/pods/ns/a"]);
        assert!(l.revision >= a);
        let elsewhere = fx
            .store
            .create("/registry/configmaps/ns/x", Bytes::new())
            .await
            .unwrap();
        let l = consistent().await.unwrap();
        assert_eq!(names(&l), ["/registry/pods/ns/a"]);
        assert!(l.revision >= elsewhere, "{} < {elsewhere}", l.revision);
        cache
            .create("/registry/pods/ns/b", Bytes::new())
            .await
            .unwrap();
        let l = consistent().await.unwrap();
        assert_eq!(names(&l), ["/registry/pods/ns/a", "/registry/pods/ns/b"]);
        let backend_lists = backend.lists.load(Ordering::SeqCst);
        if fx.store.reports_progress() {
            assert_eq!(backend_lists, 1, "only the cache's own list");
        } else {
            assert!(
                backend_lists > 1,
                "without progress reports lists fall back"
            );
        }

        let silent = Arc::new(CountingWatches::new(fx.store.clone()));
        let cache = Cacher::new(silent.clone(), pods, cacher_options());
        wait_until_listed(&cache, pods).await;
        let listed = silent.lists.load(Ordering::SeqCst);
        fx.store
            .create("/registry/configmaps/ns/y", Bytes::new())
            .await
            .unwrap();
        let l = cache.list(pods, ListOptions::default()).await.unwrap();
        assert_eq!(l.items.len(), 2);
        assert_eq!(
            silent.lists.load(Ordering::SeqCst),
            listed + 1,
            "a backend list"
        );
    }

    /// Continue pages come from memory while nothing under the prefix changed since the first
    /// page; after a change they come from the backend at the first page's revision, and a
    /// compacted revision answers Compacted either way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn continue_pages_come_from_the_cache_while_nothing_changed() {
        let fx = embedded_fixture().await;
        let backend = Arc::new(CountingWatches::new(fx.store.clone()));
        let pods = "/registry/pods/";
        let cache = Cacher::new(backend.clone(), pods, cacher_options());
        let mut last = 0;
        for name in ["a", "b", "c", "d", "e"] {
            last = cache
                .create(&format!("{pods}ns/{name}"), Bytes::new())
                .await
                .unwrap();
        }
        // This backend reports no progress, so a first page is served from memory only once
        // the cache holds every create; else it and its continue pages go to the backend.
        let holds_all = ListOptions {
            revision: Some(last),
            revision_match: RevisionMatch::NotOlderThan,
            ..Default::default()
        };
        cache.list(pods, holds_all).await.unwrap();
        let page = |token: Option<String>| {
            cache.list(
                pods,
                ListOptions {
                    limit: 2,
                    continue_token: token,
                    ..Default::default()
                },
            )
        };
        let keys = |l: &ListResult| -> Vec<String> {
            l.items.iter().map(|kv| kv.key.replace(pods, "")).collect()
        };
        let first = page(None).await.unwrap();
        assert_eq!(keys(&first), ["ns/a", "ns/b"]);
        let listed = backend.lists.load(Ordering::SeqCst);
        let second = page(first.continue_token.clone()).await.unwrap();
        assert_eq!(keys(&second), ["ns/c", "ns/d"]);
        assert_eq!(
            (second.revision, second.remaining),
            (first.revision, Some(1))
        );
        assert_eq!(backend.lists.load(Ordering::SeqCst), listed, "from memory");

        let f = cache
            .create(&format!("{pods}ns/f"), Bytes::new())
            .await
            .unwrap();
        // Once the cache holds the change, memory is no longer the state at the first page.
        let at_f = ListOptions {
            revision: Some(f),
            revision_match: RevisionMatch::NotOlderThan,
            ..Default::default()
        };
        cache.list(pods, at_f).await.unwrap();
        let third = page(second.continue_token.clone()).await.unwrap();
        assert_eq!(
            keys(&third),
            ["ns/e"],
            "the state at the first page's revision"
        );
        assert_eq!(third.revision, first.revision);
        assert_eq!(
            backend.lists.load(Ordering::SeqCst),
            listed + 1,
            "from the backend"
        );

        let now = fx.store.current_revision().await.unwrap();
        fx.store.compact(now).await.unwrap();
        let gone = page(second.continue_token).await.unwrap_err();
        assert_eq!(gone.code, ErrorCode::Compacted, "{gone}");
    }

    /// Pages from memory report how many items follow them, though the cache remembers what
    /// each page left rather than counting the rest again: walks of different page sizes
    /// interleave, a page asked for twice, and a walk after a change all see true counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_from_the_cache_count_the_items_after_them() {
        let fx = embedded_fixture().await;
        let pods = "/registry/pods/";
        let cache = Cacher::new(fx.store.clone(), pods, cacher_options());
        for i in 0..10 {
            cache
                .create(&format!("{pods}ns/p{i}"), Bytes::new())
                .await
                .unwrap();
        }
        wait_until_listed(&cache, pods).await;
        let page = |limit: i64, token: Option<String>| {
            cache.list(
                pods,
                ListOptions {
                    limit,
                    continue_token: token,
                    ..Default::default()
                },
            )
        };
        // (items seen so far, next token) of a walk of `limit`, checked against `total`.
        let step = |walk: (usize, Option<String>), limit: i64, total: usize| async move {
            let p = page(limit, walk.1).await.unwrap();
            let seen = walk.0 + p.items.len();
            let left = (seen < total).then_some((total - seen) as i64);
            assert_eq!(
                p.remaining, left,
                "after {seen} of {total}, pages of {limit}"
            );
            assert_eq!(p.continue_token.is_some(), left.is_some());
            (seen, p.continue_token)
        };
        let (mut twos, mut threes) = ((0, None), (0, None));
        for _ in 0..3 {
            twos = step(twos, 2, 10).await;
            threes = step(threes, 3, 10).await;
        }
        // A fresh walk starts while others are midway.
        assert_eq!(
            step((0, None), 2, 10).await.0,
            2,
            "a fresh walk's first page"
        );
        // Asked again, the same page counts the same.
        let retried = page(2, twos.1.clone()).await.unwrap();
        assert_eq!(retried.remaining, Some(2));
        let retried = page(2, twos.1.clone()).await.unwrap();
        assert_eq!(retried.remaining, Some(2), "counted again");
        while twos.1.is_some() {
            twos = step(twos, 2, 10).await;
        }
        assert_eq!(step(threes, 3, 10).await.0, 10);

        cache
            .create(&format!("{pods}ns/p10"), Bytes::new())
            .await
            .unwrap();
        cache.delete(&format!("{pods}ns/p0"), None).await.unwrap();
        // A consistent first page: from the cache once it holds both changes.
        let mut after = (0, None);
        loop {
            after = step(after, 2, 10).await;
            if after.1.is_none() {
                break;
            }
        }
        assert_eq!(after.0, 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consistent_lists_come_from_the_cache_on_the_embedded_store() {
        consistent_lists_come_from_the_cache(embedded_fixture().await).await;
    }

    #[cfg(feature = "etcd")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consistent_lists_come_from_the_cache_on_etcd() {
        consistent_lists_come_from_the_cache(super::etcd_fixture().await).await;
    }

    /// Lists the cache at "any revision" so it has done its first list.
    async fn wait_until_listed(cache: &Cacher, prefix: &str) {
        let any = ListOptions {
            revision_match: RevisionMatch::NotOlderThan,
            ..Default::default()
        };
        cache.list(prefix, any).await.expect("cache lists");
    }

    /// The flake behind issue 3's cached-etcd compaction failure, made deterministic: the
    /// cache's backend watch starts in the past and is replayed late; a compaction through
    /// the cache must wait for it rather than cancel it, so the cache keeps its one backend
    /// watch and a watch from the compacted revision gets every later event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compacting_through_a_lagging_cache_does_not_force_a_re_list() {
        let fx = embedded_fixture().await;
        let backend = Arc::new(CountingWatches {
            // Longer than the writes below take, so without the wait the compaction lands
            // while the cache's backend watch is still replaying from its list revision.
            first_poll_delay: Duration::from_millis(500),
            ..CountingWatches::new(fx.store.clone())
        });
        let cache = Cacher::new(backend.clone(), "/registry/", cacher_options());
        wait_until_listed(&cache, "/registry/").await;
        let mut revs = Vec::new();
        for i in 0..6 {
            revs.push(
                cache
                    .create(&format!("/registry/k{i}"), Bytes::new())
                    .await
                    .unwrap(),
            );
        }
        let compact_at = revs[3];
        cache.compact(compact_at).await.unwrap();
        let mut w = cache.watch("/registry/", compact_at).await.unwrap();
        for want in &revs[4..] {
            assert_eq!(next_event(&mut w).await.unwrap().revision, *want);
        }
        conformance::assert_watch_compacted(&cache, "/registry/", revs[2]).await;
        let r = cache.create("/registry/late", Bytes::new()).await.unwrap();
        assert_eq!(next_event(&mut w).await.unwrap().revision, r);
        assert_eq!(backend.watches.load(Ordering::SeqCst), 1, "no re-list");
    }

    /// As upstream: a compaction that does not cover the cache's own watch position, even
    /// one made behind the cache's back, leaves the cache and its watchers alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_compaction_the_cache_has_passed_leaves_its_watchers_alone() {
        let fx = embedded_fixture().await;
        let backend = Arc::new(CountingWatches::new(fx.store.clone()));
        let cache = Cacher::new(backend.clone(), "/registry/", cacher_options());
        wait_until_listed(&cache, "/registry/").await;
        let mut w = cache.watch("/registry/", 0).await.unwrap();
        let r1 = cache.create("/registry/a", Bytes::new()).await.unwrap();
        let r2 = cache.create("/registry/b", Bytes::new()).await.unwrap();
        assert_eq!(next_event(&mut w).await.unwrap().revision, r1);
        assert_eq!(next_event(&mut w).await.unwrap().revision, r2);
        // The cache has applied r2, so compacting the backend directly at r2 is behind it.
        let at_r2 = ListOptions {
            revision: Some(r2),
            revision_match: RevisionMatch::NotOlderThan,
            ..Default::default()
        };
        cache.list("/registry/", at_r2).await.unwrap();
        fx.store.compact(r2).await.unwrap();
        let r3 = cache.create("/registry/c", Bytes::new()).await.unwrap();
        assert_eq!(next_event(&mut w).await.unwrap().revision, r3);
        assert_eq!(backend.watches.load(Ordering::SeqCst), 1, "no re-list");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_converges_even_if_its_backend_watch_lags() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            watch_buffer: 1,
            ..Default::default()
        };
        let backend: Arc<dyn Storage> =
            Arc::new(EmbeddedStorage::open(dir.path().join("db.redb"), options).unwrap());
        let cache = Arc::new(Cacher::new(backend.clone(), "/r/", cacher_options()));
        let mut tasks = Vec::new();
        for t in 0..4 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = 0;
                for i in 0..50 {
                    last = cache
                        .create(&format!("/r/t{t}/k{i}"), Bytes::new())
                        .await
                        .unwrap();
                }
                last
            }));
        }
        let mut last = 0;
        for t in tasks {
            last = last.max(t.await.unwrap());
        }
        // Whether or not the cache had to re-list, it ends up with exactly the backend state.
        let cached = tokio::time::timeout(conformance::HANG_GUARD, async {
            loop {
                match cache
                    .list(
                        "/r/",
                        ListOptions {
                            revision: Some(last),
                            revision_match: RevisionMatch::NotOlderThan,
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(l) => break l,
                    // Still re-listing after a lag: a retry is what a client would do.
                    Err(e) if e.code == ErrorCode::Unavailable => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("cache converges within the hang guard");
        let direct = backend.list("/r/", ListOptions::default()).await.unwrap();
        assert_eq!(cached.items.len(), 200);
        assert_eq!(cached.items, direct.items);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_background_compactor_keeps_the_last_revisions() {
        let fx = embedded_fixture().await;
        let first = fx.store.create("/c/a", Bytes::new()).await.unwrap();
        for _ in 0..5 {
            fx.store
                .guaranteed_update("/c/a", None, Bytes::new())
                .await
                .unwrap();
        }
        let compactor = tokio::spawn(run_compactor(
            fx.store.clone(),
            std::time::Duration::from_millis(10),
            2,
        ));
        // Poll for the outcome; no assertion on how long it takes.
        tokio::time::timeout(conformance::HANG_GUARD, async {
            loop {
                let past = ListOptions {
                    revision: Some(first),
                    ..Default::default()
                };
                match fx.store.list("/c/", past).await {
                    Err(e) if e.code == ErrorCode::Compacted => break,
                    Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("compaction within the hang guard");
        compactor.abort();
        let current = fx.store.current_revision().await.unwrap();
        let keep = ListOptions {
            revision: Some(current - 2),
            ..Default::default()
        };
        assert_eq!(fx.store.list("/c/", keep).await.unwrap().items.len(), 1);
    }
}
