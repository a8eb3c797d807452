//! CustomResourceDefinitions end to end: real kubectl and kube-rs against a started server.

use crate::common::{failed, kubectls, newest_kubectl, ok};
use crate::support::https::{Https, Reply};
use crate::support::kubeboot::TestServer;
use crate::support::wait::{answers, eventually};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// The condition `kind` of a CRD object.
fn condition(crd: &Value, kind: &str) -> Option<Value> {
    crd["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
}

/// Waits until the CRD `name` is Established and answers its object.
pub(crate) async fn established(admin: &Https, name: &str) -> Value {
    eventually(&format!("{name} Established"), || async {
        let crd = admin.get(&format!("{CRDS}/{name}")).await.ok()?.json();
        (condition(&crd, "Established")?["status"] == "True").then_some(crd)
    })
    .await
}

/// A namespaced CRD `<plural>.<group>` of kind `kind`, one served+storage version v1 with a
/// free-form spec.
pub(crate) fn simple_crd(group: &str, plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    })
}

pub(crate) async fn create_crd(admin: &Https, crd: &Value) -> Value {
    let r = admin.json("POST", CRDS, crd).await;
    assert_eq!(r.status, 201, "create CRD: {}", r.body);
    established(admin, crd["metadata"]["name"].as_str().unwrap()).await
}

/// The CRD of the kubectl workflow, in group GROUP.
const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.GROUP
spec:
  group: GROUP
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: &subresources
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns: &columns
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    selectableFields: &selectable
    - jsonPath: .spec.color
    schema: &schema
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: WidgetSpec is the desired state of a widget.
            x-kubernetes-validations:
            - rule: self.replicas >= self.minReplicas
              message: replicas must not be below minReplicas
            properties:
              color:
                type: string
                description: The color the widget is painted.
                enum: [red, green, blue]
              size:
                type: string
                description: How big the widget is.
                default: medium
              replicas: {type: integer, minimum: 0, default: 1}
              minReplicas: {type: integer, minimum: 0, default: 0}
          status:
            type: object
            properties:
              replicas: {type: integer}
              phase: {type: string}
  - name: v1beta1
    served: true
    storage: false
    subresources: *subresources
    additionalPrinterColumns: *columns
    selectableFields: *selectable
    schema: *schema
"#;

const WIDGETS: &str = r#"
apiVersion: GROUP/v1
kind: Widget
metadata: {name: blue-one, namespace: NS}
spec: {color: blue, replicas: 2}
---
apiVersion: GROUP/v1
kind: Widget
metadata: {name: red-one, namespace: NS}
spec: {color: red, size: large, replicas: 3}
"#;

