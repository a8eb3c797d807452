//! The wire shape of LIST responses, pinned item by item against what a GET of each object
//! answers: typed lists (items without apiVersion/kind, as Go's empty TypeMeta encodes),
//! unstructured custom resource lists (items with theirs), events.k8s.io's converted Events,
//! pages, revisions, selectors, Tables and PartialObjectMetadataLists — in etcd key order.

use crate::common::WITHOUT_CONTROLLERS;
use crate::crds::create_crd;
use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::scrape::Scrape;
use crate::support::wait::{answers, eventually};
use serde_json::{Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
const PARTIAL_LIST: &str = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";

/// `obj` without its apiVersion and kind: a GET body as a typed list's item shows it.
fn without_type_meta(obj: &Value) -> Value {
    let mut obj = obj.clone();
    let map = obj.as_object_mut().unwrap();
    map.remove("apiVersion");
    map.remove("kind");
    obj
}

/// `metadata.resourceVersion` of an object or list, checked to be a non-empty decimal number.
fn rv(obj: &Value) -> u64 {
    let rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no metadata.resourceVersion: {obj}"));
    assert!(
        !rv.is_empty() && rv.bytes().all(|b| b.is_ascii_digit()),
        "resourceVersion {rv:?} is not a number: {obj}"
    );
    rv.parse().unwrap()
}

/// The items of a list.
fn items(list: &Value) -> &Vec<Value> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
}

/// The names of a list's items, in order.
fn names(list: &Value) -> Vec<&str> {
    items(list)
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect()
}

/// The path an item is read at: `<prefix>[/namespaces/<ns>]/<resource>/<name>`.
fn item_path(prefix: &str, resource: &str, item: &Value) -> String {
    let name = item["metadata"]["name"].as_str().unwrap();
    match item["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{resource}/{name}"),
        None => format!("{prefix}/{resource}/{name}"),
    }
}

/// GETs `path` as JSON, which must answer 200.
async fn get(admin: &Https, path: &str) -> Value {
    let r = admin.get_as(path, "application/json").await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// Checks a list's envelope: `kind`, `apiVersion`, and metadata with exactly `meta_keys`
/// besides a numeric resourceVersion not older than any item's. Answers the list's revision.
fn envelope(list: &Value, kind: &str, api_version: &str, meta_keys: &[&str]) -> u64 {
    assert_eq!(list["kind"], kind, "{list}");
    assert_eq!(list["apiVersion"], api_version, "{list}");
    let mut keys: Vec<&str> = list["metadata"]
        .as_object()
        .unwrap_or_else(|| panic!("no list metadata: {list}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want = meta_keys.to_vec();
    want.push("resourceVersion");
    want.sort_unstable();
    assert_eq!(keys, want, "list metadata: {}", list["metadata"]);
    let list_rv = rv(list);
    for item in items(list) {
        assert!(
            rv(item) <= list_rv,
            "item newer than its list {list_rv}: {item}"
        );
    }
    list_rv
}

/// Checks that every item of a typed list has no apiVersion/kind and is, field for field, what a
/// GET of it answers without its apiVersion/kind.
async fn assert_typed_items(admin: &Https, list: &Value, prefix: &str, resource: &str) {
    for item in items(list) {
        assert!(
            item.get("apiVersion").is_none() && item.get("kind").is_none(),
            "a typed list's item carries a TypeMeta: {item}"
        );
        let got = get(admin, &item_path(prefix, resource, item)).await;
        assert_eq!(rv(item), rv(&got), "{item}");
        assert_eq!(*item, without_type_meta(&got));
    }
}

async fn create_namespace(admin: &Https, name: &str) {
    admin
        .create("/api/v1/namespaces", &json!({"metadata": {"name": name}}))
        .await;
}

/// A ConfigMap `name` with `labels` and a data entry naming it.
fn config_map(name: &str, labels: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels, "annotations": {"note": format!("about {name}")}},
        "data": {"name": name, "size": name.len().to_string()}
    })
}

/// Merge-patches `path` and answers the updated object.
async fn merge_patch(admin: &Https, path: &str, patch: &Value) -> Value {
    let r = admin
        .with_body(
            "PATCH",
            path,
            "application/merge-patch+json",
            patch.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "PATCH {path}: {}", r.body);
    r.json()
}

