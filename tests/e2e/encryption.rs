//! Encryption at rest (`--encryption-provider-config`): what is stored is encrypted with
//! upstream's prefixes, clients see plain objects, and keys rotate.

use crate::support::kubeboot::{TestServer, run_kubeboot};
use serde_json::json;
use std::path::Path;

const AESCBC_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const AESGCM_KEY: &str = "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyIGI=";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";

/// Writes an EncryptionConfiguration for Secrets with `providers` (YAML list items) to `dir`.
fn config(dir: &Path, name: &str, providers: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
             resources:\n- resources: [secrets]\n  providers:\n{providers}"
        ),
    )
    .unwrap();
    format!("--encryption-provider-config={}", path.display())
}

fn aescbc() -> String {
    format!("  - aescbc: {{keys: [{{name: key1, secret: {AESCBC_KEY}}}]}}\n")
}

fn aesgcm() -> String {
    format!("  - aesgcm: {{keys: [{{name: key2, secret: '{AESGCM_KEY}'}}]}}\n")
}

/// On the embedded store: the Secret's value never reaches the database file in the clear,
/// while a ConfigMap's (not covered) does.
#[tokio::test]
async fn secrets_are_stored_encrypted_in_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    // aescbc writes; aesgcm and identity are there to read with.
    let providers = aescbc() + &aesgcm() + "  - identity: {}\n";
    let flag = config(dir.path(), "enc.yaml", &providers);
    let mut server = TestServer::up(&[&flag]);
    server.wait_ready().await;
    let admin = server.admin();
    // "hunter2-in-the-clear", base64: what a Secret's stored JSON would hold.
    let secret = json!({"metadata": {"name": "s"}, "data": {"pw": "aHVudGVyMi1pbi10aGUtY2xlYXI="}});
    admin.create(SECRETS, &secret).await;
    admin
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "c"}, "data": {"k": "configmap-in-the-clear"}}),
        )
        .await;
    let got = admin.get(&format!("{SECRETS}/s")).await.unwrap().json();
    assert_eq!(got["data"]["pw"], "aHVudGVyMi1pbi10aGUtY2xlYXI=");
    server.signal(libc::SIGTERM);
    server.wait_exit(std::time::Duration::from_secs(60)).await;
    let db: Vec<u8> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            path.is_file().then(|| std::fs::read(path).ok()).flatten()
        })
        .flatten()
        .collect();
    let has = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"configmap-in-the-clear"),
        "the check can see plain values"
    );
    assert!(
        !has(b"aHVudGVyMi1pbi10aGUtY2xlYXI="),
        "the Secret's data is not stored in the clear"
    );
    assert!(
        has(b"k8s:enc:aescbc:v1:key1:"),
        "stored behind upstream's prefix"
    );
}

/// A configuration that does not hold is an error naming the flag and the field.
#[test]
fn a_bad_configuration_is_refused_naming_the_flag_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let flag = config(
        dir.path(),
        "bad.yaml",
        "  - aescbc: {keys: [{name: k, secret: c2hvcnQ=}]}\n",
    );
    let out = run_kubeboot(dir.path(), &["init", &flag]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--encryption-provider-config: resources[0].providers[0].aescbc.keys[0].secret: secret is not of the expected length, got 5"),
        "{stderr}"
    );
}

/// On etcd, as upstream's: the Secret's key holds `k8s:enc:aescbc:v1:key1:` and ciphertext;
/// with a new key put first the old Secret still reads, and a rewrite moves it to the new key.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_encrypted_in_etcd_and_keys_rotate() {
    let cluster = tokio::task::spawn_blocking(crate::support::etcd_cluster::EtcdCluster::start)
        .await
        .unwrap();
    let etcd = format!("--etcd-servers={}", cluster.servers_flag());
    let dir = tempfile::tempdir().unwrap();
    let key = "/registry/secrets/default/s";

    let first = config(dir.path(), "first.yaml", &(aescbc() + "  - identity: {}\n"));
    let mut server = TestServer::up(&["--storage-backend=etcd", &etcd, &first]);
    server.wait_ready().await;
    let secret = json!({"metadata": {"name": "s"}, "data": {"pw": "c2VjcmV0LXZhbHVl"}});
    server.admin().create(SECRETS, &secret).await;
    let stored = cluster.value_of(key).await;
    assert!(
        stored.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "{}",
        String::from_utf8_lossy(&stored)
    );
    assert!(!stored.windows(12).any(|w| w == b"c2VjcmV0LXZh"));
    server.signal(libc::SIGTERM);
    server.wait_exit(std::time::Duration::from_secs(60)).await;

    // Rotation: the new key first, the old one still there to read with.
    let rotated = config(dir.path(), "rotated.yaml", &(aesgcm() + &aescbc()));
    let mut server = TestServer::up(&["--storage-backend=etcd", &etcd, &rotated]);
    server.wait_ready().await;
    let admin = server.admin();
    let got = admin.get(&format!("{SECRETS}/s")).await.unwrap().json();
    assert_eq!(got["data"]["pw"], "c2VjcmV0LXZhbHVl");
    let mut rewritten = got.clone();
    rewritten["metadata"]["labels"] = json!({"rotated": "yes"});
    let r = admin.json("PUT", &format!("{SECRETS}/s"), &rewritten).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        cluster
            .value_of(key)
            .await
            .starts_with(b"k8s:enc:aesgcm:v1:key2:")
    );
    server.signal(libc::SIGTERM);
    server.wait_exit(std::time::Duration::from_secs(60)).await;

    // The old key gone: the rewritten Secret reads; a server without the key cannot.
    let only_new = config(dir.path(), "new.yaml", &aesgcm());
    let mut server = TestServer::up(&["--storage-backend=etcd", &etcd, &only_new]);
    server.wait_ready().await;
    let got = server
        .admin()
        .get(&format!("{SECRETS}/s"))
        .await
        .unwrap()
        .json();
    assert_eq!(got["metadata"]["labels"]["rotated"], "yes");
    server.signal(libc::SIGTERM);
    server.wait_exit(std::time::Duration::from_secs(60)).await;
    let mut plain = TestServer::up(&["--storage-backend=etcd", &etcd]);
    plain.wait_ready().await;
    let r = plain.admin().get(&format!("{SECRETS}/s")).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("encrypted (k8s:enc:aesgcm:v1:key2)"),
        "{}",
        r.body
    );
}
