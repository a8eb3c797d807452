//! What auth is built from: the authenticators' files and switches and the ordered authorization
//! modes, filled in by the options (auth never reads flags).

use std::fmt;
use std::path::PathBuf;

/// The authenticators to build, as upstream's `BuiltInAuthenticationOptions` once applied.
#[derive(Debug, Clone)]
pub struct AuthenticationConfig {
    /// CA whose client certificates authenticate with their CommonName (`--client-ca-file`).
    pub client_ca_file: PathBuf,
    /// Request-header (front-proxy) authentication, when configured.
    pub requestheader: Option<RequestHeaderConfig>,
    /// Static bearer tokens (`--token-auth-file`).
    pub token_auth_file: Option<PathBuf>,
    /// Whether requests without credentials are `system:anonymous` rather than refused (`--anonymous-auth`).
    pub anonymous: bool,
    /// Bootstrap tokens in kube-system Secrets authenticate (`--enable-bootstrap-token-auth`).
    pub bootstrap_tokens: bool,
    /// Service-account tokens: their keys, issuers and audiences.
    pub service_accounts: super::serviceaccount::ServiceAccountConfig,
}

/// The request-header (front-proxy) authenticator's settings.
#[derive(Debug, Clone)]
pub struct RequestHeaderConfig {
    /// CA that must have signed the proxy's client certificate.
    pub client_ca_file: PathBuf,
    /// Allowed client certificate common names; empty allows any name the CA signed.
    pub allowed_names: Vec<String>,
    /// Headers carrying the user name, first non-empty wins.
    pub username_headers: Vec<String>,
    /// Headers carrying the user's UID.
    pub uid_headers: Vec<String>,
    /// Headers carrying groups.
    pub group_headers: Vec<String>,
    /// Header prefixes carrying extra user information.
    pub extra_headers_prefix: Vec<String>,
}

/// The authorization chain to build (`--authorization-mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationConfig {
    /// Modes in the order they are asked; the first decisive answer wins.
    pub modes: Vec<AuthorizationMode>,
}

/// An authorization mode kubeboot implements, by upstream's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// `AlwaysAllow`: every request is allowed.
    AlwaysAllow,
    /// `AlwaysDeny`: every request is denied.
    AlwaysDeny,
    /// `RBAC`: role-based access control.
    Rbac,
    /// `Node`: the node authorizer.
    Node,
}

impl AuthorizationMode {
    /// Every implemented mode.
    pub const ALL: [Self; 4] = [Self::AlwaysAllow, Self::AlwaysDeny, Self::Rbac, Self::Node];

    /// Upstream's name of the mode, as `--authorization-mode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::AlwaysAllow => "AlwaysAllow",
            Self::AlwaysDeny => "AlwaysDeny",
            Self::Rbac => "RBAC",
            Self::Node => "Node",
        }
    }

    /// The implemented mode `name` spells, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for AuthorizationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
