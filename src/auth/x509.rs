//! Client-certificate authentication: the certificate's CommonName is the user, its Organizations the groups.

use super::{AuthError, UserInfo, read_file};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime, pem::PemObject};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use std::path::Path;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Verifies client certificates against one CA bundle.
pub struct CaVerifier {
    roots: Vec<CertificateDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
    /// When the first root expires (Unix seconds): no verification holds past it.
    roots_valid_until: i64,
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    UnixTime::now().as_secs() as i64
}

/// The end of a certificate's validity (Unix seconds); `i64::MIN` when it does not parse,
/// so nothing that depends on it is kept.
fn not_after(cert: &CertificateDer<'_>) -> i64 {
    X509Certificate::from_der(cert)
        .map(|(_, c)| c.validity().not_after.timestamp())
        .unwrap_or(i64::MIN)
}

fn build_verifier(
    roots: &[CertificateDer<'static>],
    flag: &'static str,
    path: &Path,
) -> Result<Arc<dyn ClientCertVerifier>, AuthError> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).map_err(|e| AuthError::BadCa {
            flag,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| AuthError::BadCa {
            flag,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

impl CaVerifier {
    /// Loads a PEM CA bundle named by `flag`.
    pub fn load(flag: &'static str, path: &Path) -> Result<Self, AuthError> {
        let pem = read_file(flag, path)?;
        let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| AuthError::BadCa {
                flag,
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if roots.is_empty() {
            return Err(AuthError::BadCa {
                flag,
                path: path.to_path_buf(),
                reason: "no certificate found".into(),
            });
        }
        let verifier = build_verifier(&roots, flag, path)?;
        let roots_valid_until = roots.iter().map(not_after).min().unwrap_or(i64::MIN);
        Ok(Self {
            roots,
            verifier,
            roots_valid_until,
        })
    }

    /// Whether `leaf` chains to this CA and is valid for client authentication now.
    pub fn verify(
        &self,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<(), String> {
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The identity in a certificate this CA signed, and until when (Unix seconds) the
    /// verification holds: the first expiry among the chain and the roots.
    pub fn user(
        &self,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<(UserInfo, i64), String> {
        self.verify(leaf, intermediates)
            .map_err(|e| format!("verifying certificate: {e}"))?;
        let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| e.to_string())?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return Err("certificate has no common name".into());
        }
        let groups = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_string)
            .collect();
        let until = intermediates
            .iter()
            .map(not_after)
            .chain([
                cert.validity().not_after.timestamp(),
                self.roots_valid_until,
            ])
            .min()
            .unwrap_or(i64::MIN);
        let user = UserInfo {
            name,
            groups,
            ..Default::default()
        };
        Ok((user, until))
    }
}

/// One verifier for the TLS handshake that accepts certificates from any of the given CAs.
pub fn union_verifier(cas: &[&CaVerifier]) -> Result<Arc<dyn ClientCertVerifier>, AuthError> {
    let roots: Vec<CertificateDer<'static>> =
        cas.iter().flat_map(|ca| ca.roots.iter().cloned()).collect();
    build_verifier(
        &roots,
        "client-ca-file",
        Path::new("(client and request-header CAs)"),
    )
}