#[tokio::test]
async fn typed_lists_are_the_get_bodies_without_type_meta_in_key_order() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    // Namespaces whose names prefix each other: etcd key order ("lists-b/…" < "lists/…", as
    // '-' < '/') is not the order of (namespace, name) pairs.
    for ns in ["lists-b", "lists", "list"] {
        create_namespace(&admin, ns).await;
        for name in ["zeta", "m.1", "alpha", "m", "m-2"] {
            admin
                .create(
                    &format!("/api/v1/namespaces/{ns}/configmaps"),
                    &config_map(name, json!({"ns": ns})),
                )
                .await;
        }
    }
    let in_key_order = ["alpha", "m", "m-2", "m.1", "zeta"];

    // One namespace.
    let base = "/api/v1/namespaces/lists/configmaps";
    let list = get(&admin, base).await;
    envelope(&list, "ConfigMapList", "v1", &[]);
    assert_eq!(names(&list), in_key_order);
    assert_typed_items(&admin, &list, "/api/v1", "configmaps").await;
    assert_eq!(items(&list)[0]["data"]["name"], "alpha");
    assert_eq!(items(&list)[0]["metadata"]["labels"]["ns"], "lists");
    assert!(
        items(&list)[0]["metadata"]["managedFields"].is_array(),
        "{list}"
    );

    // Every namespace: in key order `<namespace>/<name>`.
    let all = get(&admin, "/api/v1/configmaps").await;
    envelope(&all, "ConfigMapList", "v1", &[]);
    let keys: Vec<String> = items(&all)
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "items are not in key order");
    let ours: Vec<&String> = keys.iter().filter(|k| k.starts_with("list")).collect();
    let want: Vec<String> = ["list", "lists-b", "lists"]
        .iter()
        .flat_map(|ns| in_key_order.iter().map(move |n| format!("{ns}/{n}")))
        .collect();
    assert_eq!(ours, want.iter().collect::<Vec<_>>());
    assert_typed_items(&admin, &all, "/api/v1", "configmaps").await;

    // A cluster-scoped list.
    let namespaces = get(&admin, "/api/v1/namespaces").await;
    envelope(&namespaces, "NamespaceList", "v1", &[]);
    let ns_names = names(&namespaces);
    let mut sorted = ns_names.clone();
    sorted.sort_unstable();
    assert_eq!(ns_names, sorted, "namespaces are not in key order");
    for ns in ["default", "list", "lists", "lists-b"] {
        assert!(ns_names.contains(&ns), "{ns} missing from {ns_names:?}");
    }
    assert_typed_items(&admin, &namespaces, "/api/v1", "namespaces").await;

    // An update shows in the next list with its new resourceVersion; the rest is unchanged.
    let before = get(&admin, base).await;
    let updated = merge_patch(
        &admin,
        &format!("{base}/m"),
        &json!({"data": {"size": "updated"}, "metadata": {"labels": {"touched": "yes"}}}),
    )
    .await;
    let old_rv = rv(&items(&before)[1]);
    assert!(rv(&updated) > old_rv, "{updated}");
    let after = get(&admin, base).await;
    let list_rv = envelope(&after, "ConfigMapList", "v1", &[]);
    assert!(list_rv >= rv(&updated), "{after}");
    assert_eq!(names(&after), in_key_order);
    assert_eq!(rv(&items(&after)[1]), rv(&updated));
    assert_eq!(items(&after)[1], without_type_meta(&updated));
    assert_eq!(items(&after)[1]["data"]["size"], "updated");
    for i in [0, 2, 3, 4] {
        assert_eq!(items(&after)[i], items(&before)[i]);
    }
    assert_typed_items(&admin, &after, "/api/v1", "configmaps").await;
}

