//! Client-certificate authentication: the certificate's CommonName is the user, its Organizations the groups.

use super::{AuthError, UserInfo, read_file};
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime, pem::PemObject};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};

/// One CA bundle as last read: its roots, their verifier, and when the first root expires
/// (Unix seconds), past which no verification holds.
struct Bundle {
    pem: Vec<u8>,
    roots: Vec<CertificateDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
    roots_valid_until: i64,
}

/// Verifies client certificates against a CA bundle file that is re-read when it changes, as
/// upstream's `DynamicFileCAContent`: a rotated CA needs no restart, and a file that stops
/// parsing keeps the last good bundle in use.
#[derive(Clone)]
pub struct CaVerifier(Arc<CaFile>);

struct CaFile {
    flag: &'static str,
    path: PathBuf,
    bundle: RwLock<Arc<Bundle>>,
    /// Bumped on every change of the bundle, so what was verified before can be told apart.
    generation: AtomicU64,
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

/// Parses the PEM CA bundle `pem` read from `path` (named by `flag`).
fn parse(flag: &'static str, path: &Path, pem: Vec<u8>) -> Result<Bundle, AuthError> {
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
    Ok(Bundle {
        pem,
        roots,
        verifier,
        roots_valid_until,
    })
}

impl CaVerifier {
    /// Loads a PEM CA bundle named by `flag`.
    pub fn load(flag: &'static str, path: &Path) -> Result<Self, AuthError> {
        let bundle = parse(flag, path, read_file(flag, path)?)?;
        Ok(Self(Arc::new(CaFile {
            flag,
            path: path.to_path_buf(),
            bundle: RwLock::new(Arc::new(bundle)),
            generation: AtomicU64::new(0),
        })))
    }

    fn bundle(&self) -> Arc<Bundle> {
        self.0
            .bundle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Which bundle is in use: changes whenever the file's content does.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Re-reads the file: `Ok(true)` when a new bundle is in use, `Ok(false)` when the content is
    /// unchanged, `Err` (the last good bundle staying in use) when it cannot be read or parsed.
    pub fn reload(&self) -> Result<bool, AuthError> {
        let CaFile { flag, path, .. } = &*self.0;
        let pem = read_file(flag, path)?;
        if pem == self.bundle().pem {
            return Ok(false);
        }
        let bundle = parse(flag, path, pem)?;
        *self.0.bundle.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(bundle);
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Whether `leaf` chains to this CA and is valid for client authentication now.
    pub fn verify(
        &self,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<(), String> {
        self.bundle()
            .verifier
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
                self.bundle().roots_valid_until,
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

/// How often CA files are re-read. Upstream watches them with inotify and re-reads every minute;
/// a read of a small file every few seconds costs nothing and needs no watcher.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(3);

/// Re-reads `cas` every [`RELOAD_INTERVAL`], forever, logging what changed or failed.
pub async fn reload_forever(cas: Vec<CaVerifier>) {
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        for ca in &cas {
            match ca.reload() {
                Ok(true) => tracing::info!(
                    flag = ca.0.flag,
                    path = %ca.0.path.display(),
                    "loaded a new CA bundle"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "keeping the last good CA bundle"),
            }
        }
    }
}

/// The TLS handshake's verifier: certificates of any of the CAs, rebuilt when one of them
/// changes. Certificates are requested, not required.
pub struct UnionVerifier {
    cas: Vec<CaVerifier>,
    current: RwLock<UnionState>,
}

struct UnionState {
    generations: Vec<u64>,
    verifier: Arc<dyn ClientCertVerifier>,
    /// The CA names offered to clients. rustls lends them out for as long as the verifier
    /// lives, so each rebuild's are leaked: a few hundred bytes per CA rotation.
    hints: &'static [DistinguishedName],
}

impl std::fmt::Debug for UnionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnionVerifier").finish_non_exhaustive()
    }
}

impl UnionVerifier {
    /// The verifier of certificates of any of `cas`.
    pub fn new(cas: &[&CaVerifier]) -> Result<Arc<Self>, AuthError> {
        let cas: Vec<CaVerifier> = cas.iter().map(|&ca| ca.clone()).collect();
        let current = RwLock::new(union_state(&cas)?);
        Ok(Arc::new(Self { cas, current }))
    }

    /// The verifier of the CAs' current bundles.
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        let generations: Vec<u64> = self.cas.iter().map(CaVerifier::generation).collect();
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.generations == generations {
                return current.verifier.clone();
            }
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        match union_state(&self.cas) {
            Ok(state) => *current = state,
            // Unreachable for bundles that parsed alone; keep verifying with the old ones.
            Err(e) => tracing::warn!(error = %e, "keeping the last client CA union"),
        }
        current.verifier.clone()
    }
}

fn union_state(cas: &[CaVerifier]) -> Result<UnionState, AuthError> {
    let generations = cas.iter().map(CaVerifier::generation).collect();
    let roots: Vec<CertificateDer<'static>> = cas
        .iter()
        .flat_map(|ca| ca.bundle().roots.clone())
        .collect();
    let verifier = build_verifier(
        &roots,
        "client-ca-file",
        Path::new("(client and request-header CAs)"),
    )?;
    let hints = Box::leak(verifier.root_hint_subjects().to_vec().into_boxed_slice());
    Ok(UnionState {
        generations,
        verifier,
        hints,
    })
}

impl ClientCertVerifier for UnionVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.current();
        self.current.read().unwrap_or_else(|e| e.into_inner()).hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::certs::{LeafSpec, Pair, new_ca, new_leaf};

    fn client_of(ca: &Pair) -> CertificateDer<'static> {
        let leaf = new_leaf(
            &LeafSpec {
                common_name: "carol".into(),
                organizations: vec![],
                dns_names: vec![],
                ips: vec![],
                usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            },
            ca,
        )
        .unwrap();
        CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_rewritten_bundle_replaces_the_old_and_a_broken_one_keeps_it() {
        let (old, new) = (new_ca("old").unwrap(), new_ca("new").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, &old.cert_pem).unwrap();
        let ca = CaVerifier::load("client-ca-file", &path).unwrap();
        let union = UnionVerifier::new(&[&ca]).unwrap();
        let (of_old, of_new) = (client_of(&old), client_of(&new));
        let accepted = |cert: &CertificateDer<'static>| {
            let tls = union.verify_client_cert(cert, &[], UnixTime::now()).is_ok();
            assert_eq!(tls, ca.verify(cert, &[]).is_ok());
            tls
        };
        assert!(accepted(&of_old) && !accepted(&of_new));
        assert!(!ca.reload().unwrap(), "unchanged content");
        assert_eq!(ca.generation(), 0);

        std::fs::write(&path, &new.cert_pem).unwrap();
        assert!(ca.reload().unwrap());
        assert_eq!(ca.generation(), 1);
        assert!(!accepted(&of_old) && accepted(&of_new));
        assert_eq!(union.root_hint_subjects().len(), 1);

        std::fs::write(&path, "not a certificate").unwrap();
        assert!(ca.reload().is_err());
        assert_eq!(ca.generation(), 1);
        assert!(accepted(&of_new));
        std::fs::remove_file(&path).unwrap();
        assert!(ca.reload().is_err());
        assert!(accepted(&of_new));
    }
}
