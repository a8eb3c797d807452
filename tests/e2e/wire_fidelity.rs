//! Upstream's exact words and bytes where clients and tools match them: protobuf for
//! apiextensions.k8s.io, strict decoding's duplicate fields, Go's serialisation of templates,
//! validation messages, discovery order, and the errors of malformed requests.

use crate::common::{newest_kubectl, ok};
use crate::crds::create_crd;
use crate::support::https::{Https, Reply};
use crate::support::kubeboot::TestServer;
use crate::support::wait::answers;
use kubeboot::protobuf;
use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

fn message(r: &Reply) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

fn warnings(r: &Reply) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

/// A CRD with a schema protobuf must carry in full: pointers set to zero, `false` schemas,
/// nested schemas, and a rule.
fn widget_crd(group: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object",
                        "x-kubernetes-validations": [{"rule": "self.size >= 0", "message": "size"}],
                        "properties": {
                            "size": {"type": "integer", "minimum": 0, "maximum": 10.5},
                            "replicas": {"type": "integer"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "closed": {"type": "object", "additionalProperties": false}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    })
}

#[tokio::test]
async fn custom_resource_definitions_travel_as_protobuf() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let crd = widget_crd("pb.example.com");
    let mut sender = admin.connect().await.unwrap();
    let r = Https::send_body(
        &mut sender,
        "POST",
        CRDS,
        &[("content-type", PROTOBUF), ("accept", PROTOBUF)],
        protobuf::encode(&crd).unwrap().into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let created = protobuf::decode(&r.bytes).unwrap();
    let schema = "/spec/versions/0/schema/openAPIV3Schema/properties/spec";
    assert_eq!(
        created.pointer(schema),
        crd.pointer(schema),
        "the schema came back whole"
    );
    // The JSON view of what protobuf stored is the same schema.
    let name = "widgets.pb.example.com";
    let r = admin
        .get_as(&format!("{CRDS}/{name}"), "application/json")
        .await;
    assert_eq!(r.json().pointer(schema), crd.pointer(schema));
    // Lists and reads answer in protobuf, and the custom resources are served.
    let list = admin.get_as(CRDS, PROTOBUF).await;
    let list = protobuf::decode(&list.bytes).unwrap();
    assert_eq!(list["kind"], "CustomResourceDefinitionList");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["metadata"]["name"] == name)
    );
    answers(
        &admin,
        "/apis/pb.example.com/v1/namespaces/default/widgets",
        200,
    )
    .await;
}

#[tokio::test]
async fn strict_decoding_names_duplicate_fields_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let body = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","labels":{"a":"1","a":"2"}},
        "spec":{"replicas":1,"unknownField":1,"replicas":2,"selector":{"matchLabels":{"app":"d"}},
        "template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"i","name":"c"}]}}}}"#;
    let expected = [
        r#"duplicate field "metadata.labels.a""#,
        r#"unknown field "spec.unknownField""#,
        r#"duplicate field "spec.replicas""#,
        r#"duplicate field "spec.template.spec.containers[0].name""#,
    ];
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let r = admin
        .with_body(
            "POST",
            &format!("{path}?fieldValidation=Strict"),
            "application/json",
            body,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        message(&r),
        format!(
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: {}",
            expected.join(", ")
        )
    );
    // Warn: the same texts as warnings, and the last value wins.
    let r = admin
        .with_body(
            "POST",
            &format!("{path}?fieldValidation=Warn"),
            "application/json",
            body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let want: Vec<String> = expected.iter().map(|e| format!("299 - {e:?}")).collect();
    assert_eq!(warnings(&r), want);
    assert_eq!(r.json()["spec"]["replicas"], 2);

    // Custom resources: the JSON decoder's duplicates, then pruning's unknown fields.
    create_crd(&admin, &widget_crd("dup.example.com")).await;
    let crs = "/apis/dup.example.com/v1/namespaces/default/widgets";
    answers(&admin, crs, 200).await;
    let r = admin
        .with_body(
            "POST",
            &format!("{crs}?fieldValidation=Strict"),
            "application/json",
            r#"{"apiVersion":"dup.example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":1,"x":1,"size":2}}"#,
        )
        .await;
    assert_eq!(
        message(&r),
        r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: duplicate field "spec.size", unknown field "spec.x""#
    );

    // Server-side apply: go-yaml's words for a repeated key.
    let apply = |validation: &'static str| {
        let admin = admin.clone();
        async move {
            admin
                .with_body(
                    "PATCH",
                    &format!("{path}/applied?fieldManager=m&fieldValidation={validation}"),
                    "application/apply-patch+yaml",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: applied\nspec:\n  replicas: 1\n  replicas: 2\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec: {containers: [{name: c, image: i}]}\n",
                )
                .await
        }
    };
    let r = apply("Strict").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        message(&r),
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"replicas\" already set in map"
    );
    let r = apply("Warn").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        warnings(&r),
        [r#"299 - "line 7: key \"replicas\" already set in map""#]
    );
    assert_eq!(r.json()["spec"]["replicas"], 2);
    // A field the schema lacks cannot be typed for merging: upstream's 500, whatever the
    // validation asked for.
    let r = admin
        .with_body(
            "PATCH",
            &format!("{crs}/w?fieldManager=m&fieldValidation=Ignore"),
            "application/apply-patch+yaml",
            "apiVersion: dup.example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nunknownField: 1\nspec: {size: 1}\n",
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        message(&r),
        "failed to create typed patch object (default/w; dup.example.com/v1, Kind=Widget): .unknownField: field not declared in schema"
    );
}

