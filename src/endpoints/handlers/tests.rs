//! Every write path reaches admission through the one admission point, with upstream's
//! attributes, in upstream's order; a refusal stops the write before storage.

use super::ResourceHandler;
use crate::admission::{Attributes, Chain, Mutating, Operation, Validating};
use crate::auth::UserInfo;
use crate::endpoints::request_info::RequestInfo;
use crate::endpoints::{Handler, Request, full, handler_fn, text};
use crate::registry::{RegistryError, Store, StoreSet};
use crate::storage::KeyBuilder;
use crate::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a plugin saw of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    stage: &'static str,
    operation: &'static str,
    subresource: String,
    name: String,
    object: bool,
    old_object: bool,
    user: String,
    dry_run: bool,
    options: String,
}

/// A plugin that records every call, and refuses objects labelled `deny`.
#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl Recorder {
    fn record(&self, stage: &'static str, a: &Attributes<'_>, object: Option<&Value>) {
        self.0.lock().unwrap().push(Seen {
            stage,
            operation: a.operation.as_str(),
            subresource: a.subresource.into(),
            name: a.name.into(),
            object: object.is_some(),
            old_object: a.old_object.is_some(),
            user: a.user.name.clone(),
            dry_run: a.dry_run,
            options: a.options.to_value(a.dry_run)["kind"]
                .as_str()
                .unwrap_or("")
                .into(),
        });
    }

    fn take(&self) -> Vec<(&'static str, &'static str)> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|s| (s.stage, s.operation))
            .collect()
    }
}

