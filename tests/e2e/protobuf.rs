//! Protobuf responses (`application/vnd.kubernetes.protobuf`) as client-go's typed clients ask
//! for them: each one decodes, with the project's decoder, to what the JSON API answers.

use crate::common::kubectl_version;
use crate::crds::{create_crd, simple_crd};
use crate::support::https::{Https, Reply};
use crate::support::kubeboot::TestServer;
use crate::support::wait::answers;
use kubeboot::protobuf;
use serde_json::{Value, json};

/// What client-go's typed clients send (rest.Config's default for kube components).
const CLIENT_GO: &str = "application/vnd.kubernetes.protobuf, application/json";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn content_type(r: &Reply) -> &str {
    r.headers
        .get("content-type")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// POSTs `body` as JSON with a User-Agent (the field manager: an empty one is kept in the JSON
/// managedFields but cannot be in protobuf, whose empty strings Go omits from JSON).
async fn post(admin: &Https, path: &str, body: &Value) -> Reply {
    let mut sender = admin.connect().await.unwrap();
    Https::send_body(
        &mut sender,
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("user-agent", "pb-test/1.0"),
        ],
        body.to_string().into(),
    )
    .await
    .unwrap()
}

/// The body of a protobuf reply, decoded, after checking the Content-Type.
fn decoded(r: &Reply, expected_type: &str) -> Value {
    assert_eq!(content_type(r), expected_type, "{}", r.body);
    protobuf::decode(&r.bytes).unwrap_or_else(|e| panic!("decode: {e}: {:?}", r.bytes))
}

/// GETs `path` as JSON and as protobuf and checks both say the same.
async fn same_as_json(admin: &Https, path: &str) -> Value {
    let json = admin.get_as(path, "application/json").await;
    assert_eq!(json.status, 200, "{path}: {}", json.body);
    let pb = admin.get_as(path, CLIENT_GO).await;
    assert_eq!(pb.status, 200, "{path}");
    let value = decoded(&pb, PROTOBUF);
    assert_eq!(value, without_item_types(json.json()), "{path}");
    value
}

/// A JSON list with its items' apiVersion and kind removed: protobuf list items are bare
/// messages without a TypeMeta (as upstream's JSON items are too).
fn without_item_types(mut list: Value) -> Value {
    if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            if let Some(item) = item.as_object_mut() {
                item.remove("apiVersion");
                item.remove("kind");
            }
        }
    }
    list
}

