//! The availability controller, as upstream's `AvailableConditionController`: a remote
//! APIService is Available when its Service exists, listens on the port, has a ready endpoint
//! (or is an ExternalName), and answers discovery for its group/version; local ones always are.
//! It also feeds the extension's resources into discovery.

use super::proxy::backend;
use super::routes::{Routes, Target};
use crate::endpoints::discovery::Discovery;
use crate::proxy::ClientIdentity;
use crate::registry::strategy::{ALL_VERBS, ResourceInfo, SubresourceInfo, Verbs};
use crate::registry::validation::NameRule;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often every APIService is checked again, as upstream.
const RESYNC: Duration = Duration::from_secs(30);
/// How long the discovery probe may take, as upstream.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check: status, reason, message, and on success the discovery document.
struct Check {
    available: bool,
    reason: &'static str,
    message: String,
    address: Option<(String, u16)>,
    resources: Option<Value>,
}

impl Check {
    fn failed(reason: &'static str, message: String) -> Self {
        Check {
            available: false,
            reason,
            message,
            address: None,
            resources: None,
        }
    }
}

/// Where a Service's traffic goes: an ExternalName's host, else a ready endpoint, as upstream's
/// ResolveEndpoint with --enable-aggregator-routing. kubeboot always routes to endpoints:
/// without kube-proxy a cluster IP leads nowhere, and with it an endpoint is as good. Port and
/// endpoints are checks only for ClusterIP Services, as upstream's availability controller;
/// other types fall back to their cluster IP. `Err` is the failed check.
async fn resolve(client: &kube::Client, target: &Target) -> Result<(String, u16), Check> {
    let (ns, name) = (&target.namespace, &target.service);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let service = match services.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Check::failed(
                "ServiceNotFound",
                format!("service/{name} in {ns:?} is not present"),
            ));
        }
        Err(e) => {
            return Err(Check::failed(
                "ServiceAccessError",
                format!("service/{name} in {ns:?} cannot be checked due to: {e}"),
            ));
        }
    };
    let spec = service.spec.unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        let host = spec.external_name.unwrap_or_default();
        return Ok((host, target.port));
    }
    let is_cluster_ip = matches!(spec.type_.as_deref(), None | Some("ClusterIP"));
    let cluster_ip = spec
        .cluster_ip
        .clone()
        .filter(|ip| !ip.is_empty() && ip != "None")
        .map(|ip| (ip, target.port));
    let fallback = |check: Check| match &cluster_ip {
        Some(address) if !is_cluster_ip => Ok(address.clone()),
        _ => Err(check),
    };
    let Some(port) = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.port == i32::from(target.port))
    else {
        return fallback(Check::failed(
            "ServicePortError",
            format!(
                "service/{name} in {ns:?} is not listening on port {}",
                target.port
            ),
        ));
    };
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let selector = format!("kubernetes.io/service-name={name}");
    let list = slices
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| {
            Check::failed(
                "EndpointsAccessError",
                format!("service/{name} in {ns:?} cannot be checked due to: {e}"),
            )
        })?;
    let port_name = port.name.clone().unwrap_or_default();
    if let Some(address) = crate::webhook::ready_endpoint(&list.items, &port_name) {
        return Ok(address);
    }
    fallback(Check::failed(
        "MissingEndpoints",
        format!(
            "endpoints for service/{name} in {ns:?} have no addresses with port name {port_name:?}"
        ),
    ))
}

