//! The connect subresources of the core group, as upstream's pod, node and service REST:
//! `pods/log` streams the kubelet's `/containerLogs`; `pods/exec`, `attach` and `portforward`
//! are joined to the kubelet's `/exec`, `/attach` and `/portForward` (the SPDY or WebSocket
//! switch passes through); `nodes/proxy` reaches the kubelet (or another port of the node);
//! `pods/proxy` and `services/proxy` reach a pod or a ready endpoint of the service, refusing
//! loopback and link-local addresses as upstream's `IsProxyableIP` does.

use super::kubelet::KubeletClient;
use crate::endpoints::handlers::{ConnectRequest, Connecter, PROXY_METHODS, STREAM_METHODS};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Response, full};
use crate::proxy::{Backend, prepare, send};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::{RegistryError, Store};
use http::{Method, StatusCode};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

/// The query of `req` as pairs, repeated keys kept in order.
fn query_pairs(req: &crate::endpoints::Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn flag(pairs: &[(String, String)], key: &str) -> bool {
    matches!(param(pairs, key), Some("true" | "1"))
}

fn encode(pairs: &[(&str, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The container of `pod` a request names, or the only one; upstream's `validateContainer`.
fn container_of(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let containers = names("containers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            let all = [
                containers.clone(),
                names("initContainers"),
                names("ephemeralContainers"),
            ]
            .concat();
            if all.iter().any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let all = [
                    names("initContainers"),
                    containers.clone(),
                    names("ephemeralContainers"),
                ]
                .concat();
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
    }
}

/// Pods' connections to their node's kubelet.
pub struct PodKubelet {
    kubelet: Arc<KubeletClient>,
    nodes: Arc<Store>,
    /// Which connection: `log`, `exec`, `attach` or `portforward`.
    subresource: &'static str,
}

impl PodKubelet {
    /// The connecter of pods/`subresource`.
    pub fn new(kubelet: Arc<KubeletClient>, nodes: Arc<Store>, subresource: &'static str) -> Self {
        Self {
            kubelet,
            nodes,
            subresource,
        }
    }

    /// The kubelet of the node `pod` runs on; `None` for a pod on no node.
    async fn kubelet_of(
        &self,
        pod: &Value,
        skip_verify: bool,
    ) -> Result<Option<Backend>, ApiError> {
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if node.is_empty() {
            return Ok(None);
        }
        let node = self.nodes.get(None, node).await?;
        // Upstream's NoMatchError is no API status: it surfaces as an internal error.
        self.kubelet
            .backend(&node, skip_verify)
            .map(Some)
            .map_err(ApiError::internal)
    }

    /// Upstream's `PodLogOptions` validation.
    fn log_query(
        name: &str,
        q: &[(String, String)],
    ) -> Result<Vec<(&'static str, String)>, ApiError> {
        let mut errors = ErrorList::new();
        let mut out = Vec::new();
        for key in ["follow", "previous", "timestamps"] {
            if flag(q, key) {
                out.push((key, "true".to_string()));
            }
        }
        let number = |key: &str| param(q, key).map(|v| v.parse::<i64>());
        if let Some(v) = number("sinceSeconds") {
            match v {
                Ok(n) if n < 1 => errors.push(FieldError::invalid(
                    "sinceSeconds",
                    n,
                    "must be greater than 0",
                )),
                Ok(n) => out.push(("sinceSeconds", n.to_string())),
                Err(_) => return Err(ApiError::bad_request("sinceSeconds: invalid value")),
            }
        }
        if let Some(t) = param(q, "sinceTime") {
            if param(q, "sinceSeconds").is_some() {
                errors.push(FieldError::forbidden(
                    "",
                    "at most one of `sinceTime` or `sinceSeconds` may be specified",
                ));
            }
            out.push(("sinceTime", t.to_string()));
        }
        if let Some(v) = number("tailLines") {
            match v {
                Ok(n) if n < 0 => errors.push(FieldError::invalid(
                    "tailLines",
                    n,
                    "must be greater than or equal to 0",
                )),
                Ok(n) => out.push(("tailLines", n.to_string())),
                Err(_) => return Err(ApiError::bad_request("tailLines: invalid value")),
            }
        }
        if let Some(v) = number("limitBytes") {
            match v {
                Ok(n) if n < 1 => errors.push(FieldError::invalid(
                    "limitBytes",
                    n,
                    "must be greater than 0",
                )),
                Ok(n) => out.push(("limitBytes", n.to_string())),
                Err(_) => return Err(ApiError::bad_request("limitBytes: invalid value")),
            }
        }
        if !errors.is_empty() {
            return Err(RegistryError::Invalid {
                group: String::new(),
                qualified_kind: "PodLogOptions".into(),
                kind: "PodLogOptions".into(),
                name: name.to_string(),
                errors,
            }
            .into());
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Connecter for PodKubelet {
    fn methods(&self) -> &'static [Method] {
        if self.subresource == "log" {
            &[Method::GET]
        } else {
            STREAM_METHODS
        }
    }

    async fn connect(&self, c: ConnectRequest<'_>) -> Result<Response, ApiError> {
        let mut req = c.request;
        let pod = c.store.get(c.namespace, c.name).await?;
        let q = query_pairs(&req);
        let skip_verify = flag(&q, "insecureSkipTLSVerifyBackend");
        let namespace = c.namespace.unwrap_or_default();
        let (path, query) = match self.subresource {
            "log" => {
                let query = Self::log_query(c.name, &q)?;
                let container = container_of(&pod, param(&q, "container"))?;
                (
                    format!("/containerLogs/{namespace}/{}/{container}", c.name),
                    query,
                )
            }
            "portforward" => {
                let ports = q
                    .iter()
                    .filter(|(k, _)| k == "ports")
                    .flat_map(|(_, v)| v.split(','))
                    .map(|p| ("port", p.trim().to_string()))
                    .collect();
                (format!("/portForward/{namespace}/{}", c.name), ports)
            }
            stream => {
                let container = container_of(&pod, param(&q, "container"))?;
                // The kubelet's names for them (upstream's ExecStdinParam and the rest).
                let mut query: Vec<(&str, String)> = [
                    ("stdin", "input"),
                    ("stdout", "output"),
                    ("stderr", "error"),
                    ("tty", "tty"),
                ]
                .into_iter()
                .filter(|(k, _)| flag(&q, k))
                .map(|(_, kubelet)| (kubelet, "1".to_string()))
                .collect();
                if stream == "exec" {
                    query.extend(
                        q.iter()
                            .filter(|(k, _)| k == "command")
                            .map(|(_, v)| ("command", v.clone())),
                    );
                }
                (
                    format!("/{stream}/{namespace}/{}/{container}", c.name),
                    query,
                )
            }
        };
        let Some(backend) = self.kubelet_of(&pod, skip_verify).await? else {
            if self.subresource == "log" {
                // Upstream's LogLocation has no location for an unscheduled pod: an empty log.
                return Ok(http::Response::builder()
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .body(full(Vec::new()))
                    .expect("valid response"));
            }
            return Err(ApiError::bad_request(format!(
                "pod {} does not have a host assigned",
                c.name
            )));
        };
        let path_and_query = match encode(&query) {
            q if q.is_empty() => path,
            q => format!("{path}?{q}"),
        };
        // The kubelet authorizes kubeboot, not the caller; the caller's credentials stay here.
        req.headers_mut().remove(http::header::AUTHORIZATION);
        let upgrade = prepare(&mut req, &backend, &path_and_query);
        let resp = send(&backend, req, upgrade)
            .await
            .map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))?;
        if self.subresource == "log" && !resp.status().is_success() {
            return Err(backend_error(resp, "pods/log", c.name).await);
        }
        Ok(resp)
    }
}

/// A backend's failure as upstream's `GenericHttpResponseChecker` reports it.
async fn backend_error(resp: Response, resource: &str, name: &str) -> ApiError {
    use http_body_util::BodyExt;
    let code = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    let message = if code == StatusCode::NOT_FOUND {
        format!("the server could not find the requested resource ( {resource} {name})")
    } else {
        format!(
            "an error on the server ({text:?}) has prevented the request from succeeding ( {resource} {name})"
        )
    };
    ApiError::new(code, reason_of(code), message)
}

fn reason_of(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// `[scheme:]name[:port]`, upstream's `SplitSchemeNamePort`.
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
        return None;
    }
    Some((scheme, name, port))
}

/// Upstream's `IsProxyableIP`: loopback, link-local and unspecified addresses are refused.
fn proxyable(ip: &str) -> Result<(), ApiError> {
    let parsed: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid IP address {ip:?}")))?;
    let link_local = match parsed {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    };
    if parsed.is_loopback() || link_local || parsed.is_unspecified() || parsed.is_multicast() {
        return Err(ApiError::bad_request("address not allowed"));
    }
    Ok(())
}

/// The plain or TLS backend at `ip:port` for a pod or endpoint proxy (the pod's certificate
/// is not verified, as upstream's proxy transport does not).
fn plain_backend(scheme: &str, ip: &str, port: u16) -> Result<Backend, ApiError> {
    let tls = if scheme == "https" {
        let config = crate::proxy::tls_config(None, true, None)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(ip.to_string())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Some((Arc::new(config), name))
    } else {
        None
    };
    Ok(Backend {
        host: ip.to_string(),
        port,
        tls,
    })
}

/// Forwards `req` to `backend` at `path` with the request's query.
async fn forward(
    mut req: crate::endpoints::Request,
    backend: &Backend,
    path: &str,
) -> Result<Response, ApiError> {
    let path = if path.is_empty() { "/" } else { path };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    req.headers_mut().remove(http::header::AUTHORIZATION);
    let upgrade = prepare(&mut req, backend, &path_and_query);
    send(backend, req, upgrade)
        .await
        .map_err(|e| ApiError::service_unavailable(format!("error trying to reach service: {e}")))
}

/// `nodes/proxy`: the node's kubelet, or another port of the node over plain HTTP.
pub struct NodeProxy {
    kubelet: Arc<KubeletClient>,
}

impl NodeProxy {
    /// The connecter, reaching kubelets with `kubelet`.
    pub fn new(kubelet: Arc<KubeletClient>) -> Self {
        Self { kubelet }
    }
}

#[async_trait::async_trait]
impl Connecter for NodeProxy {
    fn methods(&self) -> &'static [Method] {
        PROXY_METHODS
    }

    async fn connect(&self, c: ConnectRequest<'_>) -> Result<Response, ApiError> {
        let Some((scheme, name, port)) = split_scheme_name_port(c.name) else {
            return Err(ApiError::bad_request(format!(
                "invalid node request {:?}",
                c.name
            )));
        };
        let node = c.store.get(None, name).await?;
        let kubelet = self
            .kubelet
            .backend(&node, false)
            .map_err(ApiError::internal)?;
        let backend = if port.is_empty() || port == kubelet.port.to_string() {
            kubelet
        } else {
            let port = port
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid port {port:?}")))?;
            plain_backend(scheme, &kubelet.host, port)?
        };
        forward(c.request, &backend, c.path).await
    }
}

/// `pods/proxy`: the pod's IP, on the port asked for (else the first container port, else 80).
pub struct PodProxy;

#[async_trait::async_trait]
impl Connecter for PodProxy {
    fn methods(&self) -> &'static [Method] {
        PROXY_METHODS
    }

    async fn connect(&self, c: ConnectRequest<'_>) -> Result<Response, ApiError> {
        let Some((scheme, name, port)) = split_scheme_name_port(c.name) else {
            return Err(ApiError::bad_request(format!(
                "invalid pod request {:?}",
                c.name
            )));
        };
        let pod = c.store.get(c.namespace, name).await?;
        let ip = pod
            .pointer("/status/podIP")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if ip.is_empty() {
            return Err(ApiError::service_unavailable(format!(
                "pod {name} does not have an IP address"
            )));
        }
        proxyable(ip)?;
        let port = if port.is_empty() {
            pod.pointer("/spec/containers/0/ports/0/containerPort")
                .and_then(Value::as_u64)
                .unwrap_or(80) as u16
        } else {
            port.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid port {port:?}")))?
        };
        forward(c.request, &plain_backend(scheme, ip, port)?, c.path).await
    }
}