/// The events of a protobuf watch stream.
fn watch_events(r: &Reply) -> Vec<Value> {
    assert_eq!(
        content_type(r),
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    protobuf::split_watch_frames(&r.bytes)
        .unwrap()
        .into_iter()
        .map(|frame| {
            let (kind, object) = protobuf::decode_watch_event(frame).unwrap();
            json!({"type": kind, "object": object})
        })
        .collect()
}

#[tokio::test]
async fn protobuf_objects_lists_watches_and_errors_decode_to_the_json_responses() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let ns = "/api/v1/namespaces/default";
    let start_rv =
        admin.get(&format!("{ns}/configmaps")).await.unwrap().json()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();

    // Objects: a Pod with quantities, times and nested structs; ConfigMaps for the list.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pb", "labels": {"app": "pb"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]}});
    let r = post(&admin, &format!("{ns}/pods"), &pod).await;
    assert_eq!(r.status, 201, "{}", r.body);
    for i in 0..5 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("pb-{i}")},
            "data": {"i": i.to_string(), "big": "x".repeat(300 * i)}});
        let r = post(&admin, &format!("{ns}/configmaps"), &cm).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let created = admin
        .request(
            "POST",
            &format!("{ns}/configmaps"),
            &[("accept", CLIENT_GO), ("content-type", "application/json")],
        )
        .await
        .unwrap();
    // A bodiless create is a 400 whose Status comes back in protobuf.
    assert_eq!(created.status, 400);
    let status = decoded(&created, PROTOBUF);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 400);

    let pod = same_as_json(&admin, &format!("{ns}/pods/pb")).await;
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "500m"
    );
    let list = same_as_json(&admin, &format!("{ns}/configmaps?limit=2")).await;
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["metadata"]["continue"].is_string(), "{list}");
    assert!(list["metadata"]["remainingItemCount"].is_number(), "{list}");
    let list = same_as_json(&admin, &format!("{ns}/configmaps")).await;
    assert!(list["items"].as_array().unwrap().len() >= 5);
    assert!(list["metadata"]["resourceVersion"].is_string());

    // Protobuf alone is enough for a built-in kind.
    let r = admin.get_as(&format!("{ns}/pods/pb"), PROTOBUF).await;
    assert_eq!(decoded(&r, PROTOBUF), pod);
    // A client preferring JSON gets JSON.
    let r = admin
        .get_as(
            &format!("{ns}/pods/pb"),
            "application/json, application/vnd.kubernetes.protobuf",
        )
        .await;
    assert_eq!(content_type(&r), "application/json");
    assert_eq!(r.json(), pod);

    // PartialObjectMetadataList in protobuf.
    let r = admin.get_as(&format!("{ns}/configmaps"),
        "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json",
    )
    .await;
    assert_eq!(r.status, 200);
    let partial = decoded(
        &r,
        "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    );
    assert_eq!(partial["kind"], "PartialObjectMetadataList");
    assert_eq!(
        partial["items"][0]["metadata"],
        list["items"][0]["metadata"]
    );
    // Tables are JSON only: a protobuf Table clause is skipped for the next one.
    let r = admin.get_as(&format!("{ns}/configmaps"),
        "application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1, application/json;as=Table;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(
        content_type(&r),
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    );
    assert_eq!(r.json()["kind"], "Table");

    // Errors are Status objects in protobuf; unknown media types a 406 in JSON.
    let json_404 = admin
        .get_as(&format!("{ns}/pods/missing"), "application/json")
        .await;
    let pb_404 = admin.get_as(&format!("{ns}/pods/missing"), CLIENT_GO).await;
    assert_eq!(pb_404.status, 404);
    assert_eq!(decoded(&pb_404, PROTOBUF), json_404.json());
    let r = admin.get_as(&format!("{ns}/pods/pb"), "text/html").await;
    assert_eq!(r.status, 406);
    assert_eq!(
        r.json()["message"],
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );

    // Watch: length-delimited WatchEvents, the same events as the JSON stream.
    let path = format!("{ns}/configmaps?watch=true&resourceVersion={start_rv}&timeoutSeconds=1");
    let pb = admin.get_as(&path, CLIENT_GO).await;
    assert_eq!(pb.status, 200);
    let events = watch_events(&pb);
    let json_watch = admin.get_as(&path, "application/json").await;
    let json_events = json_watch.json_lines();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events, json_events);
    assert!(events.iter().all(|e| e["type"] == "ADDED"));
    // Bookmarks of a watch list, and ERROR events (an expired resource version).
    let r = admin.get_as(&format!("{ns}/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"),
        CLIENT_GO,
    )
    .await;
    let events = watch_events(&r);
    let bookmark = events
        .iter()
        .find(|e| e["type"] == "BOOKMARK")
        .unwrap_or_else(|| panic!("no bookmark: {events:?}"));
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert!(bookmark["object"]["metadata"]["resourceVersion"].is_string());
    let r = admin
        .get_as(
            &format!("{ns}/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1"),
            CLIENT_GO,
        )
        .await;
    let json_r = admin
        .get_as(
            &format!("{ns}/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1"),
            "application/json",
        )
        .await;
    if r.status == 200 {
        let events = watch_events(&r);
        let json_events = json_r.json_lines();
        assert_eq!(events, json_events);
    }
    // YAML has no stream serialiser.
    let r = admin
        .get_as(&format!("{ns}/configmaps?watch=true"), "application/yaml")
        .await;
    assert_eq!(r.status, 406, "{}", r.body);

    // kubectl still speaks JSON.
    let kubectl = kubectl_version("1.32");
    let out = server.kubectl(&kubectl, &["get", "pods", "-o", "yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: pb\n"));

    // DELETE answers a Status (ConfigMaps) or the object (Pods) in protobuf.
    let r = admin
        .request(
            "DELETE",
            &format!("{ns}/configmaps/pb-0"),
            &[("accept", CLIENT_GO)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let status = decoded(&r, PROTOBUF);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    let r = admin
        .request("DELETE", &format!("{ns}/pods/pb"), &[("accept", CLIENT_GO)])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(decoded(&r, PROTOBUF)["metadata"]["name"], "pb");
}

#[tokio::test]
async fn custom_resources_are_json_for_protobuf_clients_and_406_for_protobuf_only() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    create_crd(&admin, &simple_crd("pb.example.com", "gadgets", "Gadget")).await;
    let path = "/apis/pb.example.com/v1/namespaces/default/gadgets";
    answers(&admin, path, 200).await;
    let r = admin
        .json(
            "POST",
            path,
            &json!({"apiVersion": "pb.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"a": 1}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let r = admin.get_as(&format!("{path}/g"), CLIENT_GO).await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/json");
    assert_eq!(r.json()["spec"]["a"], 1);
    let r = admin
        .get_as(&format!("{path}?watch=true&timeoutSeconds=1"), CLIENT_GO)
        .await;
    assert_eq!(content_type(&r), "application/json");
    assert!(r.body.contains("\"ADDED\""), "{}", r.body);

    let r = admin.get_as(&format!("{path}/g"), PROTOBUF).await;
    assert_eq!(r.status, 406, "{}", r.body);
    assert_eq!(content_type(&r), "application/json");
    assert_eq!(
        r.json()["message"],
        "only the following media types are accepted: application/json, application/yaml"
    );
    // Errors of custom resources are JSON even for protobuf clients.
    let r = admin.get_as(&format!("{path}/missing"), CLIENT_GO).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["reason"], "NotFound");
}