/// Asks the extension for its discovery document, as the aggregator itself.
async fn probe(
    target: &Target,
    address: &(String, u16),
    identity: &ClientIdentity,
    group: &str,
    version: &str,
) -> Result<Value, String> {
    let backend = backend(target, address, identity).map_err(|e| e.to_string())?;
    let path = format!("/apis/{group}/{version}");
    let url = format!("https://{}:{}{path}", address.0, address.1);
    let req = http::Request::get(&path)
        .header(
            http::header::HOST,
            format!("{}:{}", target.server_name(), target.port),
        )
        .header(http::header::ACCEPT, "application/json")
        // As upstream: the system:masters identity always has access to discovery.
        .header("x-remote-user", "system:kube-aggregator")
        .header("x-remote-group", "system:masters")
        .body(crate::endpoints::full(Vec::new()))
        .expect("valid request");
    let fetch = async {
        let resp = crate::proxy::send(&backend, req, None)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("bad status from {url}: {}", status.as_u16()));
        }
        serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(PROBE_TIMEOUT, fetch).await {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => Err(format!("failing or missing response from {url}: {e}")),
        Err(_) => Err(format!(
            "failing or missing response from {url}: Get \"{url}\": context deadline exceeded"
        )),
    }
}

async fn check(
    client: &kube::Client,
    target: &Target,
    identity: &ClientIdentity,
    group: &str,
    version: &str,
) -> Check {
    let address = match resolve(client, target).await {
        Ok(a) => a,
        Err(failed) => return failed,
    };
    match probe(target, &address, identity, group, version).await {
        Ok(doc) => Check {
            available: true,
            reason: "Passed",
            message: "all checks passed".into(),
            address: Some(address),
            resources: Some(doc),
        },
        Err(message) => Check {
            address: Some(address),
            ..Check::failed("FailedDiscoveryCheck", message)
        },
    }
}

/// Verbs as discovery reports them; verbs kubeboot does not know are left out.
fn known_verbs(verbs: &[Value]) -> Verbs {
    const KNOWN: &[&str] = &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
        "proxy",
    ];
    let verbs: Vec<&'static str> = verbs
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|v| KNOWN.iter().find(|k| **k == v).copied())
        .collect();
    if verbs == ALL_VERBS {
        Cow::Borrowed(ALL_VERBS)
    } else {
        Cow::Owned(verbs)
    }
}

/// The resources of an APIResourceList, as discovery entries.
fn resources_of(doc: &Value, group: &str, version: &str) -> Vec<ResourceInfo> {
    let strings = |v: Option<&Value>| -> Vec<Cow<'static, str>> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(|s| Cow::Owned(s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let entries: Vec<&Value> = doc
        .get("resources")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut infos: Vec<ResourceInfo> = entries
        .iter()
        .filter_map(|r| {
            let name = r.get("name")?.as_str()?;
            if name.contains('/') {
                return None;
            }
            let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
            Some(ResourceInfo {
                group: group.to_string().into(),
                version: version.to_string().into(),
                kind: kind.to_string().into(),
                resource: name.to_string().into(),
                singular: r
                    .get("singularName")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| kind.to_lowercase()),
                namespaced: r
                    .get("namespaced")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                short_names: strings(r.get("shortNames")),
                categories: strings(r.get("categories")),
                verbs: known_verbs(r.get("verbs").and_then(Value::as_array).map_or(&[], |v| v)),
                subresources: Vec::new(),
                name_rule: NameRule::Dns1123Subdomain,
                scale: None,
                tracks_generation: false,
                delete_returns_object: false,
            })
        })
        .collect();
    for r in &entries {
        let Some((parent, sub)) = r
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.split_once('/'))
        else {
            continue;
        };
        let sub: &'static str = match sub {
            "status" => "status",
            "scale" => "scale",
            _ => continue,
        };
        if let Some(info) = infos.iter_mut().find(|i| i.resource == parent) {
            let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            info.subresources.push(SubresourceInfo {
                name: sub,
                group: s("group").unwrap_or_else(|| group.to_string()).into(),
                version: s("version").unwrap_or_else(|| version.to_string()).into(),
                kind: s("kind").unwrap_or_default().into(),
                verbs: known_verbs(r.get("verbs").and_then(Value::as_array).map_or(&[], |v| v)),
                connect: false,
            });
        }
    }
    infos
}

