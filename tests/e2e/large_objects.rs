//! Objects at the size limits: a Secret holding the most data a Secret may hold (1 MiB, which
//! is about 1.4 MB of JSON, close to etcd's 1.5 MiB request limit) goes through create, get,
//! both kinds of list and watch unchanged, on the embedded store and on etcd; one byte more is
//! refused with upstream's 422 naming `data`.

use crate::common::WITHOUT_CONTROLLERS;
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use base64::Engine;
use serde_json::{Value, json};

const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// `len` bytes that do not compress into anything shorter in base64.
fn payload(len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn secret(name: &str, len: usize) -> Value {
    json!({"metadata": {"name": name}, "data": {"blob": payload(len)}})
}

fn item<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the list"))
}

async fn largest_secrets_go_through_every_verb(admin: &Https) {
    let base = "/api/v1/namespaces/default/secrets";
    let watch = admin
        .open(&format!("{base}?watch=true&timeoutSeconds=5"))
        .await
        .unwrap();
    let want = payload(MAX_SECRET_BYTES);
    let created = admin
        .json("POST", base, &secret("big", MAX_SECRET_BYTES))
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        &created.body[..created.body.len().min(500)]
    );
    assert_eq!(created.json()["data"]["blob"], want);

    let got = admin.get(&format!("{base}/big")).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["data"]["blob"], want);
    for query in ["", "?resourceVersion=0"] {
        let list = admin.get(&format!("{base}{query}")).await.unwrap();
        assert_eq!(list.status, 200, "{query}");
        assert_eq!(item(&list.json(), "big")["data"]["blob"], want, "{query}");
    }
    let events = watch.await.unwrap().unwrap().json_lines();
    let added = events
        .iter()
        .find(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "big")
        .expect("an ADDED event for the Secret");
    assert_eq!(added["object"]["data"]["blob"], want);

    let refused = admin
        .json("POST", base, &secret("bigger", MAX_SECRET_BYTES + 1))
        .await;
    assert_eq!(
        refused.status,
        422,
        "{}",
        &refused.body[..refused.body.len().min(500)]
    );
    let status = refused.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "data", "{status}");
    assert!(
        status["message"].as_str().unwrap().contains("1048576"),
        "{status}"
    );
    assert_eq!(
        admin.get(&format!("{base}/bigger")).await.unwrap().status,
        404
    );
}

#[tokio::test]
async fn the_largest_secret_goes_through_create_list_and_watch_on_the_embedded_store() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    largest_secrets_go_through_every_verb(&server.admin()).await;
}

#[cfg(feature = "etcd")]
#[tokio::test]
async fn the_largest_secret_goes_through_create_list_and_watch_on_etcd() {
    let etcd = crate::support::etcd_cluster::EtcdCluster::start_members(1);
    let servers = format!("--etcd-servers={}", etcd.servers_flag());
    let mut flags = vec!["--storage-backend=etcd", servers.as_str()];
    flags.extend_from_slice(WITHOUT_CONTROLLERS);
    let mut server = TestServer::up(&flags);
    server.wait_ready().await;
    largest_secrets_go_through_every_verb(&server.admin()).await;
}