#[tokio::test]
async fn pages_keep_the_item_shape_and_count_the_items_that_remain() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    create_namespace(&admin, "pages").await;
    let base = "/api/v1/namespaces/pages/configmaps";
    for name in ["e", "c", "a", "d", "b"] {
        // b is the only one without the label.
        let labels = if name == "b" {
            json!({})
        } else {
            json!({"sel": "yes"})
        };
        admin.create(base, &config_map(name, labels)).await;
    }
    let whole = get(&admin, base).await;
    assert_eq!(names(&whole), ["a", "b", "c", "d", "e"]);

    let first = get(&admin, &format!("{base}?limit=2")).await;
    let list_rv = envelope(
        &first,
        "ConfigMapList",
        "v1",
        &["continue", "remainingItemCount"],
    );
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3, "{first}");
    assert_typed_items(&admin, &first, "/api/v1", "configmaps").await;
    let token = first["metadata"]["continue"].as_str().unwrap();
    assert!(!token.is_empty());

    let second = get(&admin, &format!("{base}?limit=2&continue={token}")).await;
    assert_eq!(
        envelope(
            &second,
            "ConfigMapList",
            "v1",
            &["continue", "remainingItemCount"]
        ),
        list_rv
    );
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!(second["metadata"]["remainingItemCount"], 1, "{second}");
    assert_typed_items(&admin, &second, "/api/v1", "configmaps").await;
    let token = second["metadata"]["continue"].as_str().unwrap();
    assert!(!token.is_empty());

    let last = get(&admin, &format!("{base}?limit=2&continue={token}")).await;
    // The last page has neither a continue token nor a count.
    assert_eq!(envelope(&last, "ConfigMapList", "v1", &[]), list_rv);
    assert_eq!(names(&last), ["e"]);
    assert_typed_items(&admin, &last, "/api/v1", "configmaps").await;
    let pages: Vec<Value> = [&first, &second, &last]
        .iter()
        .flat_map(|p| items(p).clone())
        .collect();
    assert_eq!(&pages, items(&whole));

    // With a selector the count is left out (upstream cannot count matches it has not read).
    let first = get(&admin, &format!("{base}?labelSelector=sel%3Dyes&limit=2")).await;
    envelope(&first, "ConfigMapList", "v1", &["continue"]);
    assert_eq!(names(&first), ["a", "c"]);
    assert_typed_items(&admin, &first, "/api/v1", "configmaps").await;
    let token = first["metadata"]["continue"].as_str().unwrap();
    let last = get(
        &admin,
        &format!("{base}?labelSelector=sel%3Dyes&limit=2&continue={token}"),
    )
    .await;
    envelope(&last, "ConfigMapList", "v1", &[]);
    assert_eq!(names(&last), ["d", "e"]);
    assert_typed_items(&admin, &last, "/api/v1", "configmaps").await;

    // A cluster-scoped list pages alike.
    let all = get(&admin, "/api/v1/namespaces").await;
    let total = items(&all).len();
    assert!(total >= 5, "{all}");
    let first = get(&admin, "/api/v1/namespaces?limit=2").await;
    envelope(
        &first,
        "NamespaceList",
        "v1",
        &["continue", "remainingItemCount"],
    );
    assert_eq!(
        first["metadata"]["remainingItemCount"],
        json!(total - 2),
        "{first}"
    );
    assert_eq!(items(&first)[..], items(&all)[..2]);
    assert_typed_items(&admin, &first, "/api/v1", "namespaces").await;
}

