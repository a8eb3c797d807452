//! Discovery: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>, legacy and aggregated (v2, v2beta1).

use super::{Request, Response, full};
use crate::registry::ResourceInfo;
use crate::registry::groups::{
    CUSTOM_GROUP_PRIORITY, CUSTOM_VERSION_PRIORITY, builtin as builtin_group,
};
use http::{StatusCode, header};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// The discovery documents of the resources every link of the chain serves; links add and
/// remove resources while the server runs (custom resources come and go with their CRDs, the
/// aggregator adds what extension servers report).
pub struct Discovery {
    state: RwLock<State>,
    server_address: String,
    changes: tokio::sync::watch::Sender<u64>,
}

/// What discovery knows of one group/version an extension server serves.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteGroupVersion {
    /// The APIService's groupPriorityMinimum.
    pub priority: i32,
    /// The APIService's versionPriority.
    pub version_priority: i32,
    /// The resources the extension last reported.
    pub resources: Vec<ResourceInfo>,
    /// Whether that report is current (the extension answered its last check); upstream's
    /// aggregated discovery marks the others Stale.
    pub fresh: bool,
}

#[derive(Default)]
struct State {
    /// Resources this server serves itself.
    local: Vec<ResourceInfo>,
    /// Extension servers' group/versions, listed whether or not they are available, as
    /// upstream lists every APIService's group.
    remote: BTreeMap<(String, String), RemoteGroupVersion>,
    /// `local` and `remote` resources together, sorted by resource name.
    all: Vec<ResourceInfo>,
    /// Priorities of groups that are not built in (extension servers'), for /apis order.
    priorities: BTreeMap<String, i32>,
}

impl State {
    fn rebuild(&mut self) {
        let mut all = self.local.clone();
        self.priorities.clear();
        for ((group, _), remote) in &self.remote {
            let p = self
                .priorities
                .entry(group.clone())
                .or_insert(remote.priority);
            *p = (*p).max(remote.priority);
            all.extend(remote.resources.iter().cloned());
        }
        all.sort_by(|a, b| a.resource.cmp(&b.resource));
        self.all = all;
    }
}

/// The resources served at one moment, which every document is rendered from.
struct Snapshot<'a> {
    resources: &'a [ResourceInfo],
    remote: &'a BTreeMap<(String, String), RemoteGroupVersion>,
    priorities: &'a BTreeMap<String, i32>,
}

/// Which aggregated format the client accepts, best first.
fn aggregated_version(req: &Request) -> Option<&'static str> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

