//! Start-up benchmark: process start → first 200 on /readyz, and idle RSS, on the embedded store.
//! Run with `cargo bench --bench startup`; prints a table (median and range of 10 runs).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::https::Https;
use support::socket::{loopback_listener, spawn_with_listener};

const RUNS: usize = 10;

/// Whether /readyz answers 200 over a new connection.
async fn readyz_ok(client: &Https) -> bool {
    matches!(client.get("/readyz").await, Ok(r) if r.status == 200)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Starts `kubeboot <subcommand>` in `dir` and returns (time to first ready /readyz, idle RSS in KiB).
async fn one_run(dir: &Path, subcommand: &str) -> (Duration, u64) {
    // The socket kubeboot serves on, bound here and passed to it (socket activation).
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    let mut command = Command::new(support::kubeboot::KUBEBOOT);
    command
        .args([
            subcommand,
            "--bind-address=127.0.0.1",
            "--data-dir=.kubeboot",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = spawn_with_listener(command, listener).unwrap();
    let ca = dir.join(".kubeboot/pki/ca.crt");
    let mut client = None;
    let elapsed = loop {
        if client.is_none() && ca.exists() {
            client = Some(Https::new(addr, &std::fs::read(&ca).unwrap(), None));
        }
        if let Some(client) = &client
            && readyz_ok(client).await
        {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "kubeboot did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    (elapsed, rss)
}

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

#[tokio::main]
async fn main() {
    support::kubeboot::install_crypto();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("kubeboot start-up, embedded store, {RUNS} runs each (loopback, TLS)\n");
    println!("| scenario | start → /readyz 200 median (min–max) | idle RSS median (min–max) |");
    println!("|---|---|---|");
    for (label, prepare, subcommand) in [
        ("`serve`, existing PKI (restart)", true, "serve"),
        ("`up`, fresh directory (generates PKI)", false, "up"),
    ] {
        let mut times = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..RUNS {
            let dir = tempfile::tempdir().unwrap();
            if prepare {
                let ok = Command::new(support::kubeboot::KUBEBOOT)
                    .args(["init", "--bind-address=127.0.0.1", "--data-dir=.kubeboot"])
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
            }
            let (t, r) = one_run(dir.path(), subcommand).await;
            times.push(t.as_secs_f64() * 1e3);
            rss.push(r as f64 / 1024.0);
        }
        let (tm, tmin, tmax) = summary(times);
        let (rm, rmin, rmax) = summary(rss);
        println!(
            "| {label} | {tm:.1} ms ({tmin:.1}–{tmax:.1}) | {rm:.1} MB ({rmin:.1}–{rmax:.1}) |"
        );
    }
    println!(
        "\ngoal: ≤ 100 ms and ≤ 30 MB; upstream kube-apiserver 1.32: 3.0–3.6 s and 268 MB (../shared/BENCHMARKS.md)"
    );
}