#[tokio::test]
async fn lists_from_the_watch_cache_and_at_an_exact_revision_have_the_same_item_shape() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    create_namespace(&admin, "revs").await;
    let base = "/api/v1/namespaces/revs/configmaps";
    let one = admin.create(base, &config_map("one", json!({}))).await;
    let two = admin.create(base, &config_map("two", json!({}))).await;
    let at_two = rv(&two);
    let one_updated = merge_patch(
        &admin,
        &format!("{base}/one"),
        &json!({"data": {"size": "big"}}),
    )
    .await;
    let at_update = rv(&one_updated);
    let three = admin.create(base, &config_map("three", json!({}))).await;

    // Exact: the list as it was at that revision, items as they were then.
    let then = get(
        &admin,
        &format!("{base}?resourceVersion={at_two}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(envelope(&then, "ConfigMapList", "v1", &[]), at_two);
    assert_eq!(
        *items(&then),
        [without_type_meta(&one), without_type_meta(&two)]
    );
    let then = get(
        &admin,
        &format!("{base}?resourceVersion={at_update}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(envelope(&then, "ConfigMapList", "v1", &[]), at_update);
    assert_eq!(
        *items(&then),
        [without_type_meta(&one_updated), without_type_meta(&two)]
    );

    // resourceVersion=0 (any revision: the watch cache), once it has seen the last write.
    let latest = rv(&three);
    let cached = eventually("the watch cache to catch up", || async {
        let list = get(&admin, &format!("{base}?resourceVersion=0")).await;
        (rv(&list) >= latest).then_some(list)
    })
    .await;
    envelope(&cached, "ConfigMapList", "v1", &[]);
    assert_eq!(
        *items(&cached),
        [
            without_type_meta(&one_updated),
            without_type_meta(&three),
            without_type_meta(&two)
        ]
    );
    assert_typed_items(&admin, &cached, "/api/v1", "configmaps").await;
    let cached = get(&admin, "/api/v1/namespaces?resourceVersion=0").await;
    envelope(&cached, "NamespaceList", "v1", &[]);
    assert!(names(&cached).contains(&"revs"), "{cached}");
    assert_typed_items(&admin, &cached, "/api/v1", "namespaces").await;
}

/// Consistent lists (no resourceVersion) are served from the watch cache, as upstream's
/// ConsistentListFromCache: each one is counted in `apiserver_watch_cache_consistent_read_total`
/// without a fallback, sees the write just acknowledged, and answers at the store's current
/// revision even when the last write was to another resource.
#[tokio::test]
async fn consistent_lists_come_from_the_watch_cache_and_see_every_acknowledged_write() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    create_namespace(&admin, "fresh").await;
    let base = "/api/v1/namespaces/fresh/configmaps";
    let served = [
        ("resource", "/configmaps"),
        ("success", "true"),
        ("fallback", "false"),
    ];
    let fell_back = [("resource", "/configmaps"), ("fallback", "true")];
    let metric = "apiserver_watch_cache_consistent_read_total";
    let before = Scrape::of(&admin).await;
    let mut names_so_far = Vec::new();
    for i in 0..5 {
        let name = format!("cm-{i}");
        admin.create(base, &config_map(&name, json!({}))).await;
        names_so_far.push(name);
        // A write elsewhere moves the store past anything the ConfigMap cache has seen.
        let secret = admin
            .create(
                "/api/v1/namespaces/fresh/secrets",
                &json!({"metadata": {"name": format!("s-{i}")}}),
            )
            .await;
        let list = get(&admin, base).await;
        assert_eq!(names(&list), names_so_far, "{list}");
        assert!(rv(&list) >= rv(&secret), "{list}");
    }
    let after = Scrape::of(&admin).await;
    assert_eq!(
        after.value(metric, &served) - before.value(metric, &served),
        5.0
    );
    assert_eq!(after.value(metric, &fell_back), 0.0);
}

#[tokio::test]
async fn selected_lists_keep_the_item_shape_and_hold_only_the_matches() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    create_namespace(&admin, "sel").await;
    let base = "/api/v1/namespaces/sel/configmaps";
    for (name, labels) in [
        ("web-2", json!({"tier": "web"})),
        ("none", json!({})),
        ("db-1", json!({"tier": "db"})),
        ("web-1", json!({"tier": "web"})),
    ] {
        admin.create(base, &config_map(name, labels)).await;
    }
    for (query, want) in [
        ("labelSelector=tier%3Dweb", &["web-1", "web-2"][..]),
        (
            "labelSelector=tier%20in%20(db%2Cweb)",
            &["db-1", "web-1", "web-2"],
        ),
        ("labelSelector=!tier", &["none"]),
        ("labelSelector=tier%21%3Dweb", &["db-1", "none"]),
        ("fieldSelector=metadata.name%3Ddb-1", &["db-1"]),
        (
            "fieldSelector=metadata.name%21%3Dnone",
            &["db-1", "web-1", "web-2"],
        ),
        (
            "labelSelector=tier%3Dweb&fieldSelector=metadata.name%21%3Dweb-1",
            &["web-2"],
        ),
        ("labelSelector=tier%3Dcache", &[]),
    ] {
        let list = get(&admin, &format!("{base}?{query}")).await;
        envelope(&list, "ConfigMapList", "v1", &[]);
        assert_eq!(names(&list), want, "{query}");
        assert_typed_items(&admin, &list, "/api/v1", "configmaps").await;
    }
    // Across namespaces, by namespace.
    let list = get(
        &admin,
        "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dsel&labelSelector=tier",
    )
    .await;
    envelope(&list, "ConfigMapList", "v1", &[]);
    assert_eq!(names(&list), ["db-1", "web-1", "web-2"]);
    assert_typed_items(&admin, &list, "/api/v1", "configmaps").await;
    // Cluster-scoped, by name and by a status field.
    let list = get(
        &admin,
        "/api/v1/namespaces?fieldSelector=metadata.name%3Dsel",
    )
    .await;
    envelope(&list, "NamespaceList", "v1", &[]);
    assert_eq!(names(&list), ["sel"]);
    assert_typed_items(&admin, &list, "/api/v1", "namespaces").await;
    let all = get(&admin, "/api/v1/namespaces").await;
    let active = get(
        &admin,
        "/api/v1/namespaces?fieldSelector=status.phase%3DActive",
    )
    .await;
    envelope(&active, "NamespaceList", "v1", &[]);
    assert_eq!(names(&active), names(&all));
    assert_typed_items(&admin, &active, "/api/v1", "namespaces").await;
}

#[tokio::test]
async fn lists_larger_than_one_chunk_stream_whole_and_in_key_order() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    create_namespace(&admin, "big").await;
    let base = "/api/v1/namespaces/big/configmaps";
    // About 300 KiB of items: the server sends them in chunks of 64 KiB.
    let filler = "x".repeat(3000);
    let mut want = Vec::new();
    let mut every_seventh = Vec::new();
    for i in 0..100 {
        let name = format!("cm-{i:03}");
        let labels = json!({"seventh": (i % 7 == 0).to_string()});
        let mut cm = config_map(&name, labels);
        cm["data"]["filler"] = json!(filler);
        admin.create(base, &cm).await;
        if i % 7 == 0 {
            every_seventh.push(name.clone());
        }
        want.push(name);
    }

    let reply = admin.get_as(base, "application/json").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.bytes.len() > 300_000, "{} bytes", reply.bytes.len());
    // Streamed, so its length is not known up front.
    assert_eq!(
        reply.headers.get("transfer-encoding").map(|v| v.as_bytes()),
        Some(&b"chunked"[..]),
        "{:?}",
        reply.headers
    );
    let list = reply.json();
    envelope(&list, "ConfigMapList", "v1", &[]);
    assert_eq!(names(&list), want);
    assert_typed_items(&admin, &list, "/api/v1", "configmaps").await;

    // A selection across the chunks: the matching items, byte for byte as the full list has them.
    let selected = get(&admin, &format!("{base}?labelSelector=seventh%3Dtrue")).await;
    envelope(&selected, "ConfigMapList", "v1", &[]);
    assert_eq!(names(&selected), every_seventh);
    let from_full: Vec<&Value> = items(&list)
        .iter()
        .filter(|i| i["metadata"]["labels"]["seventh"] == "true")
        .collect();
    assert_eq!(items(&selected).iter().collect::<Vec<_>>(), from_full);
}

