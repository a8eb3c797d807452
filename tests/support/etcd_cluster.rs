//! A throw-away 3-member etcd cluster on loopback, shared by the storage and e2e tests. Each
//! member gets its own client and peer port and data dir; members can be stopped or killed one
//! by one; dropping the cluster kills what is left.

use super::socket::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Bound on every wait in here: a hang guard, never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// One member: its process (None once stopped), name and URLs.
pub struct Member {
    child: Option<Child>,
    /// `--name`.
    pub name: String,
    /// Client URL (`http://127.0.0.1:port`).
    pub client_url: String,
    /// Peer URL.
    pub peer_url: String,
    log: PathBuf,
}

/// A running cluster; members are killed on drop.
pub struct EtcdCluster {
    /// The members, in start order.
    pub members: Vec<Member>,
    dir: tempfile::TempDir,
}

/// A plain HTTP/1.0 GET against `url` (`http://host:port`); the body, or None if unreachable.
fn http_get(url: &str, path: &str) -> Option<String> {
    let addr = url.strip_prefix("http://")?;
    let mut conn = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

impl EtcdCluster {
    /// Starts three members (`etcd` or `$ETCD_BIN`) and waits until every one reports
    /// healthy; retries with new ports if a port was taken meanwhile (etcd cannot take a
    /// listening socket from its parent, so it binds free ports itself).
    pub fn start() -> Self {
        Self::start_members(3)
    }

    /// [`EtcdCluster::start`] with `n` members.
    pub fn start_members(n: usize) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(n) {
                Ok(c) => return c,
                Err(log) => last = log,
            }
        }
        panic!("etcd cluster did not start:\n{last}");
    }

    fn try_start(n: usize) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut members: Vec<Member> = (0..n)
            .map(|i| Member {
                child: None,
                name: format!("m{i}"),
                client_url: format!("http://127.0.0.1:{}", free_port()),
                peer_url: format!("http://127.0.0.1:{}", free_port()),
                log: dir.path().join(format!("m{i}.log")),
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        for m in &mut members {
            let log = std::fs::File::create(&m.log).expect("log file");
            let child = Command::new(&bin)
                .arg(format!("--name={}", m.name))
                .arg(format!("--data-dir={}", dir.path().join(&m.name).display()))
                .arg(format!("--listen-client-urls={}", m.client_url))
                .arg(format!("--advertise-client-urls={}", m.client_url))
                .arg(format!("--listen-peer-urls={}", m.peer_url))
                .arg(format!("--initial-advertise-peer-urls={}", m.peer_url))
                .arg(format!("--initial-cluster={initial}"))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=kubeboot-test")
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("spawn etcd (apt-get install etcd-server)");
            m.child = Some(child);
        }
        let mut cluster = Self { members, dir };
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let mut healthy = 0;
            for i in 0..cluster.members.len() {
                if cluster.exited(i) {
                    return Err(cluster.logs());
                }
                if cluster.healthy(i) {
                    healthy += 1;
                }
            }
            if healthy == cluster.members.len() {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                return Err(cluster.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Member `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    /// Client URLs joined by commas, as `--etcd-servers` takes them.
    pub fn servers_flag(&self) -> String {
        self.endpoints().join(",")
    }

    /// The value stored under `key`, read straight from etcd; panics unless the key exists.
    #[cfg(feature = "etcd")]
    pub async fn value_of(&self, key: &str) -> Vec<u8> {
        let mut client = etcd_client::Client::connect(self.endpoints(), None)
            .await
            .unwrap();
        let got = client.get(key, None).await.unwrap();
        assert_eq!(got.kvs().len(), 1, "{key}");
        got.kvs()[0].value().to_vec()
    }

    fn exited(&mut self, i: usize) -> bool {
        match &mut self.members[i].child {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// Whether member `i` answers `/health` with `"health":"true"` (it has a leader).
    pub fn healthy(&self, i: usize) -> bool {
        http_get(&self.members[i].client_url, "/health")
            .is_some_and(|b| b.replace(' ', "").contains("\"health\":\"true\""))
    }

    /// A Prometheus gauge or counter of member `i` (first sample without labels).
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let body = http_get(&self.members[i].client_url, "/metrics")?;
        body.lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Index of the running member that is the Raft leader, waiting (bounded) until exactly
    /// one running member says it is.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let leaders: Vec<usize> = (0..self.members.len())
                .filter(|&i| self.members[i].child.is_some())
                .filter(|&i| self.metric(i, "etcd_server_is_leader") == Some(1.0))
                .collect();
            if let [one] = leaders[..] {
                return one;
            }
            assert!(
                Instant::now() < deadline,
                "no single leader:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Indexes of the running members that are not the leader.
    pub fn followers(&self) -> Vec<usize> {
        let leader = self.leader();
        (0..self.members.len())
            .filter(|&i| i != leader && self.members[i].child.is_some())
            .collect()
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops member `i` with SIGTERM, killing it if it has not exited within the hang guard.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + HANG_GUARD;
            while !matches!(c.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every member's log, for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(&m.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}\n", m.name, tail.join("\n"))
            })
            .collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
