//! Request-header authentication: a front proxy, proven by its client certificate, names the user in headers.

use super::RequestHeaderConfig;
use super::UserInfo;
use super::x509::CaVerifier;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Authenticates requests relayed by a trusted front proxy (the aggregator of another server).
pub struct RequestHeaderAuthenticator {
    ca: CaVerifier,
    config: RequestHeaderConfig,
}

impl RequestHeaderAuthenticator {
    /// Loads the request-header CA.
    pub fn new(config: &RequestHeaderConfig) -> Result<Self, super::AuthError> {
        let ca = CaVerifier::load("requestheader-client-ca-file", &config.client_ca_file)?;
        Ok(Self {
            ca,
            config: config.clone(),
        })
    }

    /// The CA proxies' certificates chain to.
    pub fn ca(&self) -> &CaVerifier {
        &self.ca
    }

    /// `Ok(None)` when the certificate is not a proxy's or no user header is set; `Err` when a
    /// proxy certificate has a name that is not allowed.
    pub fn authenticate(
        &self,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
        headers: &http::HeaderMap,
    ) -> Result<Option<UserInfo>, String> {
        if self.ca.verify(leaf, intermediates).is_err() {
            return Ok(None);
        }
        let Some(name) = first_value(headers, &self.config.username_headers) else {
            return Ok(None);
        };
        if !self.config.allowed_names.is_empty() {
            let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| e.to_string())?;
            let cn = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .unwrap_or("")
                .to_string();
            if !self.config.allowed_names.contains(&cn) {
                return Err(format!(
                    "request header proxy certificate common name {cn:?} is not allowed"
                ));
            }
        }
        let uid = first_value(headers, &self.config.uid_headers).unwrap_or_default();
        let groups = all_values(headers, &self.config.group_headers);
        let mut extra = std::collections::BTreeMap::new();
        for (header, value) in headers {
            let header = header.as_str();
            for prefix in &self.config.extra_headers_prefix {
                if let Some(key) = header.strip_prefix(&prefix.to_ascii_lowercase()) {
                    let key = percent_encoding::percent_decode_str(key)
                        .decode_utf8_lossy()
                        .to_lowercase();
                    if let Ok(v) = value.to_str() {
                        extra
                            .entry(key)
                            .or_insert_with(Vec::new)
                            .push(v.to_string());
                    }
                }
            }
        }
        Ok(Some(UserInfo {
            name,
            uid,
            groups,
            extra,
        }))
    }
}

fn first_value(headers: &http::HeaderMap, names: &[String]) -> Option<String> {
    names
        .iter()
        .flat_map(|n| headers.get_all(n.as_str()))
        .filter_map(|v| v.to_str().ok())
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

fn all_values(headers: &http::HeaderMap, names: &[String]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| headers.get_all(n.as_str()))
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}
