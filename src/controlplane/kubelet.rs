//! The kubelet client, as upstream's `pkg/kubelet/client`: a node's kubelet is reached on the
//! first of its addresses whose type `--kubelet-preferred-address-types` prefers, at the port
//! its status publishes (`daemonEndpoints.kubeletEndpoint.port`, else `--kubelet-port`), over
//! TLS verified against `--kubelet-certificate-authority` — without verification when none is
//! given, as upstream — presenting `--kubelet-client-certificate`/`--kubelet-client-key`.

use crate::proxy::{Backend, ClientIdentity, ProxyError, tls_config};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Upstream's default `--kubelet-preferred-address-types`.
pub const DEFAULT_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// How to reach kubelets (the `--kubelet-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletClientConfig {
    /// The port of a kubelet whose Node publishes none.
    pub port: u16,
    /// Node address types, most preferred first.
    pub preferred_address_types: Vec<String>,
    /// Client certificate and key presented to kubelets.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// CA that verifies kubelets' serving certificates.
    pub certificate_authority: Option<PathBuf>,
}

/// Reaches kubelets.
pub struct KubeletClient {
    config: KubeletClientConfig,
    tls: Arc<rustls::ClientConfig>,
    insecure: Arc<rustls::ClientConfig>,
}

impl KubeletClient {
    /// Loads the client certificate and CA of `config`.
    pub fn new(config: KubeletClientConfig) -> Result<Self, ProxyError> {
        let identity = match &config.client_certificate {
            Some((cert, key)) => Some(ClientIdentity::load(cert, key)?),
            None => None,
        };
        let ca = match &config.certificate_authority {
            Some(path) => Some(std::fs::read(path).map_err(|e| ProxyError::Identity {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let tls = tls_config(ca.as_deref(), ca.is_none(), identity.as_ref())?;
        let insecure = tls_config(None, true, identity.as_ref())?;
        Ok(Self {
            config,
            tls: Arc::new(tls),
            insecure: Arc::new(insecure),
        })
    }

    /// The kubelet of `node` (a Node object); `skip_verify` is the request's
    /// `insecureSkipTLSVerifyBackend`. A node without a preferred address is upstream's error.
    pub fn backend(&self, node: &Value, skip_verify: bool) -> Result<Backend, String> {
        let host = self.address(node)?;
        let port = node
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .unwrap_or(self.config.port);
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = if skip_verify {
            self.insecure.clone()
        } else {
            self.tls.clone()
        };
        Ok(Backend {
            host,
            port,
            tls: Some((tls, name)),
        })
    }

    /// The default kubelet port, for telling a request for it from one for another port.
    pub fn default_port(&self) -> u16 {
        self.config.port
    }

    /// The node's address of the most preferred type.
    fn address(&self, node: &Value) -> Result<String, String> {
        let addresses = node
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for wanted in &self.config.preferred_address_types {
            if let Some(a) = addresses.iter().find(|a| a["type"] == wanted.as_str())
                && let Some(address) = a["address"].as_str()
            {
                return Ok(address.to_string());
            }
        }
        // Go prints []NodeAddress as [{Type Address} …].
        let known: Vec<String> = addresses
            .iter()
            .map(|a| {
                format!(
                    "{{{} {}}}",
                    a["type"].as_str().unwrap_or_default(),
                    a["address"].as_str().unwrap_or_default()
                )
            })
            .collect();
        Err(format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        ))
    }
}