/// The kubectl workflow against CRD group `group`, with one kubectl binary.
async fn kubectl_crd_workflow(
    server: &TestServer,
    kubectl: &Path,
    version: &str,
    group: &str,
    dir: &Path,
) {
    let cache = dir.join(format!("cache-{version}"));
    let cache_flag = format!("--cache-dir={}", cache.display());
    let k = |args: &[&str]| {
        let mut all = vec![cache_flag.as_str()];
        all.extend_from_slice(args);
        server.kubectl(kubectl, &all)
    };
    let what = |s: &str| format!("kubectl {version}: {s}");
    let ns = "default";
    let write = |name: &str, text: &str| {
        let path = dir.join(format!("{version}-{name}.yaml"));
        std::fs::write(&path, text.replace("GROUP", group).replace("NS", ns)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let crd_name = format!("widgets.{group}");

    let crd_file = write("crd", WIDGET_CRD);
    let out = ok(&k(&["apply", "-f", &crd_file]), &what("apply CRD"));
    assert_eq!(
        out,
        format!("customresourcedefinition.apiextensions.k8s.io/{crd_name} created\n")
    );
    let out = ok(
        &k(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=30s",
            &format!("crd/{crd_name}"),
        ]),
        &what("wait established"),
    );
    assert_eq!(
        out,
        format!("customresourcedefinition.apiextensions.k8s.io/{crd_name} condition met\n")
    );

    let objs = write("widgets", WIDGETS);
    let out = ok(&k(&["apply", "-f", &objs]), &what("apply widgets"));
    assert_eq!(
        out,
        format!("widget.{group}/blue-one created\nwidget.{group}/red-one created\n"),
    );
    let again = ok(&k(&["apply", "-f", &objs]), &what("re-apply widgets"));
    assert_eq!(
        again,
        format!("widget.{group}/blue-one unchanged\nwidget.{group}/red-one unchanged\n"),
    );

    // Printer columns, in the order of the CRD, then Age.
    let table = ok(&k(&["get", "widgets", "-n", ns]), &what("get widgets"));
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "COLOR", "SIZE", "REPLICAS"], "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(
        lines[1][..4],
        ["blue-one", "blue", "medium", "2"],
        "{table}"
    );
    assert_eq!(lines[2][..4], ["red-one", "red", "large", "3"], "{table}");
    let by_short = ok(&k(&["get", "wd", "-n", ns, "-o", "name"]), &what("get wd"));
    assert_eq!(
        by_short,
        format!("widget.{group}/blue-one\nwidget.{group}/red-one\n")
    );

    // Defaults from the schema are stored.
    let blue: Value = serde_json::from_str(&ok(
        &k(&["get", "widget", "blue-one", "-n", ns, "-o", "json"]),
        &what("get -o json"),
    ))
    .unwrap();
    assert_eq!(
        blue["spec"],
        json!({"color": "blue", "size": "medium", "replicas": 2, "minReplicas": 0})
    );
    assert_eq!(blue["apiVersion"], format!("{group}/v1"));
    assert_eq!(blue["metadata"]["generation"], 1);

    // An object breaking a rule: the CEL rule's message.
    let bad = write(
        "bad",
        "apiVersion: GROUP/v1\nkind: Widget\nmetadata: {name: bad, namespace: NS}\nspec: {color: red, replicas: 1, minReplicas: 3}\n",
    );
    let err = failed(&k(&["apply", "-f", &bad]), &what("apply invalid"));
    assert!(
        err.contains(
            "The Widget \"bad\" is invalid: spec: Invalid value: \"object\": replicas must not be below minReplicas\n"
        ),
        "{}\n{err}",
        what("invalid")
    );
    let admin = server.admin();
    let r = admin
        .json(
            "POST",
            &format!("/apis/{group}/v1/namespaces/{ns}/widgets"),
            &json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "bad"},
                "spec": {"color": "purple", "replicas": 1, "minReplicas": 3}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        format!(
            r#"Widget.{group} "bad" is invalid: [spec.color: Unsupported value: "purple": supported values: "red", "green", "blue", <nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]"#
        )
    );
    // A schema violation stops the rules, as upstream's hasBlockingErr.
    assert_eq!(
        status["details"]["causes"],
        json!([
            {"reason": "FieldValueNotSupported", "message": r#"Unsupported value: "purple": supported values: "red", "green", "blue""#, "field": "spec.color"},
            {"reason": "FieldValueInvalid", "message": r#"Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#, "field": "<nil>"}
        ])
    );

    // Unknown fields: refused by kubectl's strict field validation, pruned without it.
    let unknown = write(
        "unknown",
        "apiVersion: GROUP/v1\nkind: Widget\nmetadata: {name: odd, namespace: NS}\nspec: {color: green, unknown: 1}\n",
    );
    let err = failed(&k(&["apply", "-f", &unknown]), &what("apply unknown field"));
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.unknown""#),
        "{}\n{err}",
        what("strict")
    );
    ok(
        &k(&["apply", "--validate=false", "-f", &unknown]),
        &what("apply --validate=false"),
    );
    let odd: Value = serde_json::from_str(&ok(
        &k(&["get", "widget", "odd", "-n", ns, "-o", "json"]),
        &what("get odd"),
    ))
    .unwrap();
    assert_eq!(
        odd["spec"],
        json!({"color": "green", "size": "medium", "replicas": 1, "minReplicas": 0}),
        "unknown field pruned"
    );

    // The scale subresource.
    let out = ok(
        &k(&["scale", "widget", "blue-one", "-n", ns, "--replicas=5"]),
        &what("scale"),
    );
    assert_eq!(out, format!("widget.{group}/blue-one scaled\n"));
    let replicas = ok(
        &k(&[
            "get",
            "widget",
            "blue-one",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}",
        ]),
        &what("jsonpath"),
    );
    assert_eq!(replicas, "5 2");

    // The status subresource changes status only; the main resource ignores status.
    ok(
        &k(&[
            "patch",
            "widget",
            "blue-one",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Ready","replicas":5},"spec":{"color":"red"}}"#,
        ]),
        &what("patch status"),
    );
    ok(
        &k(&[
            "patch",
            "widget",
            "blue-one",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Broken"}}"#,
        ]),
        &what("patch main with status"),
    );
    let blue: Value = serde_json::from_str(&ok(
        &k(&["get", "widget", "blue-one", "-n", ns, "-o", "json"]),
        &what("get after status"),
    ))
    .unwrap();
    assert_eq!(blue["status"], json!({"phase": "Ready", "replicas": 5}));
    assert_eq!(blue["spec"]["color"], "blue");
    assert_eq!(
        blue["metadata"]["generation"], 2,
        "status writes do not bump generation"
    );
    let scale = ok(
        &k(&[
            "get",
            "--raw",
            &format!("/apis/{group}/v1/namespaces/{ns}/widgets/blue-one/scale"),
        ]),
        &what("get scale"),
    );
    let scale: Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(
        (&scale["spec"]["replicas"], &scale["status"]["replicas"]),
        (&json!(5), &json!(5))
    );

    // Another served version: the same object under v1beta1.
    let beta = ok(
        &k(&[
            "get",
            &format!("widgets.v1beta1.{group}"),
            "blue-one",
            "-n",
            ns,
            "-o",
            "jsonpath={.apiVersion} {.spec.color}",
        ]),
        &what("get v1beta1"),
    );
    assert_eq!(beta, format!("{group}/v1beta1 blue"));

    let beta_path = format!("/apis/{group}/v1beta1/namespaces/{ns}/widgets");
    let created = server.admin().create(
        &beta_path,
        &json!({"apiVersion": format!("{group}/v1beta1"), "kind": "Widget", "metadata": {"name": "beta"}, "spec": {"color": "green"}}),
    )
    .await;
    assert_eq!(created["apiVersion"], format!("{group}/v1beta1"));
    let as_v1 = server
        .admin()
        .get(&format!("/apis/{group}/v1/namespaces/{ns}/widgets/beta"))
        .await
        .unwrap()
        .json();
    assert_eq!(as_v1["apiVersion"], format!("{group}/v1"));
    assert_eq!(as_v1["spec"]["size"], "medium");
    let r = server
        .admin()
        .request("DELETE", &format!("{beta_path}/beta"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // explain, from the published OpenAPI.
    let explain = ok(&k(&["explain", "widget.spec"]), &what("explain"));
    for needle in [
        "KIND:",
        "Widget",
        group,
        "WidgetSpec is the desired state of a widget.",
        "color\t<string>",
        "The color the widget is painted.",
        "minReplicas\t<integer>",
        "replicas\t<integer>",
        "size\t<string>",
        "How big the widget is.",
    ] {
        assert!(
            explain.contains(needle),
            "{}: {needle} missing:\n{explain}",
            what("explain")
        );
    }

    // Strategic merge patch is not for custom resources.
    let err = failed(
        &k(&[
            "patch",
            "widget",
            "red-one",
            "-n",
            ns,
            "--type=strategic",
            "-p",
            r#"{"spec":{"color":"green"}}"#,
        ]),
        &what("strategic patch"),
    );
    assert!(
        err.contains(&format!("error: application/strategic-merge-patch+json is not supported by {group}/v1, Kind=Widget: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml\n")),
        "{}\n{err}",
        what("strategic")
    );

    let r = admin
        .with_body(
            "PATCH",
            &format!("/apis/{group}/v1/namespaces/{ns}/widgets/red-one"),
            "application/strategic-merge-patch+json",
            r#"{"spec":{"color":"green"}}"#,
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "UnsupportedMediaType");
    assert_eq!(
        status["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );

    // selectableFields become field selectors.
    let blues = ok(
        &k(&[
            "get",
            "widgets",
            "-n",
            ns,
            "--field-selector",
            "spec.color=blue",
            "-o",
            "name",
        ]),
        &what("field selector"),
    );
    assert_eq!(blues, format!("widget.{group}/blue-one\n"));
    let not_blue = ok(
        &k(&[
            "get",
            "widgets",
            "-n",
            ns,
            "--field-selector",
            "spec.color!=blue",
            "-o",
            "name",
        ]),
        &what("field selector !="),
    );
    assert_eq!(
        not_blue,
        format!("widget.{group}/odd\nwidget.{group}/red-one\n")
    );
    let err = failed(
        &k(&[
            "get",
            "widgets",
            "-n",
            ns,
            "--field-selector",
            "spec.size=large",
        ]),
        &what("unselectable field"),
    );
    assert!(
        err.contains(r#"field label not supported: spec.size"#),
        "{}\n{err}",
        what("unselectable")
    );

    // api-resources lists the kind until the CRD is deleted with its objects.
    let listed = ok(
        &k(&[
            "api-resources",
            &format!("--api-group={group}"),
            "-o",
            "wide",
        ]),
        &what("api-resources"),
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..5],
        ["widgets", "wd", &format!("{group}/v1"), "true", "Widget"],
        "{listed}"
    );
    let out = ok(&k(&["delete", "crd", &crd_name]), &what("delete crd"));
    assert_eq!(
        out,
        format!("customresourcedefinition.apiextensions.k8s.io \"{crd_name}\" deleted\n")
    );
    let listed = ok(
        &k(&[
            "api-resources",
            &format!("--api-group={group}"),
            "-o",
            "name",
        ]),
        &what("api-resources after delete"),
    );
    assert_eq!(listed, "", "{}", what("api-resources after delete"));
    let r = admin.get(&format!("/apis/{group}")).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let r = admin.get(&format!("/apis/{group}/v1")).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let err = failed(&k(&["get", "widgets", "-n", ns]), &what("get after delete"));
    assert!(
        err.contains(r#"the server doesn't have a resource type "widgets""#),
        "{err}"
    );
    // A CRD of the same name comes back empty: its objects were deleted with it.
    ok(&k(&["apply", "-f", &crd_file]), &what("apply CRD again"));
    ok(
        &k(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=30s",
            &format!("crd/{crd_name}"),
        ]),
        &what("wait established again"),
    );
    let left = answers(
        &admin,
        &format!("/apis/{group}/v1/namespaces/{ns}/widgets"),
        200,
    )
    .await
    .json();
    assert_eq!(left["items"], json!([]), "objects outlived their CRD");
    ok(&k(&["delete", "crd", &crd_name]), &what("delete crd again"));
}

#[tokio::test]
async fn kubectl_applies_a_crd_and_drives_its_custom_objects() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let dir = tempfile::tempdir().unwrap();
    for (version, kubectl) in kubectls() {
        let group = format!("k{}.example.com", version.replace('.', ""));
        kubectl_crd_workflow(&server, &kubectl, version, &group, dir.path()).await;
    }
}

mod kube_rs {
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// A gadget, as a kube-rs user would declare it.
    #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema)]
    #[kube(
        group = "kube-rs.example.com",
        version = "v1",
        kind = "Gadget",
        namespaced,
        status = "GadgetStatus",
        printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#
    )]
    pub struct GadgetSpec {
        pub size: i32,
        pub label: String,
    }

    /// What the controller reports.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct GadgetStatus {
        pub observed_size: i32,
        pub ready: bool,
    }
}

