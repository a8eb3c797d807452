//! Waiting for a condition instead of sleeping and hoping: polling with a bound that only
//! guards against a hang, and processes whose output a test can wait for while they run.

use super::https::{Https, Reply};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bound on a wait for a process's output: a hang guard, never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Polls `check` every 100ms until it returns Some, failing with `what` after 30s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until GET `path` answers `status`.
pub async fn answers(admin: &Https, path: &str, status: u16) -> Reply {
    eventually(&format!("GET {path} → {status}"), || async {
        let r = admin.get(path).await.ok()?;
        (r.status == status).then_some(r)
    })
    .await
}

/// A process whose stdout and stderr go to files, so that a test can wait for what it printed
/// while it runs; killed on drop.
pub struct Background {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Background {
    /// Starts `command` with its output in `<dir>/<name>.stdout` and `<dir>/<name>.stderr`.
    pub fn spawn(mut command: Command, dir: &Path, name: &str) -> Self {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until `done` holds for what the process wrote to stdout, failing with `what`
    /// (and both streams) if it exits first or after a minute.
    pub async fn wait_for_stdout(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, |p| p.stdout(), done).await
    }

    /// As [`Background::wait_for_stdout`], for stderr (where kubectl logs its requests with -v=6).
    pub async fn wait_for_stderr(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, |p| p.stderr(), done).await
    }

    async fn wait_for(
        &mut self,
        what: &str,
        read: impl Fn(&Self) -> String,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            // Read after checking for an exit, so that an exited process's output is complete.
            let exited = self.child.try_wait().unwrap();
            let text = read(self);
            if done(&text) {
                return text;
            }
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "never saw {what} ({}):\n{}\n{}",
                exited.map_or("still running".into(), |s| s.to_string()),
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit on its own; its status and everything it wrote.
    pub fn wait(mut self) -> Output {
        let status = self.child.wait().unwrap();
        self.output(status)
    }

    /// Kills the process; its status and everything it wrote.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        self.output(status)
    }

    fn output(&self, status: std::process::ExitStatus) -> Output {
        Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
