//! Authentication (who is asking) and authorization (may they), as upstream's union of authenticators.

pub mod authorizer;
mod bootstrap_token;
mod config;
mod requestheader;
pub mod reviews;
pub mod serviceaccount;
mod token_file;
mod x509;

pub mod user;

pub use authorizer::{Authorizer, Decision};
pub use config::{
    AuthenticationConfig, AuthorizationConfig, AuthorizationMode, RequestHeaderConfig,
    SubjectAccessReviewVersion, WebhookAuthorizationConfig,
};
pub use user::{ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo};

use crate::registry::StoreFactory;
use requestheader::RequestHeaderAuthenticator;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use serviceaccount::{Lookups, ServiceAccounts};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use token_file::TokenFile;
use x509::CaVerifier;

/// What the TLS layer knows about a connection, attached to each of its requests.
#[derive(Debug)]
pub struct ConnInfo {
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The client certificate chain, leaf first; empty when none was presented.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// Whether this is the in-process loopback client, which no network peer can claim.
    pub loopback: bool,
    /// The client certificate's identity once verified, until when it holds (Unix seconds)
    /// and against which CA bundle: the chain cannot change within a connection, and checking
    /// its signatures on every request took a sixth of a create's time.
    certificate_user: Mutex<Option<(UserInfo, i64, u64)>>,
}

impl ConnInfo {
    /// A TLS connection from `remote_addr` that presented `peer_certificates`.
    pub fn new(remote_addr: SocketAddr, peer_certificates: Vec<CertificateDer<'static>>) -> Self {
        Self {
            remote_addr,
            peer_certificates,
            loopback: false,
            certificate_user: Mutex::default(),
        }
    }

    /// The connection of the in-process loopback client.
    pub fn loopback() -> Self {
        Self {
            loopback: true,
            ..Self::new(SocketAddr::from(([127, 0, 0, 1], 0)), Vec::new())
        }
    }
}