/// A namespaced CRD `gizmos.<group>` of kind Gizmo served at v1 (storage) and v1beta1.
fn two_version_crd(group: &str) -> Value {
    let version = |name: &str, storage: bool| {
        json!({
            "name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}}
        })
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gizmos.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [version("v1", true), version("v1beta1", false)]
        }
    })
}

#[tokio::test]
async fn custom_resource_lists_keep_each_items_apiversion_and_kind() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    let group = "lists.example.com";
    create_crd(&admin, &two_version_crd(group)).await;
    create_namespace(&admin, "crs").await;
    let v1 = format!("/apis/{group}/v1/namespaces/crs/gizmos");
    let beta = format!("/apis/{group}/v1beta1/namespaces/crs/gizmos");
    answers(&admin, &v1, 200).await;
    answers(&admin, &beta, 200).await;
    for (path, version, name, size) in [
        (&v1, "v1", "g-b", 2),
        (&beta, "v1beta1", "g-a", 1),
        (&v1, "v1", "g-c", 3),
    ] {
        admin
            .create(
                path,
                &json!({
                    "apiVersion": format!("{group}/{version}"), "kind": "Gizmo",
                    "metadata": {"name": name, "labels": {"big": (size > 1).to_string()}},
                    "spec": {"size": size, "parts": ["x", {"y": null}]}
                }),
            )
            .await;
    }

    for (path, version) in [(&v1, "v1"), (&beta, "v1beta1")] {
        let api_version = format!("{group}/{version}");
        let checks = |list: &Value| {
            for item in items(list) {
                assert_eq!(item["apiVersion"], api_version.as_str(), "{item}");
                assert_eq!(item["kind"], "Gizmo", "{item}");
            }
        };
        let list = get(&admin, path).await;
        envelope(&list, "GizmoList", &api_version, &[]);
        assert_eq!(names(&list), ["g-a", "g-b", "g-c"], "{version}");
        checks(&list);
        for item in items(&list) {
            let name = item["metadata"]["name"].as_str().unwrap();
            assert_eq!(*item, get(&admin, &format!("{path}/{name}")).await);
        }
        assert_eq!(items(&list)[1]["spec"]["parts"][0], "x");

        // A page, a selection and the cluster-wide list have the same items.
        let page = get(&admin, &format!("{path}?limit=2")).await;
        envelope(
            &page,
            "GizmoList",
            &api_version,
            &["continue", "remainingItemCount"],
        );
        assert_eq!(page["metadata"]["remainingItemCount"], 1, "{page}");
        assert_eq!(items(&page)[..], items(&list)[..2]);
        let token = page["metadata"]["continue"].as_str().unwrap();
        let rest = get(&admin, &format!("{path}?limit=2&continue={token}")).await;
        envelope(&rest, "GizmoList", &api_version, &[]);
        assert_eq!(items(&rest)[..], items(&list)[2..]);
        let big = get(&admin, &format!("{path}?labelSelector=big%3Dtrue")).await;
        envelope(&big, "GizmoList", &api_version, &[]);
        assert_eq!(names(&big), ["g-b", "g-c"]);
        assert_eq!(items(&big)[..], items(&list)[1..]);
        let all = get(&admin, &format!("/apis/{group}/{version}/gizmos")).await;
        envelope(&all, "GizmoList", &api_version, &[]);
        assert_eq!(items(&all), items(&list));
        checks(&all);
    }
}

