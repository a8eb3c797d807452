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
    /// The Webhook mode's remote service, set exactly when Webhook is a mode.
    pub webhook: Option<WebhookAuthorizationConfig>,
}

/// The Webhook mode's settings (`--authorization-webhook-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAuthorizationConfig {
    /// The kubeconfig-format file naming the service and the credentials to call it with.
    pub config_file: PathBuf,
    /// The SubjectAccessReview version spoken with it.
    pub version: SubjectAccessReviewVersion,
    /// How long an allowed answer is remembered.
    pub authorized_ttl: std::time::Duration,
    /// How long any other answer is remembered.
    pub unauthorized_ttl: std::time::Duration,
}

/// The SubjectAccessReview version a webhook speaks (`--authorization-webhook-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectAccessReviewVersion {
    /// `authorization.k8s.io/v1`.
    V1,
    /// `authorization.k8s.io/v1beta1`, whose spec names the groups `group` (upstream's default).
    #[default]
    V1beta1,
}

impl SubjectAccessReviewVersion {
    /// The version `name` spells, or upstream's error.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "v1" => Ok(Self::V1),
            "v1beta1" => Ok(Self::V1beta1),
            other => Err(format!(
                "unsupported authorization version {other:?}, supported versions are \"v1\", \"v1beta1\""
            )),
        }
    }

    /// The apiVersion of its SubjectAccessReview.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "authorization.k8s.io/v1",
            Self::V1beta1 => "authorization.k8s.io/v1beta1",
        }
    }
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
    /// `Webhook`: a remote service answers SubjectAccessReviews.
    Webhook,
}

impl AuthorizationMode {
    /// Every implemented mode.
    pub const ALL: [Self; 5] = [
        Self::AlwaysAllow,
        Self::AlwaysDeny,
        Self::Rbac,
        Self::Node,
        Self::Webhook,
    ];

    /// Upstream's name of the mode, as `--authorization-mode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::AlwaysAllow => "AlwaysAllow",
            Self::AlwaysDeny => "AlwaysDeny",
            Self::Rbac => "RBAC",
            Self::Node => "Node",
            Self::Webhook => "Webhook",
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