#[tokio::test]
async fn objects_serialise_and_print_as_go_writes_them() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let ns = "/apis/apps/v1/namespaces/default";
    let mut d = deployment("web");
    d["spec"]["template"]["spec"]["serviceAccountName"] = json!("builder");
    let created = admin.create(&format!("{ns}/deployments"), &d).await;
    let template = &created["spec"]["template"];
    assert_eq!(
        template["metadata"],
        json!({"creationTimestamp": null, "labels": {"app": "web"}})
    );
    assert_eq!(template["spec"]["containers"][0]["resources"], json!({}));
    assert_eq!(template["spec"]["serviceAccount"], "builder");
    // Stored so: a read gives the same.
    let read = admin
        .get(&format!("{ns}/deployments/web"))
        .await
        .unwrap()
        .json();
    assert_eq!(read["spec"]["template"], *template);

    // A StatefulSet's claim templates are claims, defaulted as claims.
    let mut ss = deployment("db");
    ss["kind"] = json!("StatefulSet");
    ss["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    let ss = admin.create(&format!("{ns}/statefulsets"), &ss).await;
    let claim = &ss["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["creationTimestamp"], Value::Null);
    assert!(claim["metadata"].get("creationTimestamp").is_some());
    assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
    assert_eq!(claim["status"], json!({"phase": "Pending"}));

    // Validation values as Go's %#v renders a map[string]string.
    let mut bad = deployment("bad");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other", "b": "c"});
    let r = admin.json("POST", &format!("{ns}/deployments"), &bad).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message(&r),
        r#"Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"other", "b":"c"}: `selector` does not match template `labels`"#
    );

    // Table booleans print as upstream's printers print them.
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    admin
        .create("/apis/batch/v1/namespaces/default/cronjobs", &cj)
        .await;
    let out = server.kubectl(
        &newest_kubectl(),
        &["get", "cronjob", "nightly", "--no-headers"],
    );
    let row = ok(&out, "kubectl get cronjob");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>()[..4],
        ["nightly", "0", "0", "*"]
    );
    assert!(row.contains(" False "), "{row}");

    // OpenAPI carries upstream's enums, which kubectl explain lists.
    let out = server.kubectl(&newest_kubectl(), &["explain", "pod.spec.restartPolicy"]);
    let explained = ok(&out, "kubectl explain");
    assert!(
        explained.contains(
            "Possible enum values:\n     - `\"Always\"`\n     - `\"Never\"`\n     - `\"OnFailure\"`"
        ),
        "{explained}"
    );
}