#[tokio::test]
async fn events_k8s_io_lists_show_core_events_in_their_own_shape() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    let core = "/api/v1/namespaces/default/events";
    let events = "/apis/events.k8s.io/v1/namespaces/default/events";
    for (name, message) in [("pod.2", "pulled image"), ("pod.1", "started container")] {
        admin
            .create(
                core,
                &json!({
                    "metadata": {"name": name},
                    "involvedObject": {"kind": "Pod", "name": "pod", "namespace": "default", "apiVersion": "v1"},
                    "reason": "Started",
                    "message": message,
                    "source": {"component": "kubelet", "host": "node-1"},
                    "firstTimestamp": "2024-01-01T00:00:00Z",
                    "lastTimestamp": "2024-01-01T00:01:00Z",
                    "count": 2,
                    "type": "Normal"
                }),
            )
            .await;
    }

    let core_list = get(&admin, core).await;
    envelope(&core_list, "EventList", "v1", &[]);
    assert_eq!(names(&core_list), ["pod.1", "pod.2"]);
    assert_typed_items(&admin, &core_list, "/api/v1", "events").await;
    assert_eq!(items(&core_list)[0]["message"], "started container");

    let list = get(&admin, events).await;
    envelope(&list, "EventList", "events.k8s.io/v1", &[]);
    assert_eq!(names(&list), ["pod.1", "pod.2"]);
    assert_typed_items(&admin, &list, "/apis/events.k8s.io/v1", "events").await;
    for (item, core_item) in items(&list).iter().zip(items(&core_list)) {
        // Renamed as upstream's conversion renames them; the metadata is the same object's.
        for (field, core_field) in [
            ("note", "message"),
            ("regarding", "involvedObject"),
            ("deprecatedSource", "source"),
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
        ] {
            assert_eq!(item[field], core_item[core_field], "{field}: {item}");
            assert!(item.get(core_field).is_none(), "{core_field}: {item}");
        }
        assert_eq!(item["reason"], "Started");
        assert_eq!(item["type"], "Normal");
        assert_eq!(item["metadata"], core_item["metadata"]);
    }
    assert_eq!(items(&list)[0]["note"], "started container");
    assert_eq!(items(&list)[0]["regarding"]["name"], "pod");
    assert_eq!(items(&list)[0]["deprecatedCount"], 2);

    // Selected by an events.k8s.io field, and paged.
    let selected = get(
        &admin,
        &format!("{events}?fieldSelector=regarding.name%3Dpod,reason%3DStarted"),
    )
    .await;
    envelope(&selected, "EventList", "events.k8s.io/v1", &[]);
    assert_eq!(items(&selected), items(&list));
    let page = get(&admin, &format!("{events}?limit=1")).await;
    envelope(
        &page,
        "EventList",
        "events.k8s.io/v1",
        &["continue", "remainingItemCount"],
    );
    assert_eq!(page["metadata"]["remainingItemCount"], 1, "{page}");
    assert_eq!(items(&page)[..], items(&list)[..1]);
}