/// Errors of the auth module.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A CA bundle or token file could not be read.
    #[error("--{flag} {}: {source}", path.display())]
    Read {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA bundle held no usable certificate.
    #[error("--{flag} {}: {reason}", path.display())]
    BadCa {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A token file line was malformed.
    #[error("--token-auth-file {}: line {line}: {reason}", path.display())]
    BadTokenFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A service-account key file is unusable.
    #[error(transparent)]
    Key(#[from] serviceaccount::keys::KeyError),
    /// The request's credentials were presented but are not valid.
    #[error("{0}")]
    Rejected(String),
}

fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// The union of configured authenticators, tried in upstream's order, then anonymous.
pub struct Authenticator {
    requestheader: Option<RequestHeaderAuthenticator>,
    x509: CaVerifier,
    tokens: Option<TokenFile>,
    service_accounts: Option<Arc<ServiceAccounts>>,
    /// Where bootstrap tokens are looked up, when `--enable-bootstrap-token-auth`.
    bootstrap_tokens: Option<Arc<crate::registry::Store>>,
    anonymous: bool,
    tls_verifier: Arc<dyn ClientCertVerifier>,
}

/// What a bearer token says: who, for which of the requested audiences, or why not.
pub struct TokenVerdict {
    /// The identity, when the token is valid.
    pub user: Option<UserInfo>,
    /// The requested audiences the token is valid for.
    pub audiences: Vec<String>,
    /// Why the token is not valid; empty when it is.
    pub error: String,
}

impl Authenticator {
    /// Loads the CA bundles, token file and service-account keys the configuration names;
    /// service-account tokens are checked against the objects in `storage`.
    pub fn new(
        config: &AuthenticationConfig,
        storage: &Arc<dyn StoreFactory>,
    ) -> Result<Self, AuthError> {
        let store = |group: &str, resource: &str| storage.builtin_store(group, resource);
        let lookups = Lookups {
            serviceaccounts: store("", "serviceaccounts"),
            secrets: store("", "secrets"),
            pods: store("", "pods"),
            nodes: store("", "nodes"),
        };
        let bootstrap_tokens = config.bootstrap_tokens.then(|| lookups.secrets.clone());
        let service_accounts = Arc::new(ServiceAccounts::new(
            config.service_accounts.clone(),
            lookups,
        )?);
        let mut authn = Self::from_parts(config, Some(service_accounts))?;
        authn.bootstrap_tokens = bootstrap_tokens;
        Ok(authn)
    }

    /// The authenticators that need no stored objects, with `service_accounts` when given.
    fn from_parts(
        config: &AuthenticationConfig,
        service_accounts: Option<Arc<ServiceAccounts>>,
    ) -> Result<Self, AuthError> {
        let x509 = CaVerifier::load("client-ca-file", &config.client_ca_file)?;
        let requestheader = match &config.requestheader {
            Some(rh) => Some(RequestHeaderAuthenticator::new(rh)?),
            None => None,
        };
        let tokens = match &config.token_auth_file {
            Some(path) => Some(TokenFile::load(path)?),
            None => None,
        };
        let mut roots = vec![&x509];
        if let Some(rh) = &requestheader {
            roots.push(rh.ca());
        }
        let tls_verifier = x509::UnionVerifier::new(&roots)?;
        Ok(Self {
            requestheader,
            x509,
            tokens,
            service_accounts,
            bootstrap_tokens: None,
            anonymous: config.anonymous,
            tls_verifier,
        })
    }

    /// Service-account token issuing and verification.
    pub fn service_accounts(&self) -> Option<&Arc<ServiceAccounts>> {
        self.service_accounts.as_ref()
    }

    /// The audiences a request's tokens must name (`--api-audiences`).
    pub fn api_audiences(&self) -> &[String] {
        self.service_accounts
            .as_ref()
            .map_or(&[], |s| s.api_audiences())
    }

    /// Upstream's bearer-token union: the token file, service-account tokens, bootstrap tokens; a token
    /// none of them knows is an "invalid bearer token".
    pub async fn authenticate_token(&self, token: &str, audiences: &[String]) -> TokenVerdict {
        let mut errors = Vec::new();
        if let Some(user) = self.tokens.as_ref().and_then(|t| t.get(token)) {
            return TokenVerdict {
                user: Some(user.clone()),
                audiences: audiences.to_vec(),
                error: String::new(),
            };
        }
        if let Some(sa) = &self.service_accounts {
            match sa.authenticate(token, audiences).await {
                Some(Ok(ok)) => {
                    return TokenVerdict {
                        user: Some(ok.user),
                        audiences: ok.audiences,
                        error: String::new(),
                    };
                }
                Some(Err(e)) => errors.push(e),
                None => {}
            }
        }
        if let Some(secrets) = &self.bootstrap_tokens
            && let Some(user) = bootstrap_token::authenticate(secrets, token).await
        {
            return TokenVerdict {
                user: Some(user),
                audiences: audiences.to_vec(),
                error: String::new(),
            };
        }
        if errors.is_empty() {
            errors.push("invalid bearer token".into());
        }
        TokenVerdict {
            user: None,
            audiences: Vec::new(),
            error: errors.join(", "),
        }
    }

    /// The verifier the TLS listener uses: certificates are requested, not required, and must chain
    /// to one of the configured CAs when presented.
    pub fn client_cert_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.tls_verifier.clone()
    }

    /// Re-reads the client CA files when they change, forever: the future to run beside the
    /// server.
    pub fn reload_client_cas(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut cas = vec![self.x509.clone()];
        if let Some(rh) = &self.requestheader {
            cas.push(rh.ca().clone());
        }
        x509::reload_forever(cas)
    }

    /// Authenticates a request; `Err` means 401.
    pub async fn authenticate(
        &self,
        conn: &ConnInfo,
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, AuthError> {
        match self.authenticate_now(conn, headers) {
            Authenticating::Done(result) => result,
            Authenticating::Token(token) => self.token_user(&token).await,
        }
    }

    /// Authenticates what can be without waiting (the connection's certificate, request
    /// headers, the anonymous user); a bearer token that must be looked up is handed back.
    /// Most requests carry a certificate verified once per connection, so their filter answers
    /// at once without a boxed future.
    pub fn authenticate_now(&self, conn: &ConnInfo, headers: &http::HeaderMap) -> Authenticating {
        if conn.loopback {
            return Authenticating::Done(Ok(UserInfo::loopback()));
        }
        let mut errors = Vec::new();
        if let Some((leaf, intermediates)) = conn.peer_certificates.split_first() {
            if let Some(rh) = &self.requestheader {
                match rh.authenticate(leaf, intermediates, headers) {
                    Ok(Some(user)) => return Authenticating::Done(Ok(authenticated(user))),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
            match self.certificate_user(conn, leaf, intermediates) {
                Ok(user) => return Authenticating::Done(Ok(authenticated(user))),
                Err(e) => errors.push(e),
            }
        }
        if let Some(token) = bearer_token(headers) {
            return Authenticating::Token(token.to_string());
        }
        Authenticating::Done(if !errors.is_empty() {
            Err(AuthError::Rejected(errors.join(", ")))
        } else if self.anonymous {
            Ok(UserInfo::anonymous())
        } else {
            Err(AuthError::Rejected("no credentials".into()))
        })
    }

    /// The user of bearer `token`, for the API's audiences.
    pub async fn token_user(&self, token: &str) -> Result<UserInfo, AuthError> {
        let verdict = self.authenticate_token(token, self.api_audiences()).await;
        match verdict.user {
            Some(user) => Ok(authenticated(user)),
            None => Err(AuthError::Rejected(verdict.error)),
        }
    }
}

/// Where a request's authentication stands once what needs no waiting is done.
pub enum Authenticating {
    /// Decided.
    Done(Result<UserInfo, AuthError>),
    /// A bearer token to look up.
    Token(String),
}

/// `user` in `system:authenticated`, as upstream's group adder puts every authenticated user.
pub fn authenticated(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.into());
    }
    user
}

impl Authenticator {
    /// The client certificate's user, verified once per connection and again once the
    /// verification's validity has passed.
    fn certificate_user(
        &self,
        conn: &ConnInfo,
        leaf: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<UserInfo, String> {
        let now = x509::unix_now();
        let generation = self.x509.generation();
        let mut cached = conn
            .certificate_user
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((user, until, verified_by)) = cached.as_ref()
            && now < *until
            && *verified_by == generation
        {
            return Ok(user.clone());
        }
        let (user, until) = self.x509.user(leaf, intermediates)?;
        *cached = Some((user.clone(), until, generation));
        Ok(user)
    }
}

fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::certs::{LeafSpec, new_ca, new_leaf};
    use rustls::pki_types::pem::PemObject;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    /// A connection presenting a new client certificate of `ca` for `name` in `groups`.
    fn client_conn(ca: &crate::pki::certs::Pair, name: &str, groups: &[&str]) -> ConnInfo {
        let leaf = new_leaf(
            &LeafSpec {
                common_name: name.into(),
                organizations: groups.iter().map(|g| g.to_string()).collect(),
                dns_names: Vec::new(),
                ips: Vec::new(),
                usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            },
            ca,
        )
        .unwrap();
        ConnInfo::new(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            vec![der(&leaf.cert_pem)],
        )
    }

    #[tokio::test]
    async fn a_connections_certificate_is_verified_once_until_its_verification_expires() {
        let ca = new_ca("kubernetes").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let x509 = CaVerifier::load("client-ca-file", &ca_file).unwrap();
        let authn = Authenticator {
            requestheader: None,
            tls_verifier: x509::UnionVerifier::new(&[&x509]).unwrap(),
            x509,
            tokens: None,
            service_accounts: None,
            bootstrap_tokens: None,
            anonymous: false,
        };
        let conn = client_conn(&ca, "alice", &["devs"]);
        let headers = http::HeaderMap::new();
        let user = authn.authenticate(&conn, &headers).await.unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["devs", AUTHENTICATED_GROUP]);

        // The verification holds until the leaf expires, its CA lasting longer.
        let (_, leaf_cert) =
            x509_parser::parse_x509_certificate(conn.peer_certificates[0].as_ref()).unwrap();
        let until = conn.certificate_user.lock().unwrap().as_ref().unwrap().1;
        assert_eq!(until, leaf_cert.validity().not_after.timestamp());

        // Later requests take the kept identity while it holds, and verify again after.
        let kept = |name: &str, until: i64| {
            let user = UserInfo {
                name: name.into(),
                ..Default::default()
            };
            *conn.certificate_user.lock().unwrap() = Some((user, until, 0));
        };
        kept("kept", x509::unix_now() + 60);
        assert_eq!(
            authn.authenticate(&conn, &headers).await.unwrap().name,
            "kept"
        );
        kept("kept", x509::unix_now() - 1);
        assert_eq!(
            authn.authenticate(&conn, &headers).await.unwrap().name,
            "alice"
        );

        // A new CA bundle voids what the old one verified.
        std::fs::write(&ca_file, new_ca("rotated").unwrap().cert_pem).unwrap();
        assert!(authn.x509.reload().unwrap());
        kept("kept", x509::unix_now() + 60);
        assert!(authn.authenticate(&conn, &headers).await.is_err());
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        assert!(authn.x509.reload().unwrap());
        assert_eq!(
            authn.authenticate(&conn, &headers).await.unwrap().name,
            "alice"
        );

        // A certificate of another CA is refused every time, and nothing is kept for it.
        let conn = client_conn(&new_ca("other").unwrap(), "mallory", &[]);
        for _ in 0..2 {
            assert!(authn.authenticate(&conn, &headers).await.is_err());
        }
        assert!(conn.certificate_user.lock().unwrap().is_none());
    }
}
