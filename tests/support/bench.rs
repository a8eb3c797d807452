//! What the benches share: starting `kubeboot up`, one request on a keep-alive connection,
//! percentiles and the process figures from /proc.

use super::https::Https;
use super::socket::{loopback_listener, spawn_with_listener};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A JSON request on `sender`: status and body.
pub async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Bytes) {
    request_as(sender, method, path, body, "application/json").await
}

/// A request whose response is negotiated as `accept`.
pub async fn request_as(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    accept: &str,
) -> (u16, Bytes) {
    let headers = [("accept", accept), ("content-type", "application/json")];
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let (status, _, bytes) = Https::exchange(sender, method, path, &headers, body)
        .await
        .expect("response");
    (status, bytes)
}

/// Creates each namespace of `names`.
pub async fn create_namespaces(sender: &mut SendRequest<Full<Bytes>>, names: &[&str]) {
    for name in names {
        let body = serde_json::json!({"metadata": {"name": name}});
        let (code, _) = request(sender, "POST", "/api/v1/namespaces", Some(&body)).await;
        assert_eq!(code, 201, "namespace {name}");
    }
}

/// The `p` quantile of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The median of unsorted latencies.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time (user + system) the process `pid` has used, from /proc.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second.max(1))
}

/// Resident memory of the process `pid` in bytes (`VmRSS`); 0 once it is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes allocated on disk under `dir`, as `du` counts them.
pub fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => allocated_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Starts `kubeboot up` in `dir` with `extra` flags on a loopback socket passed to it (socket
/// activation); the process, an admin client once /readyz answers, and the address.
pub async fn start(dir: &Path, extra: &[&str]) -> (Child, Https, std::net::SocketAddr) {
    let listener = loopback_listener();
    let addr = listener.local_addr().expect("addr");
    let mut command = Command::new(super::kubeboot::KUBEBOOT);
    command
        .args([
            "up",
            "--bind-address=127.0.0.1",
            "--data-dir=.kubeboot",
            // As kube-apiserver alone: no controller adds objects (kube-root-ca.crt) to the
            // namespaces whose lists are measured.
            "--builtin-controllers=false",
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn_with_listener(command, listener).expect("kubeboot");
    let client = ready(addr, &dir.join(".kubeboot/admin.kubeconfig")).await;
    (child, client, addr)
}

/// An admin client of the server at `addr` once its kubeconfig exists and /readyz answers.
pub async fn ready(addr: std::net::SocketAddr, kubeconfig: &Path) -> Https {
    let t0 = Instant::now();
    loop {
        if kubeconfig.exists() {
            let c = Https::from_kubeconfig(addr, kubeconfig);
            if let Ok(mut s) = c.connect().await
                && request(&mut s, "GET", "/readyz", None).await.0 == 200
            {
                return c;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "kubeboot did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