#[tokio::test]
async fn tables_and_partial_object_metadata_lists_describe_every_item() {
    let mut server = TestServer::up(WITHOUT_CONTROLLERS);
    server.wait_ready().await;
    let admin = server.admin();
    create_namespace(&admin, "views").await;
    let base = "/api/v1/namespaces/views/configmaps";
    for (name, data) in [
        ("c", json!({"k": "1"})),
        ("a", json!({"k": "1", "l": "2"})),
        ("b", json!({})),
    ] {
        admin
            .create(base, &json!({"metadata": {"name": name}, "data": data}))
            .await;
    }
    let list = get(&admin, base).await;
    assert_eq!(names(&list), ["a", "b", "c"]);
    let mut bodies = Vec::new();
    for name in ["a", "b", "c"] {
        bodies.push(get(&admin, &format!("{base}/{name}")).await);
    }

    // A Table: a row an item, in order, with the item's metadata, the object or nothing.
    for include in [
        "",
        "&includeObject=Metadata",
        "&includeObject=Object",
        "&includeObject=None",
    ] {
        let r = admin
            .get_as(&format!("{base}?limit=500{include}"), TABLE)
            .await;
        assert_eq!(r.status, 200, "{include}: {}", r.body);
        let table = r.json();
        assert_eq!(table["kind"], "Table", "{table}");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1", "{table}");
        let table_rv = rv(&table);
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Name", "Data", "Age"], "{table}");
        let rows = table["rows"].as_array().unwrap();
        assert_eq!(rows.len(), items(&list).len(), "{table}");
        for (row, (body, data)) in rows.iter().zip(bodies.iter().zip([2, 0, 1])) {
            assert_eq!(row["cells"][0], body["metadata"]["name"], "{row}");
            assert_eq!(row["cells"][1], data, "{row}");
            assert!(rv(body) <= table_rv);
            let object = &row["object"];
            match include {
                "&includeObject=Object" => assert_eq!(object, body),
                "&includeObject=None" => assert!(object.is_null(), "{row}"),
                _ => {
                    assert_eq!(object["kind"], "PartialObjectMetadata", "{row}");
                    assert_eq!(object["apiVersion"], "meta.k8s.io/v1", "{row}");
                    assert_eq!(object["metadata"], body["metadata"], "{row}");
                }
            }
        }
    }
    let r = admin.get_as(&format!("{base}?limit=2"), TABLE).await;
    let table = r.json();
    assert_eq!(table["rows"].as_array().unwrap().len(), 2, "{table}");
    assert_eq!(table["metadata"]["remainingItemCount"], 1, "{table}");
    assert!(
        table["metadata"]["continue"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{table}"
    );

    // A PartialObjectMetadataList: each item's whole metadata, resourceVersion included.
    let r = admin.get_as(base, PARTIAL_LIST).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let partial = r.json();
    envelope(&partial, "PartialObjectMetadataList", "meta.k8s.io/v1", &[]);
    assert_eq!(items(&partial).len(), items(&list).len());
    for (item, body) in items(&partial).iter().zip(&bodies) {
        assert_eq!(item["kind"], "PartialObjectMetadata", "{item}");
        assert_eq!(item["apiVersion"], "meta.k8s.io/v1", "{item}");
        assert_eq!(rv(item), rv(body));
        assert_eq!(item["metadata"], body["metadata"]);
        assert_eq!(item.as_object().unwrap().len(), 3, "{item}");
    }
    let r = admin.get_as(&format!("{base}?limit=2"), PARTIAL_LIST).await;
    let page = r.json();
    envelope(
        &page,
        "PartialObjectMetadataList",
        "meta.k8s.io/v1",
        &["continue", "remainingItemCount"],
    );
    assert_eq!(page["metadata"]["remainingItemCount"], 1, "{page}");
    assert_eq!(items(&page)[..], items(&partial)[..2]);
}
