//! A real `kubeboot` process for a test: started on a loopback socket the test bound on port 0
//! and passed to it (socket activation), in a fresh directory, killed on drop.

use super::https::Https;
use super::socket::{loopback_listener, spawn_with_listener};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The kubeboot binary cargo built for this test run.
pub const KUBEBOOT: &str = env!("CARGO_BIN_EXE_kubeboot");

/// Installs the ring provider once for the test process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A started `kubeboot` process, killed on drop.
pub struct TestServer {
    /// The process.
    pub child: Child,
    /// Its working directory (holds .kubeboot/ and the logs).
    pub dir: tempfile::TempDir,
    /// Its HTTPS port.
    pub port: u16,
}

impl TestServer {
    /// Runs `kubeboot up` on a loopback socket in a fresh directory.
    pub fn up(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir, &["up"], extra)
    }

    /// Runs `kubeboot <subcommand…> --data-dir … --bind-address 127.0.0.1 <extra>` in `dir`, on a
    /// loopback socket; stdout and stderr go to files in `dir`.
    pub fn spawn_in(dir: tempfile::TempDir, subcommand: &[&str], extra: &[&str]) -> Self {
        let command = Self::command_in(&dir, subcommand, extra);
        Self::spawn(command, dir)
    }

    /// Runs `kubeboot up` as [`TestServer::up`] does, in a UTS namespace of its own with the
    /// hostname `hostname`, as if on a machine of that name (what a server's identity Lease is
    /// named after); with `pki`, on a copy of that server's PKI, as the servers of one control
    /// plane share their CAs and service-account keys.
    pub fn up_on_host(hostname: &str, pki: Option<&TestServer>, extra: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        if let Some(from) = pki {
            let to = dir.path().join(".kubeboot/pki");
            std::fs::create_dir_all(&to).unwrap();
            for file in std::fs::read_dir(from.data_dir().join("pki")).unwrap() {
                let file = file.unwrap();
                std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
            }
        }
        let mut command = Self::command_in(&dir, &["up"], extra);
        let name = hostname.as_bytes().to_vec();
        // SAFETY: the closure runs in the forked child before exec and only makes the unshare
        // and sethostname system calls on memory allocated before the fork.
        unsafe {
            command.pre_exec(move || {
                if libc::unshare(libc::CLONE_NEWUTS) != 0
                    || libc::sethostname(name.as_ptr().cast(), name.len()) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Self::spawn(command, dir)
    }

    /// The `kubeboot <subcommand…>` command [`TestServer::spawn_in`] runs.
    fn command_in(dir: &tempfile::TempDir, subcommand: &[&str], extra: &[&str]) -> Command {
        let stdout = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut command = Command::new(KUBEBOOT);
        command
            .args(subcommand)
            .arg(format!(
                "--data-dir={}",
                dir.path().join(".kubeboot").display()
            ))
            .arg("--bind-address=127.0.0.1")
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        command
    }

    /// Starts `command` (a kubeboot the caller set up, working in `dir`) on a socket bound to a
    /// free loopback port.
    pub fn spawn(command: Command, dir: tempfile::TempDir) -> Self {
        install_crypto();
        let listener = loopback_listener();
        let port = listener.local_addr().unwrap().port();
        let child = spawn_with_listener(command, listener).unwrap();
        Self { child, dir, port }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join(".kubeboot")
    }

    /// The admin kubeconfig `up` wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("admin.kubeconfig")
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// An HTTPS client trusting the cluster CA, without a client certificate.
    pub fn anonymous(&self) -> Https {
        let ca = std::fs::read(self.data_dir().join("pki/ca.crt")).unwrap();
        Https::new(self.addr(), &ca, None)
    }

    /// An HTTPS client authenticated as the admin kubeconfig's user.
    pub fn admin(&self) -> Https {
        Https::from_kubeconfig(self.addr(), &self.kubeconfig())
    }

    /// Waits until /readyz answers 200, failing with the server's log after 60s.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "kubeboot exited with {status} before becoming ready:\n{}",
                    self.stderr()
                );
            }
            if self.data_dir().join("pki/ca.crt").exists()
                && let Ok((200, _)) = self
                    .anonymous()
                    .get("/readyz")
                    .await
                    .map(|r| (r.status, ()))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kubeboot not ready after 60s:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "kubeboot still running after {timeout:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A kubectl `bin` command against this server with the admin kubeconfig, to be run.
    pub fn kubectl_command(&self, bin: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(bin);
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .args(args);
        command
    }

    /// Runs kubectl `bin` against this server with the admin kubeconfig.
    pub fn kubectl(&self, bin: &Path, args: &[&str]) -> Output {
        self.kubectl_command(bin, args).output().unwrap()
    }

    /// A kube-rs client from the admin kubeconfig.
    pub async fn kube_client(&self) -> kube::Client {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `kubeboot <args>` to completion in `dir`.
pub fn run_kubeboot(dir: &Path, args: &[&str]) -> Output {
    Command::new(KUBEBOOT)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