#[tokio::test]
async fn kube_rs_derived_crd_with_a_watcher_and_a_status_controller() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use kube::runtime::wait::{await_condition, conditions};
    use kube::runtime::watcher;
    use kube_rs::{Gadget, GadgetSpec, GadgetStatus};

    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let client = server.kube_client().await;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Gadget::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("gadgets.kube-rs.example.com")
    );
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(
            crds.clone(),
            "gadgets.kube-rs.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .expect("CRD established within 30s")
    .unwrap()
    .unwrap();
    assert_eq!(
        established.status.unwrap().accepted_names.unwrap().kind,
        "Gadget"
    );

    let gadgets: Api<Gadget> = Api::namespaced(client.clone(), "default");
    let mut events = watcher::watcher(gadgets.clone(), watcher::Config::default()).boxed();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.try_next())
            .await
            .expect("initial list")
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitDone => break,
            _ => continue,
        }
    }

    // The controller: for every gadget whose status lags its spec, write status.
    let controller = {
        let gadgets = gadgets.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(gadgets.clone(), watcher::Config::default()).boxed();
            while let Some(ev) = events.try_next().await.unwrap() {
                let (watcher::Event::Apply(g) | watcher::Event::InitApply(g)) = ev else {
                    continue;
                };
                let want = GadgetStatus {
                    observed_size: g.spec.size,
                    ready: true,
                };
                if g.status.as_ref() == Some(&want) {
                    continue;
                }
                let name = g.metadata.name.clone().unwrap();
                let patch = serde_json::json!({"status": want});
                gadgets
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
            }
        })
    };

    let gadget = Gadget::new(
        "g1",
        GadgetSpec {
            size: 3,
            label: "first".into(),
        },
    );
    let created = gadgets
        .create(&PostParams::default(), &gadget)
        .await
        .unwrap();
    assert!(created.status.is_none());
    assert_eq!(created.metadata.generation, Some(1));

    let mut seen = Vec::new();
    let reconciled = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.try_next())
            .await
            .expect("watcher event")
            .unwrap()
            .unwrap();
        if let watcher::Event::Apply(g) = ev {
            seen.push(g.status.clone());
            if g.status.as_ref().is_some_and(|s| s.observed_size == 3) {
                break g;
            }
        }
    };
    assert_eq!(
        seen[0], None,
        "the watcher saw the object before its status"
    );
    assert_eq!(
        reconciled.status,
        Some(GadgetStatus {
            observed_size: 3,
            ready: true
        })
    );
    assert_eq!(reconciled.spec.label, "first");
    assert_eq!(
        reconciled.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    // A spec change is seen and reconciled again.
    let patch = serde_json::json!({"spec": {"size": 7}});
    gadgets
        .patch("g1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let again = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.try_next())
            .await
            .expect("watcher event")
            .unwrap()
            .unwrap();
        if let watcher::Event::Apply(g) = ev
            && g.status.as_ref().is_some_and(|s| s.observed_size == 7)
        {
            break g;
        }
    };
    assert_eq!(again.metadata.generation, Some(2));
    let got = gadgets.get_status("g1").await.unwrap();
    assert_eq!(got.status.unwrap().observed_size, 7);
    controller.abort();
}