#[async_trait::async_trait]
impl Mutating for Recorder {
    fn handles(&self, _: Operation) -> bool {
        true
    }
    async fn admit(
        &self,
        a: &Attributes<'_>,
        object: Option<&mut Value>,
    ) -> crate::admission::Result {
        let object = object.map(|o| &*o);
        self.record("mutate", a, object);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Validating for Recorder {
    fn handles(&self, _: Operation) -> bool {
        true
    }
    async fn validate(
        &self,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> crate::admission::Result {
        self.record("validate", a, object);
        if object
            .and_then(|o| o.pointer("/metadata/labels/deny"))
            .is_some()
        {
            return Err(RegistryError::BadRequest("denied by the recorder".into()));
        }
        Ok(())
    }
}

struct Fixture {
    handler: Arc<ResourceHandler>,
    next: Handler,
    recorder: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

fn store_of(storage: &Arc<EmbeddedStorage>, group: &str, resource: &str) -> Arc<Store> {
    let strategy = crate::registry::kinds::builtin()
        .into_iter()
        .find(|s| s.info().group == group && s.info().resource == resource)
        .expect("built-in kind");
    let info = strategy.info().clone();
    let types =
        crate::registry::kinds::field_types_for_kind(&info.group, &info.version, &info.kind)
            .expect("built-in field types");
    Arc::new(Store::new(
        strategy,
        storage.clone(),
        KeyBuilder::new("/registry/"),
        types,
    ))
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage =
        Arc::new(EmbeddedStorage::open(dir.path().join("db"), EmbeddedOptions::default()).unwrap());
    let stores = StoreSet::new([
        store_of(&storage, "", "configmaps"),
        store_of(&storage, "apps", "deployments"),
    ]);
    let recorder = Arc::new(Recorder::default());
    let chain = Chain::default()
        .with_mutating(recorder.clone())
        .with_validating(recorder.clone());
    Fixture {
        handler: Arc::new(ResourceHandler::new(stores, chain, Duration::from_secs(60))),
        next: handler_fn(|_req| async { text(http::StatusCode::NOT_FOUND, "next") }),
        recorder,
        _dir: dir,
    }
}

impl Fixture {
    /// Sends a request as user `alice` and returns the status and JSON body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> (u16, Value) {
        let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
        let method: http::Method = method.parse().unwrap();
        let mut req: Request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(full(if body.is_null() {
                Vec::new()
            } else {
                serde_json::to_vec(&body).unwrap()
            }))
            .unwrap();
        req.extensions_mut().insert(RequestInfo::parse(
            &method,
            path_only,
            Some(query).filter(|q| !q.is_empty()),
        ));
        req.extensions_mut().insert(UserInfo {
            name: "alice".into(),
            ..UserInfo::default()
        });
        let resp = self.handler.clone().serve_or(req, &self.next).await;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const JSON: &str = "application/json";

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

#[tokio::test]
async fn every_write_path_passes_mutating_then_validating_admission_once() {
    let f = fixture();
    let ok = |(status, body): (u16, Value)| {
        assert!(status < 300, "{status}: {body}");
        body
    };
    let both = |op| vec![("mutate", op), ("validate", op)];

    ok(f.send("POST", CMS, JSON, configmap("a")).await);
    let seen = f.recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        Seen {
            stage: "mutate",
            operation: "CREATE",
            subresource: String::new(),
            name: "a".into(),
            object: true,
            old_object: false,
            user: "alice".into(),
            dry_run: false,
            options: "CreateOptions".into(),
        }
    );
    assert_eq!(f.recorder.take(), both("CREATE"));

    let mut updated = configmap("a");
    updated["data"]["a"] = json!("2");
    ok(f.send("PUT", &format!("{CMS}/a"), JSON, updated).await);
    assert_eq!(f.recorder.take(), both("UPDATE"));

    for (content_type, patch) in [
        ("application/merge-patch+json", json!({"data": {"b": "1"}})),
        (
            "application/strategic-merge-patch+json",
            json!({"data": {"c": "1"}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "add", "path": "/data/d", "value": "1"}]),
        ),
    ] {
        ok(f.send("PATCH", &format!("{CMS}/a"), content_type, patch)
            .await);
        assert_eq!(f.recorder.take(), both("UPDATE"), "{content_type}");
    }

    // Apply updates an existing object and creates a missing one, each admitted as such.
    let apply = "application/apply-patch+yaml";
    let mut applied = configmap("a");
    applied["data"] = json!({"e": "1"});
    ok(f.send(
        "PATCH",
        &format!("{CMS}/a?fieldManager=t&force=true"),
        apply,
        applied,
    )
    .await);
    assert_eq!(f.recorder.take(), both("UPDATE"));
    ok(f.send(
        "PATCH",
        &format!("{CMS}/b?fieldManager=t"),
        apply,
        configmap("b"),
    )
    .await);
    assert_eq!(f.recorder.take(), both("CREATE"));

    // Subresources: status and scale of a Deployment.
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    ok(f.send("POST", deploys, JSON, deploy.clone()).await);
    f.recorder.take();
    let mut with_status = ok(f
        .send("GET", &format!("{deploys}/d"), JSON, Value::Null)
        .await);
    with_status["status"] = json!({"replicas": 1});
    ok(
        f.send("PUT", &format!("{deploys}/d/status"), JSON, with_status)
            .await,
    );
    let seen = f.recorder.0.lock().unwrap().clone();
    assert_eq!(
        (seen[0].subresource.as_str(), seen[0].old_object),
        ("status", true)
    );
    assert_eq!(f.recorder.take(), both("UPDATE"));
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"}, "spec": {"replicas": 3}});
    ok(f.send("PUT", &format!("{deploys}/d/scale"), JSON, scale)
        .await);
    assert_eq!(f.recorder.0.lock().unwrap()[0].subresource, "scale");
    assert_eq!(f.recorder.take(), both("UPDATE"));
    ok(f.send(
        "PATCH",
        &format!("{deploys}/d/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 2}}),
    )
    .await);
    assert_eq!(f.recorder.take(), both("UPDATE"));

    // Deletes see the stored object as the old object and no new one.
    ok(f.send("DELETE", &format!("{CMS}/a"), JSON, Value::Null)
        .await);
    let seen = f.recorder.0.lock().unwrap().clone();
    assert_eq!(
        (seen[0].object, seen[0].old_object, seen[0].options.as_str()),
        (false, true, "DeleteOptions")
    );
    assert_eq!(f.recorder.take(), both("DELETE"));
    ok(f.send("POST", CMS, JSON, configmap("c")).await);
    f.recorder.take();
    ok(f.send("DELETE", CMS, JSON, Value::Null).await);
    let seen = f.recorder.0.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.name.is_empty()), "{seen:?}");
    // b and c: one mutate and one validate each.
    assert_eq!(f.recorder.take().len(), 4);
}

#[tokio::test]
async fn a_validating_refusal_writes_nothing_and_dry_runs_say_so() {
    let f = fixture();
    let mut denied = configmap("x");
    denied["metadata"]["labels"] = json!({"deny": "yes"});
    let (status, body) = f.send("POST", CMS, JSON, denied).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("denied by the recorder"))
    );
    let (status, _) = f.send("GET", &format!("{CMS}/x"), JSON, Value::Null).await;
    assert_eq!(status, 404, "a refused create is not stored");
    f.recorder.take();

    let (status, _) = f
        .send("POST", &format!("{CMS}?dryRun=All"), JSON, configmap("y"))
        .await;
    assert_eq!(status, 201);
    let seen = f.recorder.0.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| s.dry_run),
        "{seen:?}"
    );

    // An update refused by admission leaves the stored object as it was.
    f.send("POST", CMS, JSON, configmap("z")).await;
    let (status, _) = f
        .send(
            "PATCH",
            &format!("{CMS}/z"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"deny": "1"}}}),
        )
        .await;
    assert_eq!(status, 400);
    let (_, stored) = f.send("GET", &format!("{CMS}/z"), JSON, Value::Null).await;
    assert!(
        stored.pointer("/metadata/labels/deny").is_none(),
        "{stored}"
    );
}
