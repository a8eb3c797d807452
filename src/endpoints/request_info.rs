//! `RequestInfo`: what a request path means (resource, verb, namespace…), parsed as upstream's RequestInfoFactory.

use http::Method;
use std::fmt;

/// What a request does, as upstream's RequestInfo verbs: parsed once here, matched everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verb {
    /// Read one object (GET on a name; also HEAD), or GET on a non-resource path.
    #[default]
    Get,
    /// Read a collection.
    List,
    /// Stream changes (`?watch=true` or the deprecated `/watch/` prefix).
    Watch,
    /// POST to a collection.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object (or a non-resource DELETE).
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// The deprecated `/proxy/` prefix.
    Proxy,
    /// A non-resource request's method none of the above names (post, put, head, options…),
    /// lower-cased as upstream; empty for a resource request whose method maps to no verb.
    Other(Box<str>),
}

impl Verb {
    /// Upstream's name of the verb, as authorization and messages use it.
    pub fn as_str(&self) -> &str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Proxy => "proxy",
            Verb::Other(method) => method,
        }
    }

    /// A non-resource request's verb: its method, lower-cased.
    fn of_method(method: &Method) -> Self {
        match *method {
            Method::GET => Verb::Get,
            Method::PATCH => Verb::Patch,
            Method::DELETE => Verb::Delete,
            _ => Verb::Other(method.as_str().to_lowercase().into()),
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parsed meaning of a request, used by authorization, in-flight limits and the REST layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path addresses an API resource (as opposed to /healthz, /version, discovery…).
    pub is_resource_request: bool,
    /// The URL path.
    pub path: String,
    /// What the request does.
    pub verb: Verb,
    /// "api" or "apis".
    pub api_prefix: String,
    /// API group ("" for core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// Resource, e.g. pods.
    pub resource: String,
    /// Subresource, e.g. status.
    pub subresource: String,
    /// Object name, empty for collections.
    pub name: String,
    /// The path segments after the namespace.
    pub parts: Vec<String>,
    /// The `?fieldSelector=` of a list or watch, for authorizers that allow
    /// by selector (the node authorizer's pods on one node); empty when none.
    pub field_selector: String,
}

const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    /// Parses a request's method, path and query.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Self {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: Verb::of_method(method),
            ..Default::default()
        };
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let Some((&prefix, rest)) = segments.split_first() else {
            return info;
        };
        if prefix != "api" && prefix != "apis" {
            return info;
        }
        // /api/v1 has no group; /apis/<group>/<version> has one; shorter paths are discovery.
        let min = if prefix == "api" { 3 } else { 4 };
        if segments.len() < min {
            return info;
        }
        info.is_resource_request = true;
        info.api_prefix = prefix.to_string();
        let mut current: Vec<&str> = rest.to_vec();
        if prefix == "apis" {
            info.api_group = current.remove(0).to_string();
        }
        info.api_version = current.remove(0).to_string();

        let mut special = false;
        if let Some(verb) = match current.first() {
            Some(&"watch") => Some(Verb::Watch),
            Some(&"proxy") => Some(Verb::Proxy),
            _ => None,
        } {
            current.remove(0);
            info.verb = verb;
            special = true;
            if current.is_empty() {
                return RequestInfo {
                    is_resource_request: false,
                    ..info
                };
            }
        }
        if !special {
            info.verb = match *method {
                Method::POST => Verb::Create,
                Method::GET | Method::HEAD => Verb::Get,
                Method::PUT => Verb::Update,
                Method::PATCH => Verb::Patch,
                Method::DELETE => Verb::Delete,
                _ => Verb::Other("".into()),
            };
        }

        if current.first() == Some(&"namespaces") && current.len() > 1 {
            info.namespace = current[1].to_string();
            if current.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&current[2]) {
                current.drain(..2);
            }
        }
        info.parts = current.iter().map(|s| s.to_string()).collect();
        if info.parts.len() >= 3 && info.verb != Verb::Proxy {
            info.subresource = info.parts[2].clone();
        }
        if info.parts.len() >= 2 {
            info.name = info.parts[1].clone();
        }
        if let Some(resource) = info.parts.first() {
            info.resource = resource.clone();
        }

        if info.name.is_empty() && info.verb == Verb::Get {
            let mut watch = false;
            for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
                match &*k {
                    "watch" => watch = matches!(&*v, "true" | "1"),
                    "fieldSelector" => {
                        info.field_selector = v.to_string();
                        if let Some(name) =
                            v.split(',').find_map(|t| t.strip_prefix("metadata.name="))
                        {
                            info.name = name.to_string();
                        }
                    }
                    _ => {}
                }
            }
            info.verb = if watch { Verb::Watch } else { Verb::List };
        }
        if info.name.is_empty() && info.verb == Verb::Delete {
            info.verb = Verb::DeleteCollection;
        }
        info
    }

    /// Whether this request may stay open indefinitely (watches, proxies, exec…), as upstream's LongRunningFunc.
    pub fn is_long_running(&self) -> bool {
        matches!(self.verb, Verb::Watch | Verb::Proxy)
            || matches!(
                self.subresource.as_str(),
                "attach" | "exec" | "proxy" | "log" | "portforward"
            )
    }

    /// Whether the verb writes.
    pub fn is_mutating(&self) -> bool {
        match &self.verb {
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection => {
                true
            }
            Verb::Other(method) => !self.is_resource_request && matches!(&**method, "post" | "put"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str, query: Option<&str>) -> RequestInfo {
        RequestInfo::parse(&method, path, query)
    }

    #[test]
    fn namespaced_get_has_resource_namespace_and_name() {
        let i = parse(Method::GET, "/api/v1/namespaces/default/pods/foo", None);
        assert!(i.is_resource_request);
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str()
            ),
            ("get", "default", "pods", "foo")
        );
    }

    #[test]
    fn collection_get_is_list_or_watch() {
        assert_eq!(
            parse(Method::GET, "/apis/apps/v1/deployments", None).verb,
            Verb::List
        );
        let w = parse(
            Method::GET,
            "/apis/apps/v1/namespaces/a/deployments",
            Some("watch=true"),
        );
        assert_eq!((w.verb.as_str(), w.api_group.as_str()), ("watch", "apps"));
    }

    #[test]
    fn status_subresource_and_namespace_subresources() {
        let i = parse(Method::PUT, "/api/v1/namespaces/ns/pods/p/status", None);
        assert_eq!(
            (i.verb.as_str(), i.subresource.as_str()),
            ("update", "status")
        );
        let n = parse(Method::PUT, "/api/v1/namespaces/ns/finalize", None);
        assert_eq!(
            (n.resource.as_str(), n.name.as_str(), n.subresource.as_str()),
            ("namespaces", "ns", "finalize")
        );
    }

    #[test]
    fn delete_without_name_is_deletecollection() {
        assert_eq!(
            parse(Method::DELETE, "/api/v1/namespaces/a/configmaps", None).verb,
            Verb::DeleteCollection
        );
    }

    #[test]
    fn discovery_and_health_are_non_resource() {
        for p in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/",
        ] {
            let i = parse(Method::GET, p, None);
            assert!(!i.is_resource_request, "{p}");
            assert_eq!(i.verb, Verb::Get);
        }
    }
}