/// The `resources` of legacy discovery for `group_version`, by name.
async fn discovered(admin: &Https, group_version: &str) -> Vec<String> {
    let doc = admin
        .get(&format!("/apis/{group_version}"))
        .await
        .unwrap()
        .json();
    let mut names: Vec<String> = doc["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources: {doc}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The aggregated discovery entry of `group`, if present.
async fn aggregated(admin: &Https, group: &str) -> Option<Value> {
    let r = admin
        .request(
            "GET",
            "/apis",
            &[(
                "accept",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == group)
        .cloned()
}

#[tokio::test]
async fn two_crds_of_one_group_share_its_discovery_and_are_deleted_apart() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let group = "multi.example.com";
    create_crd(&admin, &simple_crd(group, "sprockets", "Sprocket")).await;
    create_crd(&admin, &simple_crd(group, "cogs", "Cog")).await;

    assert_eq!(
        discovered(&admin, &format!("{group}/v1")).await,
        ["cogs", "cogs/status", "sprockets", "sprockets/status"]
    );
    let doc = admin.get(&format!("/apis/{group}")).await.unwrap().json();
    assert_eq!(doc["kind"], "APIGroup");
    assert_eq!(
        doc["preferredVersion"]["groupVersion"],
        format!("{group}/v1")
    );
    let legacy = admin.get("/apis").await.unwrap().json();
    let listed = legacy["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"] == group)
        .count();
    assert_eq!(listed, 1, "one group entry for both CRDs");

    let agg = aggregated(&admin, group)
        .await
        .expect("group in aggregated discovery");
    assert_eq!(agg["versions"].as_array().unwrap().len(), 1, "{agg}");
    assert_eq!(agg["versions"][0]["version"], "v1");
    let mut resources: Vec<(String, String, String)> = agg["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_string(),
                r["responseKind"]["kind"].as_str().unwrap().to_string(),
                r["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        [
            ("cogs".into(), "Cog".into(), "Namespaced".into()),
            ("sprockets".into(), "Sprocket".into(), "Namespaced".into())
        ]
    );

    let cogs = format!("/apis/{group}/v1/namespaces/default/cogs");
    let sprockets = format!("/apis/{group}/v1/namespaces/default/sprockets");
    admin.create(&cogs, &json!({"apiVersion": format!("{group}/v1"), "kind": "Cog", "metadata": {"name": "c1"}, "spec": {"teeth": 12}})).await;
    admin.create(&sprockets, &json!({"apiVersion": format!("{group}/v1"), "kind": "Sprocket", "metadata": {"name": "s1"}})).await;

    let r = admin
        .request("DELETE", &format!("{CRDS}/sprockets.{group}"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    answers(&admin, &format!("{CRDS}/sprockets.{group}"), 404).await;
    answers(&admin, &sprockets, 404).await;

    assert_eq!(
        discovered(&admin, &format!("{group}/v1")).await,
        ["cogs", "cogs/status"]
    );
    let agg = aggregated(&admin, group)
        .await
        .expect("group still discovered");
    let left: Vec<&str> = agg["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["cogs"]);
    let c1 = admin.get(&format!("{cogs}/c1")).await.unwrap();
    assert_eq!(c1.status, 200, "{}", c1.body);
    assert_eq!(c1.json()["spec"]["teeth"], 12);
    admin.create(&cogs,
        &json!({"apiVersion": format!("{group}/v1"), "kind": "Cog", "metadata": {"name": "c2"}}),
    )
    .await;
    let list = admin.get(&cogs).await.unwrap().json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // The last CRD of the group takes the group with it.
    let r = admin
        .request("DELETE", &format!("{CRDS}/cogs.{group}"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    answers(&admin, &format!("{CRDS}/cogs.{group}"), 404).await;
    answers(&admin, &format!("/apis/{group}/v1"), 404).await;
    assert!(aggregated(&admin, group).await.is_none());
}

#[tokio::test]
async fn a_crd_whose_names_are_taken_is_not_accepted_nor_served() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let group = "names.example.com";
    let mut first = simple_crd(group, "widgets", "Widget");
    first["spec"]["names"]["shortNames"] = json!(["wd"]);
    create_crd(&admin, &first).await;

    // Same kind, other plural: KindConflict (listKind set apart so only the kind conflicts).
    let mut same_kind = simple_crd(group, "gizmos", "Widget");
    same_kind["spec"]["names"]["listKind"] = json!("GizmoList");
    // Same kind with the defaulted listKind: both conflict, and upstream reports the last.
    let same_kinds = simple_crd(group, "gadgets", "Widget");
    // Same short name: ShortNamesConflict.
    let mut same_short = simple_crd(group, "doodads", "Doodad");
    same_short["spec"]["names"]["shortNames"] = json!(["wd"]);
    // Its plural is the other's singular: PluralConflict.
    let mut same_plural = simple_crd(group, "widget", "Thing");
    same_plural["spec"]["names"]["singular"] = json!("thing");

    for (crd, reason, message) in [
        (&same_kind, "KindConflict", r#""Widget" is already in use"#),
        (
            &same_kinds,
            "ListKindConflict",
            r#""WidgetList" is already in use"#,
        ),
        (
            &same_short,
            "ShortNamesConflict",
            r#""wd" is already in use"#,
        ),
        (
            &same_plural,
            "PluralConflict",
            r#""widget" is already in use"#,
        ),
    ] {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let r = admin.json("POST", CRDS, crd).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let names = eventually(&format!("{name} NamesAccepted"), || async {
            let crd = admin.get(&format!("{CRDS}/{name}")).await.ok()?.json();
            condition(&crd, "NamesAccepted").map(|c| (c, crd))
        })
        .await;
        let (cond, obj) = names;
        assert_eq!(
            (&cond["status"], &cond["reason"], &cond["message"]),
            (&json!("False"), &json!(reason), &json!(message)),
            "{name}: {obj}"
        );
        let est = condition(&obj, "Established").expect("Established condition");
        assert_eq!(
            (&est["status"], &est["reason"], &est["message"]),
            (
                &json!("False"),
                &json!("NotAccepted"),
                &json!("not all names are accepted")
            ),
            "{name}: {obj}"
        );
        let plural = name.split('.').next().unwrap();
        let path = format!("/apis/{group}/v1/namespaces/default/{plural}");
        let r = admin.get(&path).await.unwrap();
        assert_eq!(r.status, 404, "GET {path}: {}", r.body);
        let r = admin
            .json("POST", &path, &json!({"apiVersion": format!("{group}/v1"), "kind": crd["spec"]["names"]["kind"], "metadata": {"name": "x"}}))
            .await;
        assert_eq!(r.status, 404, "POST {path}: {}", r.body);
    }
    assert_eq!(
        discovered(&admin, &format!("{group}/v1")).await,
        ["widgets", "widgets/status"]
    );
    // The first keeps its names and stays served.
    let r = admin
        .get(&format!("/apis/{group}/v1/namespaces/default/widgets"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // Once the holder is gone, the waiting CRD's names are accepted and it is served.
    let r = admin
        .request("DELETE", &format!("{CRDS}/widgets.{group}"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let crd = established(&admin, &format!("doodads.{group}")).await;
    let cond = condition(&crd, "NamesAccepted").unwrap();
    assert_eq!(
        (&cond["status"], &cond["reason"]),
        (&json!("True"), &json!("NoConflicts"))
    );
    answers(
        &admin,
        &format!("/apis/{group}/v1/namespaces/default/doodads"),
        200,
    )
    .await;
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_objects_and_refuses_creates_while_terminating() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let group = "cleanup.example.com";
    create_crd(&admin, &simple_crd(group, "things", "Thing")).await;
    let things = format!("/apis/{group}/v1/namespaces/default/things");
    let thing = |name: &str| json!({"apiVersion": format!("{group}/v1"), "kind": "Thing", "metadata": {"name": name}});
    admin.create(&things, &thing("a")).await;
    admin.create(&things, &thing("b")).await;
    let mut held = thing("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    admin.create(&things, &held).await;
    let cluster_scoped_list = admin
        .get(&format!("/apis/{group}/v1/things"))
        .await
        .unwrap()
        .json();
    assert_eq!(cluster_scoped_list["items"].as_array().unwrap().len(), 3);

    let r = admin
        .request("DELETE", &format!("{CRDS}/things.{group}"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let deleting = r.json();
    assert!(
        deleting["metadata"]["deletionTimestamp"].is_string(),
        "{deleting}"
    );
    assert_eq!(
        deleting["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );

    // The objects without finalizers go; the held one waits with a deletionTimestamp.
    // The cleanup deletes them one by one: wait for the held one's turn too.
    let held_now = eventually("a and b deleted, held marked", || async {
        let list = admin.get(&things).await.ok()?.json();
        let items = list["items"].as_array()?.clone();
        (items.len() == 1 && items[0]["metadata"]["deletionTimestamp"].is_string())
            .then(|| items[0].clone())
    })
    .await;
    assert_eq!(held_now["metadata"]["name"], "held");
    assert!(held_now["metadata"]["deletionTimestamp"].is_string());
    let crd = admin
        .get(&format!("{CRDS}/things.{group}"))
        .await
        .unwrap()
        .json();
    let term = condition(&crd, "Terminating").expect("Terminating condition");
    assert_eq!(
        (&term["status"], &term["reason"], &term["message"]),
        (
            &json!("True"),
            &json!("InstanceDeletionInProgress"),
            &json!("CustomResource deletion is in progress")
        ),
        "{crd}"
    );

    // Creates are refused while the CRD terminates; reads still answer.
    let r = admin.json("POST", &things, &thing("late")).await;
    assert_eq!(r.status, 405, "{}", r.body);
    let status = r.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "MethodNotAllowed");
    assert_eq!(
        status["message"],
        "create not allowed while custom resource definition is terminating"
    );
    assert_eq!(
        status["details"],
        json!({"group": group, "kind": "things"}),
        "{status}"
    );
    let r = admin.get(&format!("{things}/held")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // Releasing the held object lets the cleanup finish, and the CRD goes.
    let r = admin
        .with_body(
            "PATCH",
            &format!("{things}/held"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    answers(&admin, &format!("{CRDS}/things.{group}"), 404).await;
    answers(&admin, &things, 404).await;

    // A new CRD of the same name starts empty.
    create_crd(&admin, &simple_crd(group, "things", "Thing")).await;
    let list = answers(&admin, &things, 200).await.json();
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn crds_and_their_objects_are_served_again_after_a_restart() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let group = "restart.example.com";
    let mut crd = simple_crd(group, "things", "Thing");
    crd["spec"]["versions"][0]["additionalPrinterColumns"] =
        json!([{"name": "Mode", "type": "string", "jsonPath": ".spec.mode"}]);
    create_crd(&admin, &crd).await;
    let things = format!("/apis/{group}/v1/namespaces/default/things");
    admin.create(&things, &json!({"apiVersion": format!("{group}/v1"), "kind": "Thing", "metadata": {"name": "kept"}, "spec": {"mode": "durable"}})).await;

    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "{status}: {}", server.stderr());
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);

    let mut server = TestServer::spawn_in(dir, &["up"], &[]);
    server.wait_ready().await;
    let admin = server.admin();
    // Ready means every CRD that existed at start is served: no polling needed.
    let r = admin.get(&format!("{things}/kept")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["spec"]["mode"], "durable");
    assert_eq!(
        discovered(&admin, &format!("{group}/v1")).await,
        ["things", "things/status"]
    );
    let crd = admin
        .get(&format!("{CRDS}/things.{group}"))
        .await
        .unwrap()
        .json();
    assert_eq!(condition(&crd, "Established").unwrap()["status"], "True");
    admin.create(&things,
        &json!({"apiVersion": format!("{group}/v1"), "kind": "Thing", "metadata": {"name": "new"}}),
    )
    .await;

    let kubectl = newest_kubectl();
    let out = ok(
        &server.kubectl(&kubectl, &["get", &format!("things.{group}")]),
        "kubectl get after restart",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "MODE"], "{out}");
    assert_eq!(lines[1][..2], ["kept", "durable"], "{out}");
    assert_eq!(lines[2][0], "new", "{out}");
}

#[tokio::test]
async fn deleting_a_namespace_deletes_the_custom_objects_in_it() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let group = "nsdel.example.com";
    create_crd(&admin, &simple_crd(group, "things", "Thing")).await;
    for ns in ["doomed", "kept"] {
        admin
            .create("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
        for name in ["one", "two"] {
            admin.create(&format!("/apis/{group}/v1/namespaces/{ns}/things"),
                &json!({"apiVersion": format!("{group}/v1"), "kind": "Thing", "metadata": {"name": name}}),
            )
            .await;
        }
    }
    let r = admin
        .request("DELETE", "/api/v1/namespaces/doomed", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    answers(&admin, "/api/v1/namespaces/doomed", 404).await;

    let doomed = admin
        .get(&format!("/apis/{group}/v1/namespaces/doomed/things"))
        .await
        .unwrap()
        .json();
    assert_eq!(doomed["items"], json!([]), "{doomed}");
    let r = admin
        .get(&format!("/apis/{group}/v1/namespaces/doomed/things/one"))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let all = admin
        .get(&format!("/apis/{group}/v1/things"))
        .await
        .unwrap()
        .json();
    let mut left: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    left.sort();
    assert_eq!(left, ["kept/one", "kept/two"]);
}

#[tokio::test]
async fn webhook_conversion_is_validated_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let mut crd = simple_crd("hooks.example.com", "things", "Thing");
    crd["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v2"]}});
    let r = admin.json("POST", CRDS, &crd).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        r#"CustomResourceDefinition.apiextensions.k8s.io "things.hooks.example.com" is invalid: [spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook, spec.conversion.conversionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1]"#
    );
    crd["spec"]["conversion"] = json!({"strategy": "None", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://converter.example.com/convert"}}});
    let r = admin.json("POST", CRDS, &crd).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"CustomResourceDefinition.apiextensions.k8s.io "things.hooks.example.com" is invalid: [spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook, spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook]"#
    );
    let r = admin
        .get(&format!("{CRDS}/things.hooks.example.com"))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
}

/// A server-side apply of `body` to `path` as `manager`.
async fn apply_as(admin: &Https, path: &str, manager: &str, body: &Value) -> Reply {
    admin
        .with_body(
            "PATCH",
            &format!("{path}?fieldManager={manager}"),
            "application/apply-patch+yaml",
            body.to_string(),
        )
        .await
}

#[tokio::test]
async fn server_side_apply_merges_custom_objects_by_the_schemas_list_types() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.ssa.example.com"},
        "spec": {
            "group": "ssa.example.com", "scope": "Namespaced",
            "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "members": {
                            "type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string"}, "weight": {"type": "integer"}}}
                        },
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                            "items": {"type": "string"}}
                    }}
                }}}
            }]
        }
    });
    create_crd(&admin, &crd).await;
    let path = "/apis/ssa.example.com/v1/namespaces/default/pools/p";
    let pool = |members: Value, tags: Value| {
        json!({"apiVersion": "ssa.example.com/v1", "kind": "Pool", "metadata": {"name": "p"},
            "spec": {"members": members, "tags": tags}})
    };
    let r = apply_as(
        &admin,
        path,
        "a",
        &pool(json!([{"name": "a", "weight": 1}]), json!(["x"])),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Another manager's items of a map list and values of a set join instead of conflicting
    // over the whole list, as they would if lists were atomic.
    let r = apply_as(
        &admin,
        path,
        "b",
        &pool(json!([{"name": "b", "weight": 2}]), json!(["y"])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let spec = &r.json()["spec"];
    assert_eq!(
        spec["members"],
        json!([{"name": "a", "weight": 1}, {"name": "b", "weight": 2}])
    );
    assert_eq!(spec["tags"], json!(["x", "y"]));
    // A field of an item another manager owns conflicts.
    let r = apply_as(
        &admin,
        path,
        "b",
        &pool(
            json!([{"name": "a", "weight": 5}, {"name": "b", "weight": 2}]),
            json!(["y"]),
        ),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"Apply failed with 1 conflict: conflict with "a": .spec.members[name="a"].weight"#
    );
    // Dropping its items removes only what the manager alone owned.
    let r = apply_as(&admin, path, "a", &pool(json!([]), json!([]))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let spec = &r.json()["spec"];
    assert_eq!(spec["members"], json!([{"name": "b", "weight": 2}]));
    assert_eq!(spec["tags"], json!(["y"]));
}

#[tokio::test]
async fn a_crd_reads_back_as_written_so_applying_it_again_server_side_does_not_conflict() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let mut crd = simple_crd("bounds.example.com", "things", "Thing");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = json!({
        "type": "object",
        "properties": {"replicas": {"type": "integer", "minimum": 0, "maximum": 10}}});
    crd["spec"]["versions"][0]["additionalPrinterColumns"] =
        json!([{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crd.json");
    std::fs::write(&file, crd.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let kubectl = newest_kubectl();
    ok(
        &server.kubectl(&kubectl, &["apply", "-f", file]),
        "client-side apply",
    );
    // Go writes whole float64s as integers and omits a zero priority; so must kubeboot.
    let raw = server
        .admin()
        .get(&format!("{CRDS}/things.bounds.example.com"))
        .await
        .unwrap()
        .body;
    assert!(raw.contains(r#""maximum":10,"minimum":0"#), "{raw}");
    assert!(!raw.contains("priority"), "{raw}");
    ok(
        &server.kubectl(&kubectl, &["apply", "--server-side", "-f", file]),
        "server-side apply of the same manifest",
    );
}

/// A CRD whose `spec.tags` (strings of `max_length`, at most `max_items`) must each contain "gpu".
fn tagged_crd(max_length: Option<u64>, max_items: Option<u64>) -> Value {
    let mut items = json!({"type": "string"});
    if let Some(l) = max_length {
        items["maxLength"] = json!(l);
    }
    let mut tags = json!({"type": "array", "items": items,
        "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))"}]});
    if let Some(m) = max_items {
        tags["maxItems"] = json!(m);
    }
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gpus.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "gpus", "singular": "gpu", "kind": "Gpu"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object",
                "properties": {"tags": tags}}}}}}]}})
}