fn respond(value: &Value, content_type: &str) -> Response {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(full(serde_json::to_vec(value).unwrap_or_default()))
        .expect("valid response")
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Upstream's order of versions (`version.CompareKubeAwareVersionStrings`): GA before beta
/// before alpha, higher numbers first, versions not of the form v1beta2 last, by name.
pub fn kube_version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        Some((major, stage, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

impl Discovery {
    /// Discovery with no resources yet; `server_address` (host:port) is advertised in /api.
    pub fn new(server_address: String) -> Self {
        Self {
            state: RwLock::default(),
            server_address,
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.state.write().expect("discovery poisoned");
        f(&mut state);
        state.rebuild();
        drop(state);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Adds resources this server serves (replacing any with the same group, version and resource).
    pub fn add(&self, infos: impl IntoIterator<Item = ResourceInfo>) {
        self.change(|state| {
            for info in infos {
                state.local.retain(|r| {
                    !(r.group == info.group
                        && r.version == info.version
                        && r.resource == info.resource)
                });
                state.local.push(info);
            }
        });
    }

    /// Removes every version of one group/resource this server serves.
    pub fn remove(&self, group: &str, resource: &str) {
        self.change(|state| {
            state
                .local
                .retain(|r| !(r.group == group && r.resource == resource))
        });
    }

    /// Records the outcome of checking an extension server's group/version: the resources it
    /// reported, or `None` when it did not answer (what it reported before is kept, stale).
    pub fn set_remote(
        &self,
        group: &str,
        version: &str,
        (priority, version_priority): (i32, i32),
        resources: Option<Vec<ResourceInfo>>,
    ) {
        let key = (group.to_string(), version.to_string());
        let previous = self
            .state
            .read()
            .expect("discovery poisoned")
            .remote
            .get(&key)
            .cloned();
        let next = RemoteGroupVersion {
            priority,
            version_priority,
            fresh: resources.is_some(),
            resources: resources
                .or_else(|| previous.as_ref().map(|p| p.resources.clone()))
                .unwrap_or_default(),
        };
        if previous.as_ref() == Some(&next) {
            return;
        }
        self.change(|state| {
            state.remote.insert(key, next);
        });
    }

    /// Forgets a group/version no extension server serves any more.
    pub fn remove_remote(&self, group: &str, version: &str) {
        let key = (group.to_string(), version.to_string());
        if !self
            .state
            .read()
            .expect("discovery poisoned")
            .remote
            .contains_key(&key)
        {
            return;
        }
        self.change(|state| {
            state.remote.remove(&key);
        });
    }

    /// The group/versions this server serves itself ("" is the core group).
    pub fn local_group_versions(&self) -> Vec<(String, String)> {
        let state = self.state.read().expect("discovery poisoned");
        let mut gvs: Vec<(String, String)> = state
            .local
            .iter()
            .map(|r| (r.group.to_string(), r.version.to_string()))
            .collect();
        gvs.sort();
        gvs.dedup();
        gvs
    }

    /// A receiver that sees a new value whenever the resources change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Serves a discovery path; `None` when the path is not discovery for these resources.
    pub fn serve(&self, req: &Request) -> Option<Response> {
        let state = self.state.read().expect("discovery poisoned");
        Snapshot {
            resources: &state.all,
            remote: &state.remote,
            priorities: &state.priorities,
        }
        .serve(req, &self.server_address)
    }

    /// Whether `group` is served here.
    pub fn serves_group(&self, group: &str) -> bool {
        self.state
            .read()
            .expect("discovery poisoned")
            .all
            .iter()
            .any(|r| r.group == group)
    }
}

impl Snapshot<'_> {
    /// The groups served, in upstream's order, each with its versions: built-in groups by their
    /// priority, then the others by priority (custom resources' is 1000) and name, versions
    /// newest first.
    fn groups(&self) -> Vec<(&str, Vec<&str>)> {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        let served = self
            .resources
            .iter()
            .filter(|r| !r.group.is_empty())
            .map(|r| (&*r.group, &*r.version))
            .chain(self.remote.keys().map(|(g, v)| (g.as_str(), v.as_str())));
        for (group, version) in served {
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, versions)) if !versions.contains(&version) => versions.push(version),
                Some(_) => {}
                None => groups.push((group, vec![version])),
            }
        }
        groups.sort_by_key(|(g, _)| match builtin_group(g) {
            Some(builtin) => (false, -builtin.priority, *g),
            None => (
                true,
                -self
                    .priorities
                    .get(*g)
                    .copied()
                    .unwrap_or(CUSTOM_GROUP_PRIORITY),
                *g,
            ),
        });
        // Versions by versionPriority (CRDs': 100), then newest first, as upstream sorts
        // APIServices.
        for (g, versions) in &mut groups {
            if builtin_group(g).is_none() {
                let priority = |v: &str| {
                    self.remote
                        .get(&(g.to_string(), v.to_string()))
                        .map_or(CUSTOM_VERSION_PRIORITY, |r| r.version_priority)
                };
                versions.sort_by(|a, b| {
                    priority(b)
                        .cmp(&priority(a))
                        .then_with(|| kube_version_order(a, b))
                });
            }
        }
        groups
    }

    fn group_json(&self, group: &str, versions: &[&str]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
            .collect();
        json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
    }

    /// The APIResourceList of one group/version; `None` if nothing is served there.
    fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut resources = Vec::new();
        for r in self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
        {
            let mut entry = json!({
                "name": r.resource, "singularName": r.singular, "namespaced": r.namespaced,
                "kind": r.kind, "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                entry["categories"] = json!(r.categories);
            }
            resources.push(entry);
            // In the order the resource declares them: sorted for built-in kinds, status before
            // scale for custom resources, as upstream.
            for s in &r.subresources {
                let mut sub = json!({
                    "name": format!("{}/{}", r.resource, s.name), "singularName": "", "namespaced": r.namespaced,
                    "kind": s.kind, "verbs": s.verbs,
                });
                if s.group != r.group || s.version != r.version {
                    sub["group"] = json!(s.group);
                    sub["version"] = json!(s.version);
                }
                resources.push(sub);
            }
        }
        (!resources.is_empty()).then(|| {
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": resources})
        })
    }

    /// One entry of an APIGroupDiscoveryList.
    fn aggregated_group(&self, group: &str, versions: &[&str]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = self
                    .resources
                    .iter()
                    .filter(|r| r.group == group && r.version == *v)
                    .map(|r| {
                        let subresources: Vec<Value> = r
                            .subresources
                            .iter()
                            .map(|s| json!({"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind}, "verbs": s.verbs}))
                            .collect();
                        let mut entry = json!({
                            "resource": r.resource,
                            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                            "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": r.singular,
                            "verbs": r.verbs,
                        });
                        if !r.short_names.is_empty() {
                            entry["shortNames"] = json!(r.short_names);
                        }
                        if !r.categories.is_empty() {
                            entry["categories"] = json!(r.categories);
                        }
                        if !subresources.is_empty() {
                            entry["subresources"] = json!(subresources);
                        }
                        entry
                    })
                    .collect();
                let stale = self
                    .remote
                    .get(&(group.to_string(), v.to_string()))
                    .is_some_and(|r| !r.fresh);
                json!({"version": v, "resources": resources, "freshness": if stale { "Stale" } else { "Current" }})
            })
            .collect();
        let metadata = if group.is_empty() {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": group, "creationTimestamp": null})
        };
        json!({"metadata": metadata, "versions": versions})
    }

    fn aggregated(&self, items: Vec<Value>, version: &str) -> Response {
        let list = json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items});
        respond(
            &list,
            &format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"),
        )
    }

    fn serve(&self, req: &Request, server_address: &str) -> Option<Response> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["api"] => Some(match aggregated_version(req) {
                Some(v) => self.aggregated(vec![self.aggregated_group("", &["v1"])], v),
                None => respond(
                    &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}),
                    "application/json",
                ),
            }),
            ["apis"] => Some(match aggregated_version(req) {
                Some(v) => self.aggregated(
                    self.groups()
                        .iter()
                        .map(|(g, vs)| self.aggregated_group(g, vs))
                        .collect(),
                    v,
                ),
                None => {
                    let groups: Vec<Value> = self
                        .groups()
                        .iter()
                        .map(|(g, vs)| self.group_json(g, vs))
                        .collect();
                    respond(
                        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                        "application/json",
                    )
                }
            }),
            ["apis", group] => {
                let groups = self.groups();
                let (g, vs) = groups.iter().find(|(g, _)| g == group)?;
                let mut doc = self.group_json(g, vs);
                doc["kind"] = json!("APIGroup");
                doc["apiVersion"] = json!("v1");
                Some(respond(&doc, "application/json"))
            }
            ["api", version] => self
                .resource_list("", version)
                .map(|d| respond(&d, "application/json")),
            ["apis", group, version] => self
                .resource_list(group, version)
                .map(|d| respond(&d, "application/json")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::ALL_VERBS;
    use crate::registry::validation::NameRule;
    use std::borrow::Cow;

    fn info(group: &str, version: &str, resource: &str) -> ResourceInfo {
        ResourceInfo {
            group: group.to_string().into(),
            version: version.to_string().into(),
            kind: "Thing".into(),
            resource: resource.to_string().into(),
            singular: "thing".into(),
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: Cow::Borrowed(ALL_VERBS),
            subresources: Vec::new(),
            name_rule: NameRule::Dns1123Subdomain,
            scale: None,
            tracks_generation: false,
            delete_returns_object: false,
        }
    }

    fn get(d: &Discovery, path: &str, accept: &str) -> Value {
        let req = http::Request::get(path)
            .header(header::ACCEPT, accept)
            .body(crate::endpoints::full(Vec::new()))
            .unwrap();
        let resp = d.serve(&req).expect("a discovery path");
        let body = futures::executor::block_on(http_body_util::BodyExt::collect(resp.into_body()))
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn groups_order_built_ins_first_then_by_priority_and_versions_by_version_priority() {
        let d = Discovery::new("127.0.0.1:6443".into());
        d.add([
            info("apps", "v1", "deployments"),
            info("zeta.example.com", "v1", "zs"),
            info("alpha.example.com", "v1beta1", "as"),
            info("alpha.example.com", "v1", "as"),
        ]);
        d.set_remote(
            "metrics.k8s.io",
            "v1",
            (100, 10),
            Some(vec![info("metrics.k8s.io", "v1", "nodes")]),
        );
        d.set_remote(
            "metrics.k8s.io",
            "v1beta1",
            (100, 20),
            Some(vec![info("metrics.k8s.io", "v1beta1", "nodes")]),
        );
        d.set_remote("high.example.com", "v1", (5000, 15), None);
        let apis = get(&d, "/apis", "application/json");
        let names: Vec<&str> = apis["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "high.example.com",
                "alpha.example.com",
                "zeta.example.com",
                "metrics.k8s.io"
            ]
        );
        let group = |name: &str| {
            apis["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["name"] == name)
                .cloned()
                .unwrap()
        };
        // CRD versions: newest first; remote versions: versionPriority first.
        assert_eq!(
            group("alpha.example.com")["preferredVersion"]["version"],
            "v1"
        );
        assert_eq!(
            group("metrics.k8s.io")["preferredVersion"]["version"],
            "v1beta1"
        );
        // A remote group/version that never answered is listed, and stale when aggregated.
        assert_eq!(group("high.example.com")["versions"][0]["version"], "v1");
        let aggregated = get(
            &d,
            "/apis",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        );
        let high = aggregated["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "high.example.com")
            .cloned()
            .unwrap();
        assert_eq!(high["versions"][0]["freshness"], "Stale");
        d.remove_remote("high.example.com", "v1");
        let apis = get(&d, "/apis", "application/json").to_string();
        assert!(!apis.contains("high.example.com") && apis.contains("metrics.k8s.io"));
    }
}
