//! Start-up benchmark: process start → first 200 on /readyz, and idle RSS, on the embedded store.
//! Run with `cargo bench --bench startup`; prints a table (median and range of 10 runs).

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 10;

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn readyz_ok(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> bool {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let Ok(tls) = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
    else {
        return false;
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    let req = http::Request::get("/readyz")
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    matches!(sender.send_request(req).await, Ok(r) if r.status() == 200)
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
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
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubeboot"))
        .args([
            subcommand,
            "--bind-address=127.0.0.1",
            &format!("--secure-port={port}"),
            "--data-dir=.kubeboot",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca = dir.join(".kubeboot/pki/ca.crt");
    let mut config = None;
    let elapsed = loop {
        if config.is_none() && ca.exists() {
            config = Some(client_config(&ca));
        }
        if let Some(config) = &config
            && readyz_ok(addr, config.clone()).await
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
    let _ = rustls::crypto::ring::default_provider().install_default();
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
                let ok = Command::new(env!("CARGO_BIN_EXE_kubeboot"))
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
