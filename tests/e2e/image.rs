//! The container image `scripts/image` builds, run with podman as a user would: on the host's
//! network, its state on a volume, used with kubectl, stopped with SIGTERM.

use crate::common::{kubectls, ok};
use crate::support::kubeboot::TestServer;
use std::process::{Command, Output};
use std::time::Duration;

/// The image `scripts/image` tags for this version.
fn image() -> String {
    format!("localhost/kubeboot:{}", env!("CARGO_PKG_VERSION"))
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("podman cannot be run here ({e}): scripts/test installs it"))
}

/// Fails the test with what podman said unless it succeeded; its stdout.
fn podman_ok(args: &[&str]) -> String {
    ok(&podman(args), &format!("podman {args:?}"))
}

/// What `podman run` needs on this machine: runc (scripts/test installs it), as crun refuses a
/// host whose cgroups are in hybrid mode; and, as podman raises the open-files limit by default,
/// which a sandbox may forbid, the test's own limits.
fn run_flags() -> Vec<String> {
    let mut flags = vec!["--runtime=runc".to_string()];
    flags.extend(ulimits());
    flags
}

/// `--ulimit` flags giving the container this process's limits of open files and processes,
/// the latter at most the kernel's `pid_max` (a sandbox refuses more, as seen here).
fn ulimits() -> Vec<String> {
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    [
        ("nofile", libc::RLIMIT_NOFILE, u64::MAX),
        ("nproc", libc::RLIMIT_NPROC, pid_max),
    ]
    .into_iter()
    .map(|(name, resource, cap)| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2) writes the limit into `limit`.
        assert_eq!(unsafe { libc::getrlimit(resource, &mut limit) }, 0);
        let (soft, hard) = (limit.rlim_cur.min(cap), limit.rlim_max.min(cap));
        format!("--ulimit={name}={soft}:{hard}")
    })
    .collect()
}

/// Removes the test's container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time=0", &self.0]);
    }
}

/// `podman run` of the image, attached, so the test's signals reach the server through podman
/// (`--sig-proxy`); the test's loopback socket is handed in by socket activation, which podman
/// passes on; the data directory is a volume on the test's directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_with_podman_serves_kubectl_and_stops_gracefully_on_sigterm() {
    let info = podman(&["info", "--format", "{{.Host.OCIRuntime.Name}}"]);
    assert!(
        info.status.success(),
        "containers cannot run on this machine: `podman info` failed: {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let image = image();
    assert!(
        podman(&["image", "exists", &image]).status.success(),
        "{image} is missing: build it with scripts/image (scripts/test does)"
    );
    // The labels the OCI image spec names, and the non-root user.
    let config = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{index .Labels \"org.opencontainers.image.version\"}}",
        &image,
    ]);
    assert_eq!(
        config.trim(),
        format!("65532:65532 {}", env!("CARGO_PKG_VERSION"))
    );

    let dir = tempfile::tempdir().unwrap();
    // SAFETY: chown(2) on a path the test owns; the server runs as the image's user.
    let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 65532, 65532) }, 0);
    let name = format!("kubeboot-e2e-{}", std::process::id());
    let _container = Container(name.clone());
    let mut command = Command::new("podman");
    command
        .args(["run", "--rm=false", "--name", &name, "--network=host"])
        .args(run_flags())
        .arg(format!(
            "--volume={}:/var/lib/kubeboot",
            dir.path().display()
        ))
        .args([image.as_str(), "up"])
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
    let mut server = TestServer::spawn(command, dir);
    server.wait_ready().await;

    let kubectl = &kubectls()[0].1;
    let ok = |args: &[&str]| {
        let out = server.kubectl(kubectl, args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}\n--- kubeboot ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.stderr()
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&[
        "create",
        "configmap",
        "from-the-image",
        "--from-literal=k=v",
    ]);
    assert_eq!(
        ok(&[
            "get",
            "configmap",
            "from-the-image",
            "-o",
            "jsonpath={.data.k}"
        ]),
        "v"
    );
    // The state is the volume's, written as the image's user.
    let db = server.data_dir().join("pki/ca.key");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&db).unwrap());
    assert_eq!(owner, 65532, "{}", db.display());

    // kube-apiserver is the binary's second name, as kubeadm's static pod runs it: with the
    // flags of the kube-apiserver command.
    let mut run = vec!["run".to_string(), "--rm".to_string()];
    run.extend(run_flags());
    run.extend(
        [
            "--entrypoint=/usr/local/bin/kube-apiserver",
            &image,
            "--help",
        ]
        .map(String::from),
    );
    let help = podman_ok(&run.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(help.contains("Run as kube-apiserver"), "{help}");

    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(60)).await;
    let log = server.stderr();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("[graceful-termination] apiserver is exiting"),
        "{log}"
    );
    let exit = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(exit.trim(), "0");
}
