//! Discovery: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>, legacy and aggregated (v2, v2beta1).

use super::{Request, Response, full};
use crate::registry::ResourceInfo;
use http::{StatusCode, header};
use serde_json::{Value, json};

/// Upstream's group order in /apis (by group priority), for the groups kubeboot serves.
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
];

/// The discovery documents of a set of resources.
pub struct Discovery {
    resources: Vec<ResourceInfo>,
    server_address: String,
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

impl Discovery {
    /// Discovery for `resources`; `server_address` (host:port) is advertised in /api.
    pub fn new(mut resources: Vec<ResourceInfo>, server_address: String) -> Self {
        resources.sort_by(|a, b| a.resource.cmp(&b.resource));
        Self {
            resources,
            server_address,
        }
    }

    /// The groups served, in upstream's order, each with its versions.
    fn groups(&self) -> Vec<(&str, Vec<&str>)> {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for r in self.resources.iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&&*r.version) => {
                    versions.push(&r.version)
                }
                Some(_) => {}
                None => groups.push((&r.group, vec![&r.version])),
            }
        }
        groups.sort_by_key(|(g, _)| {
            GROUP_ORDER
                .iter()
                .position(|o| o == g)
                .unwrap_or(usize::MAX)
        });
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
            let mut subs = r.subresources.clone();
            subs.sort_by(|a, b| a.name.cmp(b.name));
            for s in subs {
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
                        let mut subs = r.subresources.clone();
                        subs.sort_by(|a, b| a.name.cmp(b.name));
                        let subresources: Vec<Value> = subs
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
                json!({"version": v, "resources": resources, "freshness": "Current"})
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

    /// Serves a discovery path; `None` when the path is not discovery for these resources.
    pub fn serve(&self, req: &Request) -> Option<Response> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["api"] => Some(match aggregated_version(req) {
                Some(v) => self.aggregated(vec![self.aggregated_group("", &["v1"])], v),
                None => respond(
                    &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}]}),
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

    /// Whether `group` is served here.
    pub fn serves_group(&self, group: &str) -> bool {
        self.resources.iter().any(|r| r.group == group)
    }
}