fn condition_of(a: &APIService) -> Option<(String, String, String)> {
    let c = a
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Available")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

/// Writes the Available condition when it changed.
async fn set_available(
    api: &Api<APIService>,
    a: &APIService,
    status: &str,
    reason: &str,
    message: &str,
) {
    let name = a.metadata.name.clone().unwrap_or_default();
    let metrics = crate::metrics::metrics();
    metrics
        .unavailable_apiservice
        .get_or_create(&crate::metrics::ApiServiceLabels { name: name.clone() })
        .set(i64::from(status != "True"));
    let current = condition_of(a);
    if current
        .as_ref()
        .map(|(s, r, m)| (s.as_str(), r.as_str(), m.as_str()))
        == Some((status, reason, message))
    {
        return;
    }
    let since = match a
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "Available" && c.status == status)
                .and_then(|c| c.last_transition_time.as_ref())
        }) {
        Some(t) => serde_json::to_value(t).unwrap_or(Value::Null),
        None => json!(crate::registry::store::now_rfc3339()),
    };
    let patch = json!({"status": {"conditions": [{
        "type": "Available", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": since,
    }]}});
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        // Counted once the condition is written, as upstream's updateAPIServiceStatus counts.
        Ok(_) if status != "True" && current.is_some_and(|(was, _, _)| was == "True") => {
            metrics
                .unavailable_apiservice_transitions
                .get_or_create(&crate::metrics::ApiServiceReasonLabels {
                    name,
                    reason: reason.to_string(),
                })
                .inc();
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(apiservice = name, error = %e, "writing APIService status failed")
        }
    }
}

/// Checks every APIService on each change and every 30 seconds, until the process ends.
pub async fn run(
    client: kube::Client,
    apiservices: Store<APIService>,
    routes: Routes,
    discovery: Arc<Discovery>,
    identity: ClientIdentity,
    changed: Arc<Notify>,
) {
    let api: Api<APIService> = Api::all(client.clone());
    loop {
        for a in apiservices.state() {
            let Some(spec) = a.spec.as_ref() else {
                continue;
            };
            let group = spec.group.clone().unwrap_or_default();
            let version = spec.version.clone().unwrap_or_default();
            let Some(target) = routes.get(&group, &version) else {
                if spec.service.is_none() {
                    set_available(
                        &api,
                        &a,
                        "True",
                        "Local",
                        "Local APIServices are always available",
                    )
                    .await;
                }
                continue;
            };
            let result = check(&client, &target, &identity, &group, &version).await;
            {
                let mut state = target.state.write().expect("target poisoned");
                state.available = result.available;
                state.address = result.address.clone();
            }
            let resources = result
                .resources
                .as_ref()
                .map(|doc| resources_of(doc, &group, &version));
            discovery.set_remote(
                &group,
                &version,
                (target.group_priority, target.version_priority),
                resources,
            );
            let status = if result.available { "True" } else { "False" };
            set_available(&api, &a, status, result.reason, &result.message).await;
        }
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

/// Wakes the controller when a Service or EndpointSlice an APIService points at changes, as
/// upstream's controller re-queues the APIServices of a changed Service or Endpoints.
pub async fn watch_services(client: kube::Client, routes: Routes, changed: Arc<Notify>) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let concerns = |ns: Option<&str>, name: Option<&str>| {
        routes
            .all()
            .iter()
            .any(|(_, t)| Some(t.namespace.as_str()) == ns && Some(t.service.as_str()) == name)
    };
    let services = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .map(|r| r.map(|s| (s.metadata.namespace, s.metadata.name)));
    let slices = watcher(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .map(|r| {
        r.map(|s| {
            let service = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name").cloned());
            (s.metadata.namespace, service)
        })
    });
    let mut events = futures::stream::select(services.boxed(), slices.boxed());
    while let Some(event) = events.next().await {
        if let Ok((ns, name)) = event
            && concerns(ns.as_deref(), name.as_deref())
        {
            changed.notify_one();
        }
    }
}