#[tokio::test]
async fn rules_whose_estimated_cost_exceeds_upstreams_limits_are_refused() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let kubectl = newest_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let apply = |crd: &Value| {
        let path = dir.path().join("crd.json");
        std::fs::write(&path, crd.to_string()).unwrap();
        server.kubectl(&kubectl, &["apply", "-f", path.to_str().unwrap()])
    };

    // Unbounded: the rule walks up to a million strings of up to 3 MiB each.
    let stderr = failed(&apply(&tagged_crd(None, None)), "kubectl apply unbounded");
    // One version: upstream reports its schema as the CRD's top-level validation.
    let rule = "spec.validation.openAPIV3Schema.properties[spec].properties[tags].x-kubernetes-validations[0].rule";
    let hint = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
    for expected in [
        format!(
            "{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {hint}"
        ),
        format!(
            "{rule}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
        ),
        format!(
            "spec.validation.openAPIV3Schema: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {hint}"
        ),
    ] {
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    }

    // Just over the limit upstream draws at maxLength 63 (333,333 items): 30 units per item
    // and 2 for the walk, 10,000,022; refused with the factor, and nothing is stored.
    let r = server
        .admin()
        .json("POST", CRDS, &tagged_crd(Some(63), Some(333_334)))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        format!("Forbidden: estimated rule cost exceeds budget by factor of 1.000002x {hint}")
    );
    let r = server
        .admin()
        .get(&format!("{CRDS}/gpus.example.com"))
        .await
        .unwrap();
    assert_eq!(r.status, 404);

    // Bounded: accepted, and the rule applies.
    ok(
        &apply(&tagged_crd(Some(63), Some(25))),
        "kubectl apply bounded",
    );
    let admin = server.admin();
    let objects = "/apis/example.com/v1/namespaces/default/gpus";
    let obj = |tag: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Gpu",
        "metadata": {"name": tag}, "spec": {"tags": [tag]}})
    };
    let r = eventually("the CRD to be served", || async {
        let r = admin.json("POST", objects, &obj("nvidia-gpu")).await;
        (r.status != 404).then_some(r)
    })
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin.json("POST", objects, &obj("cpu")).await;
    assert_eq!(r.status, 422, "{}", r.body);
}
