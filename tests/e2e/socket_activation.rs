//! kubeboot on a socket its parent bound (socket activation, systemd's `LISTEN_FDS`): it serves
//! there, advertises that port, and refuses a `--secure-port` that says otherwise.

use crate::support::kubeboot::{KUBEBOOT, TestServer};
use crate::support::socket::{loopback_listener, spawn_with_listener};
use crate::support::wait::answers;
use std::process::{Command, Stdio};

#[tokio::test]
async fn kubeboot_serves_on_an_inherited_socket_and_writes_its_port_into_the_kubeconfig() {
    // TestServer passes no --secure-port: only the socket says where to serve.
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let r = server.admin().get("/version").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    assert_eq!(
        kubeconfig.clusters[0].cluster.as_ref().unwrap().server,
        Some(format!("https://127.0.0.1:{}", server.port))
    );
    // The `kubernetes` Service targets the inherited socket's port too.
    let service = answers(
        &server.admin(),
        "/api/v1/namespaces/default/services/kubernetes",
        200,
    )
    .await
    .json();
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"], server.port,
        "{service}"
    );
}

#[test]
fn a_secure_port_other_than_the_inherited_sockets_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let other = if port == 6443 { 6444 } else { 6443 };
    let mut command = Command::new(KUBEBOOT);
    command
        .args([
            "up",
            "--data-dir=.kubeboot",
            &format!("--secure-port={other}"),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = spawn_with_listener(command, listener)
        .unwrap()
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("--secure-port {other}")) && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(
        !dir.path().join(".kubeboot/pki/ca.crt").exists(),
        "up wrote files despite the refused flag"
    );
}