#[tokio::test]
async fn custom_resources_validate_and_discover_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    // A schema every version shares is checked once, at upstream's internal path, and a rule
    // shows as upstream's Go struct.
    let mut bad_rule = widget_crd("rule.example.com");
    bad_rule["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.nosuch > 1"}]);
    let r = admin.json("POST", CRDS, &bad_rule).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        message(&r).starts_with(
            r#"CustomResourceDefinition.apiextensions.k8s.io "widgets.rule.example.com" is invalid: spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"self.nosuch > 1", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation failed: "#
        ),
        "{}",
        r.body
    );
    // Kinds are DNS-1035 labels in any case: dashes and digits are fine.
    let mut dashed = widget_crd("dash.example.com");
    dashed["spec"]["names"]["kind"] = json!("e2e-test-1-crd");
    create_crd(&admin, &dashed).await;
    create_crd(&admin, &widget_crd("val.example.com")).await;
    let crs = "/apis/val.example.com/v1/namespaces/default/widgets";
    answers(&admin, crs, 200).await;
    let widget = |spec: Value| json!({"apiVersion": "val.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    // A wrong type stops the rules, and upstream says so in a cause of its own.
    let r = admin.json("POST", crs, &widget(json!({"size": "x"}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        message(&r),
        r#"Widget.val.example.com "w" is invalid: [spec.size: Invalid value: "string": spec.size in body must be of type integer: "string", <nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]"#
    );
    let causes = r.json()["details"]["causes"].clone();
    assert_eq!(causes[0]["reason"], "FieldValueTypeInvalid");
    assert_eq!(causes[1]["field"], "<nil>");
    // The scale subresource's replicas must be a non-negative int32.
    let r = admin
        .json("POST", crs, &widget(json!({"size": 1, "replicas": -1})))
        .await;
    assert_eq!(
        message(&r),
        r#"Widget.val.example.com "w" is invalid: .spec.replicas: Invalid value: -1: should be a non-negative integer"#
    );
    let r = admin
        .json("POST", crs, &widget(json!({"size": 1, "replicas": "two"})))
        .await;
    assert!(
        message(&r).contains(".spec.replicas: Invalid value: 0: .spec.replicas accessor error: two is of the type string, expected int64"),
        "{}",
        r.body
    );

    // Discovery: apiextensions' verb order, status before scale.
    let list = admin.get("/apis/val.example.com/v1").await.unwrap().json();
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["widgets", "widgets/status", "widgets/scale"]);
    assert_eq!(
        list["resources"][0]["verbs"],
        json!([
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch"
        ])
    );
    // Built-in kinds keep go-restful's sorted order.
    let apps = admin.get("/apis/apps/v1").await.unwrap().json();
    let deployments: Vec<&str> = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str().filter(|n| n.starts_with("deployments")))
        .collect();
    assert_eq!(
        deployments,
        ["deployments", "deployments/scale", "deployments/status"]
    );

    // An unknown resource: a Status below a built-in group, Go's plain 404 below a custom one.
    let r = admin.get("/apis/apps/v1/nosuch").await.unwrap();
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (404, Some("NotFound"))
    );
    let r = admin.get("/apis/val.example.com/v1/nosuch").await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
}

