//! CRD conversion webhooks against a started server: a two-version CRD (v1 stored, v2 served
//! too) whose versions spell one field differently (`spec.color` / `spec.colour`) converts
//! through a real HTTPS webhook (in this process, on its own thread) reached through a Service.
//! Objects created in either version read back in the other through get, list and watch, and
//! kubectl sees both; with the webhook down a read needing conversion fails as upstream's.

use crate::common::{newest_kubectl, ok};
use crate::crds::{create_crd, simple_crd};
use crate::support::backend::{Backend, Body, full};
use crate::support::kubeboot::TestServer;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The ConversionReviews the webhook answered.
type Seen = Arc<Mutex<Vec<Value>>>;

/// Converts each object to the desired version, renaming `color` (v1) and `colour` (v2).
async fn convert(req: hyper::Request<hyper::body::Incoming>, seen: &Seen) -> hyper::Response<Body> {
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let review: Value = serde_json::from_slice(&body).unwrap();
    seen.lock().unwrap().push(review.clone());
    let request = &review["request"];
    let desired = request["desiredAPIVersion"].as_str().unwrap().to_string();
    let converted: Vec<Value> = request["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let mut o = o.clone();
            let spec = o["spec"].as_object_mut().unwrap();
            let (from, to) = if desired.ends_with("/v2") {
                ("color", "colour")
            } else {
                ("colour", "color")
            };
            if let Some(v) = spec.remove(from) {
                spec.insert(to.into(), v);
            }
            o["apiVersion"] = json!(desired);
            o
        })
        .collect();
    let reply = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "response": {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}});
    hyper::Response::builder()
        .header("content-type", "application/json")
        .body(full(reply.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_conversion_webhook_converts_between_versions_on_get_list_and_watch() {
    let seen: Seen = Arc::default();
    let recorder = seen.clone();
    let mut webhook = Backend::start_as(
        &["converter.conversion.svc"],
        None,
        Arc::new(move |req, _| {
            let seen = recorder.clone();
            Box::pin(async move { convert(req, &seen).await })
        }),
    );
    let port = webhook.addr.port();
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "conversion"}}),
        )
        .await;
    webhook
        .publish_as_service(&admin, "conversion", "converter")
        .await;
    let group = "paint.example.com";
    let mut crd = simple_crd(group, "things", "Thing");
    let v1 = crd["spec"]["versions"][0].clone();
    let mut v2 = v1.clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"] = json!([v1, v2]);
    crd["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem),
            "service": {"namespace": "conversion", "name": "converter", "path": "/convert"}}}});
    create_crd(&admin, &crd).await;
    let at = |version: &str| format!("/apis/{group}/{version}/namespaces/conversion/things");
    let thing = |version: &str, name: &str, field: &str| {
        json!({"apiVersion": format!("{group}/{version}"), "kind": "Thing",
            "metadata": {"name": name, "labels": {"app": "paint"}}, "spec": {field: "red"}})
    };

    // Created in v1 (the storage version: no call), read in v2 (converted).
    let r = admin
        .json("POST", &at("v1"), &thing("v1", "old", "color"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let got = admin
        .get(&format!("{}/old", at("v2")))
        .await
        .unwrap()
        .json();
    assert_eq!(got["apiVersion"], format!("{group}/v2"));
    assert_eq!(got["spec"], json!({"colour": "red"}));
    assert_eq!(got["metadata"]["labels"], json!({"app": "paint"}));
    let review = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(review["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(
        review["request"]["desiredAPIVersion"],
        format!("{group}/v2")
    );

    // Created in v2 (converted to v1 to be stored), read in v1.
    let r = admin
        .json("POST", &at("v2"), &thing("v2", "new", "colour"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["spec"], json!({"colour": "red"}));
    let got = admin
        .get(&format!("{}/new", at("v1")))
        .await
        .unwrap()
        .json();
    assert_eq!(got["spec"], json!({"color": "red"}));

    // Lists and watches in either version see every object in that version.
    for (version, field) in [("v1", "color"), ("v2", "colour")] {
        let list = admin.get(&at(version)).await.unwrap().json();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{list}");
        for item in items {
            assert_eq!(item["apiVersion"], format!("{group}/{version}"));
            assert_eq!(item["spec"], json!({field: "red"}));
        }
        let watch = admin
            .get(&format!("{}?watch=true&timeoutSeconds=1", at(version)))
            .await
            .unwrap();
        let events = watch.json_lines();
        assert_eq!(events.len(), 2, "{}", watch.body);
        for e in events {
            assert_eq!(e["type"], "ADDED");
            assert_eq!(e["object"]["spec"], json!({field: "red"}));
        }
    }
    // A list is converted with one review for the page, as upstream.
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|r| r["request"]["objects"].as_array().map(Vec::len) == Some(2)),
        "no review carried the whole list"
    );
    let kubectl = newest_kubectl();
    let out = ok(
        &server.kubectl(
            &kubectl,
            &[
                "get",
                &format!("things.v2.{group}"),
                "new",
                "-n",
                "conversion",
                "-o",
                "json",
            ],
        ),
        "kubectl get things.v2",
    );
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["spec"], json!({"colour": "red"}));

    // The webhook down: reading in the other version fails as upstream's; the storage version
    // still reads.
    webhook.stop();
    let r = admin.get(&format!("{}/old", at("v2"))).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(&format!(
            "Internal error occurred: conversion webhook for {group}/v1, Kind=Thing failed: \
             Post \"https://converter.conversion.svc:443/convert?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{message}"
    );
    let r = admin.get(&format!("{}/old", at("v1"))).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}