/// `services/proxy`: a ready endpoint of the service, on the service port asked for by name or
/// number (the only one when none is named).
pub struct ServiceProxy {
    endpoints: Arc<Store>,
}

impl ServiceProxy {
    /// The connecter, reading `endpoints`.
    pub fn new(endpoints: Arc<Store>) -> Self {
        Self { endpoints }
    }
}

#[async_trait::async_trait]
impl Connecter for ServiceProxy {
    fn methods(&self) -> &'static [Method] {
        PROXY_METHODS
    }

    async fn connect(&self, c: ConnectRequest<'_>) -> Result<Response, ApiError> {
        let Some((scheme, name, port)) = split_scheme_name_port(c.name) else {
            return Err(ApiError::bad_request(format!(
                "invalid service request {:?}",
                c.name
            )));
        };
        let service = c.store.get(c.namespace, name).await?;
        let ports = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let service_port = ports.iter().find(|p| {
            port.is_empty() && ports.len() == 1
                || p["name"].as_str() == Some(port)
                || p["port"].as_u64().map(|n| n.to_string()).as_deref() == Some(port)
        });
        let Some(service_port) = service_port else {
            return Err(ApiError::service_unavailable(format!(
                "no service port {port:?} found for service {name:?}"
            )));
        };
        let port_name = service_port["name"].as_str().unwrap_or_default();
        let endpoints = self.endpoints.get(c.namespace, name).await.map_err(|_| {
            ApiError::service_unavailable(format!("no endpoints available for service {name:?}"))
        })?;
        let target = endpoints
            .pointer("/subsets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|subset| {
                let port = subset["ports"]
                    .as_array()?
                    .iter()
                    .find(|p| p["name"].as_str().unwrap_or_default() == port_name)?
                    .get("port")?
                    .as_u64()?;
                let ip = subset["addresses"].as_array()?.first()?["ip"].as_str()?;
                Some((ip.to_string(), port as u16))
            });
        let Some((ip, target_port)) = target else {
            return Err(ApiError::service_unavailable(format!(
                "no endpoints available for service {name:?}"
            )));
        };
        proxyable(&ip)?;
        forward(c.request, &plain_backend(scheme, &ip, target_port)?, c.path).await
    }
}