#[tokio::test]
async fn malformed_requests_get_upstreams_errors() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let cms = "/api/v1/namespaces/default/configmaps";
    admin
        .create(
            cms,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )
        .await;
    // Malformed JSON in Go's encoding/json words, inside the serializer's and handler's.
    for (body, expected) in [
        (
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"q"}"#,
            r#"the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: unexpected end of JSON input ({"apiVersion":"v1","kind":"Con ...)"#,
        ),
        (
            "xyz",
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: invalid character 'x' looking for beginning of value (78797a)",
        ),
        (
            "nul",
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: invalid character ' ' in literal null (expecting 'l') (6e756c)",
        ),
    ] {
        let r = admin.with_body("POST", cms, "application/json", body).await;
        assert_eq!(
            (r.status, message(&r)),
            (400, expected.to_string()),
            "{body}"
        );
    }
    for (content_type, expected) in [
        (
            "merge-patch+json",
            "error decoding patch: unexpected end of JSON input",
        ),
        (
            "json-patch+json",
            "error decoding patch: unexpected end of JSON input",
        ),
        ("strategic-merge-patch+json", "unexpected end of JSON input"),
    ] {
        let r = admin
            .with_body(
                "PATCH",
                &format!("{cms}/x"),
                &format!("application/{content_type}"),
                r#"{"a":"#,
            )
            .await;
        assert_eq!(
            (r.status, message(&r)),
            (400, expected.to_string()),
            "{content_type}"
        );
    }
    let r = admin
        .with_body(
            "PATCH",
            &format!("{cms}/x"),
            "application/merge-patch+json",
            "[]",
        )
        .await;
    assert_eq!(
        message(&r),
        "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    // Continue tokens: upstream's format and DecodeContinue's words.
    let r = admin.get(&format!("{cms}?limit=1")).await.unwrap().json();
    let token = r["metadata"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!token.is_empty(), "two ConfigMaps, a page of one: {r}");
    {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .unwrap();
        let raw: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(raw["v"], "meta.k8s.io/v1", "{raw}");
    }
    for (token, expected) in [
        (
            "abc",
            "invalid character 'i' looking for beginning of value",
        ),
        ("not%20a%20token", "illegal base64 data at input byte 3"),
    ] {
        let r = admin
            .get(&format!("{cms}?limit=1&continue={token}"))
            .await
            .unwrap();
        assert_eq!(
            (r.status, message(&r)),
            (
                400,
                format!("invalid continue token: continue key is not valid: {expected}")
            )
        );
    }
    // A core resource's Status details carry no empty group.
    let r = admin.get(&format!("{cms}/missing")).await.unwrap();
    assert_eq!(
        r.json()["details"],
        json!({"name": "missing", "kind": "configmaps"})
    );
    // A PATCH of no patch type is go-restful's 415, before the object is looked up.
    for path in [format!("{cms}/x"), format!("{cms}/missing")] {
        let r = admin.with_body("PATCH", &path, "text/plain", "{}").await;
        assert_eq!(r.status, 415, "{}", r.body);
        assert_eq!(message(&r), "415: Unsupported Media Type");
    }
    // Field selectors: the scheme's default conversion, or the kind's own.
    let r = admin
        .get(&format!("{cms}?fieldSelector=spec.nope%3D1"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r),
        r#""spec.nope" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );
    let r = admin
        .get("/api/v1/namespaces/default/pods?fieldSelector=spec.nope%3D1")
        .await
        .unwrap();
    assert_eq!(message(&r), "field label not supported: spec.nope");
    // Label selectors: upstream's lexer and parser, in its words.
    for (selector, expected) in [
        (
            "a%20label",
            "unable to parse requirement: found 'label', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "a%20in%20(b",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        ("a=b%20c", "found 'c', expected: ',' or 'end of string'"),
    ] {
        let r = admin
            .get(&format!("{cms}?labelSelector={selector}"))
            .await
            .unwrap();
        assert_eq!(
            (r.status, message(&r)),
            (400, expected.to_string()),
            "{selector}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_stay_served_while_their_definition_changes() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    create_crd(&admin, &widget_crd("upd.example.com")).await;
    let crs = "/apis/upd.example.com/v1/namespaces/default/widgets";
    answers(&admin, crs, 200).await;
    admin
        .create(
            crs,
            &json!({"apiVersion": "upd.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}),
        )
        .await;
    // Reads go on while the schema changes; none may find the resource gone.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (admin, stop) = (admin.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = admin.get(&format!("{crs}/w")).await.unwrap();
                statuses.push(r.status);
            }
            statuses
        })
    };
    let crd = format!("{CRDS}/widgets.upd.example.com");
    for i in 0..5 {
        let patch = json!([{"op": "add",
            "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/labels/default",
            "value": {"round": i.to_string()}}]);
        let r = admin
            .with_body(
                "PATCH",
                &crd,
                "application/json-patch+json",
                patch.to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = reader.await.unwrap();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The stored object is defaulted on read with the newest schema.
    let w = admin.get(&format!("{crs}/w")).await.unwrap().json();
    assert_eq!(w["spec"]["labels"], json!({"round": "4"}));
}

#[tokio::test]
async fn horizontal_pod_autoscalers_are_served_as_autoscaling_v1_too() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let groups = admin.get("/apis/autoscaling").await.unwrap().json();
    assert_eq!(
        groups["versions"],
        json!([{"groupVersion": "autoscaling/v2", "version": "v2"},
            {"groupVersion": "autoscaling/v1", "version": "v1"}])
    );
    let v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    let v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
    let created = admin
        .create(
            v1,
            &json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}}),
        )
        .await;
    assert_eq!(created["apiVersion"], "autoscaling/v1");
    assert_eq!(created["spec"]["minReplicas"], 1);
    assert_eq!(created["spec"]["targetCPUUtilizationPercentage"], 60);
    // One object, stored once, seen through both versions.
    let through_v2 = admin.get(&format!("{v2}/web")).await.unwrap().json();
    assert_eq!(
        through_v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 60}}}])
    );
    // A v2 metric v1 cannot express survives a v1 update in upstream's annotation.
    let mut updated = through_v2.clone();
    updated["spec"]["metrics"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "1Gi"}}}));
    let r = admin.json("PUT", &format!("{v2}/web"), &updated).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut through_v1 = admin.get(&format!("{v1}/web")).await.unwrap().json();
    assert!(
        through_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap()
            .contains("memory")
    );
    through_v1["spec"]["maxReplicas"] = json!(7);
    let r = admin.json("PUT", &format!("{v1}/web"), &through_v1).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = admin.get(&format!("{v2}/web")).await.unwrap().json();
    assert_eq!(after["spec"]["maxReplicas"], 7);
    assert_eq!(after["spec"]["metrics"].as_array().unwrap().len(), 2);
    assert!(after["metadata"].get("annotations").is_none(), "{after}");
    let out = server.kubectl(&newest_kubectl(), &["get", "hpa.v1.autoscaling", "web"]);
    assert!(ok(&out, "kubectl get hpa").contains("Deployment/web"));
}
