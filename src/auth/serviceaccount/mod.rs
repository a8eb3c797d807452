//! Service-account tokens, as upstream's `pkg/serviceaccount`: JWTs signed with
//! `--service-account-signing-key-file`, verified against every `--service-account-key-file`
//! key, their issuer one of `--service-account-issuer`, their audience one of
//! `--api-audiences`. A bound token (TokenRequest) is valid only while its ServiceAccount and
//! the Pod, Secret or Node it is bound to exist with the uids it names; a legacy Secret-based
//! token only while its Secret still holds it (with `--service-account-lookup`).

pub mod discovery;
mod jwt;
pub mod keys;
pub mod token_request;

use super::UserInfo;
use crate::registry::store::meta_str;
use crate::registry::{RegistryError, Store};
use base64::Engine;
use keys::{KeyError, PublicKey, SigningKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The issuer of legacy Secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// The group of every service account.
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// Upstream's `jwt.DefaultLeeway`: clock skew forgiven on exp/nbf/iat and deletions.
const LEEWAY_SECONDS: i64 = 60;

/// The service-account token settings, from the options.
#[derive(Debug, Clone)]
pub struct ServiceAccountConfig {
    /// `--service-account-issuer`: the first signs, all are accepted.
    pub issuers: Vec<String>,
    /// `--service-account-key-file`: the keys that verify.
    pub key_files: Vec<PathBuf>,
    /// `--service-account-signing-key-file`.
    pub signing_key_file: PathBuf,
    /// `--api-audiences`; the first issuer when empty.
    pub api_audiences: Vec<String>,
    /// `--service-account-lookup`: legacy tokens are checked against their Secret.
    pub lookup: bool,
    /// `--service-account-max-token-expiration`; `None` for no bound.
    pub max_token_expiration: Option<Duration>,
    /// `--service-account-extend-token-expiration`.
    pub extend_token_expiration: bool,
    /// `--service-account-jwks-uri`: the JWKS address discovery publishes.
    pub jwks_uri: Option<String>,
    /// `https://host:port` of this server, for the default JWKS address.
    pub external_address: String,
}

impl ServiceAccountConfig {
    /// The audiences tokens must name: `--api-audiences`, else the first issuer.
    pub fn audiences(&self) -> Vec<String> {
        if self.api_audiences.is_empty() {
            self.issuers.iter().take(1).cloned().collect()
        } else {
            self.api_audiences.clone()
        }
    }
}

/// The user name of service account `name` in `namespace`.
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The stores a token's objects are looked up in.
#[derive(Clone)]
pub struct Lookups {
    /// ServiceAccounts.
    pub serviceaccounts: Arc<Store>,
    /// Secrets.
    pub secrets: Arc<Store>,
    /// Pods.
    pub pods: Arc<Store>,
    /// Nodes.
    pub nodes: Arc<Store>,
}

/// Issues and verifies service-account tokens.
pub struct ServiceAccounts {
    config: ServiceAccountConfig,
    audiences: Vec<String>,
    signing: SigningKey,
    keys: Vec<PublicKey>,
    lookups: Lookups,
}

/// A token's verdict: who it is, and the audiences it was accepted for.
pub struct Authenticated {
    /// The service account's identity.
    pub user: UserInfo,
    /// The requested audiences the token names.
    pub audiences: Vec<String>,
}

/// Now, in Unix seconds.
fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl ServiceAccounts {
    /// Reads the keys `config` names; tokens' objects are looked up in `lookups`.
    pub fn new(config: ServiceAccountConfig, lookups: Lookups) -> Result<Self, KeyError> {
        let signing = SigningKey::load(&config.signing_key_file)?;
        let keys = keys::load_public_keys(&config.key_files)?;
        Ok(Self {
            audiences: config.audiences(),
            config,
            signing,
            keys,
            lookups,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ServiceAccountConfig {
        &self.config
    }

    /// The audiences tokens are for by default.
    pub fn api_audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The keys that verify tokens.
    pub fn public_keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Signs `claims` as the first issuer.
    pub fn sign(&self, mut claims: Value) -> Result<String, String> {
        if let Some(issuer) = self.config.issuers.first() {
            claims["iss"] = json!(issuer);
        }
        jwt::sign(&self.signing, &claims)
    }

    /// The identity in `token` for a request to `audiences`: `None` when the token is not a
    /// service-account token (another authenticator may know it), `Err` when it is one and
    /// is not valid.
    pub async fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Option<Result<Authenticated, String>> {
        let parsed = jwt::parse(token)?;
        let issuer = str_of(&parsed.claims, "/iss");
        let legacy = issuer == LEGACY_ISSUER;
        if !legacy && !self.config.issuers.iter().any(|i| i == issuer) {
            return None;
        }
        Some(self.validate(token, &parsed, legacy, audiences).await)
    }

    async fn validate(
        &self,
        token: &str,
        parsed: &jwt::Parsed<'_>,
        legacy: bool,
        requested: &[String],
    ) -> Result<Authenticated, String> {
        parsed.verify(&self.keys)?;
        let claims = &parsed.claims;
        let token_audiences: Vec<String> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => self.audiences.clone(),
        };
        let audiences: Vec<String> = token_audiences
            .iter()
            .filter(|a| requested.contains(a))
            .cloned()
            .collect();
        if audiences.is_empty() && !self.audiences.is_empty() {
            return Err(format!(
                "token audiences {token_audiences:?} is invalid for the target audiences {requested:?}"
            ));
        }
        let user = if legacy {
            self.validate_legacy(token, claims).await?
        } else {
            self.validate_bound(claims).await?
        };
        Ok(Authenticated { user, audiences })
    }

    /// Upstream's bound-token validator: times, then the objects the token names.
    async fn validate_bound(&self, claims: &Value) -> Result<UserInfo, String> {
        let now = now();
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        if time("exp").is_some_and(|exp| now > exp + LEEWAY_SECONDS) {
            return Err("service account token has expired".into());
        }
        if time("nbf").is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
            return Err("service account token is not valid yet".into());
        }
        if time("iat").is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
            return Err("service account token is issued in the future".into());
        }
        let k = claims
            .get("kubernetes.io")
            .ok_or("service account token has no kubernetes.io claims")?;
        let namespace = str_of(k, "/namespace");
        let (sa_name, sa_uid) = (
            str_of(k, "/serviceaccount/name"),
            str_of(k, "/serviceaccount/uid"),
        );
        let l = &self.lookups;
        let live = |what: &'static str| move |obj: &Value| check_live(obj, what);
        let sa = get(&l.serviceaccounts, Some(namespace), sa_name).await?;
        live("service account")(&sa)?;
        if meta_str(&sa, "uid") != Some(sa_uid) {
            return Err(format!(
                "service account UID ({}) does not match claim ({sa_uid})",
                meta_str(&sa, "uid").unwrap_or("")
            ));
        }
        let mut extra = BTreeMap::new();
        let bound = |kind: &str| k.get(kind).filter(|r| r.is_object());
        if let Some(secret) = bound("secret") {
            let (name, uid) = (str_of(secret, "/name"), str_of(secret, "/uid"));
            let obj = get(&l.secrets, Some(namespace), name).await?;
            live("secret")(&obj)?;
            if meta_str(&obj, "uid") != Some(uid) {
                return Err(format!(
                    "secret UID ({}) does not match service account secret ref claim ({uid})",
                    meta_str(&obj, "uid").unwrap_or("")
                ));
            }
        }
        if let Some(pod) = bound("pod") {
            let (name, uid) = (str_of(pod, "/name"), str_of(pod, "/uid"));
            let obj = get(&l.pods, Some(namespace), name).await?;
            live("pod")(&obj)?;
            if meta_str(&obj, "uid") != Some(uid) {
                return Err(format!(
                    "pod UID ({}) does not match service account pod ref claim ({uid})",
                    meta_str(&obj, "uid").unwrap_or("")
                ));
            }
            extra.insert(
                "authentication.kubernetes.io/pod-name".into(),
                vec![name.into()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".into(),
                vec![uid.into()],
            );
        }
        if let Some(node) = bound("node") {
            let (name, uid) = (str_of(node, "/name"), str_of(node, "/uid"));
            // A pod-bound token only reports its pod's node; a node-bound one needs the node.
            if bound("pod").is_none() {
                let obj = get(&l.nodes, None, name).await?;
                live("node")(&obj)?;
                if meta_str(&obj, "uid") != Some(uid) {
                    return Err(format!(
                        "node UID ({}) does not match service account node ref claim ({uid})",
                        meta_str(&obj, "uid").unwrap_or("")
                    ));
                }
            }
            extra.insert(
                "authentication.kubernetes.io/node-name".into(),
                vec![name.into()],
            );
            if !uid.is_empty() {
                extra.insert(
                    "authentication.kubernetes.io/node-uid".into(),
                    vec![uid.into()],
                );
            }
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok(service_account_user(namespace, sa_name, sa_uid, extra))
    }

    /// Upstream's legacy validator: the Secret must still hold this very token, and its
    /// ServiceAccount exist with the uid the token names (only with `--service-account-lookup`).
    async fn validate_legacy(&self, token: &str, claims: &Value) -> Result<UserInfo, String> {
        let claim = |name: &str| {
            claims
                .get(format!("kubernetes.io/serviceaccount/{name}"))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let (namespace, secret_name) = (claim("namespace"), claim("secret.name"));
        let (sa_name, sa_uid) = (claim("service-account.name"), claim("service-account.uid"));
        if namespace.is_empty() || secret_name.is_empty() || sa_name.is_empty() {
            return Err("service account token is missing claims".into());
        }
        if self.config.lookup {
            let l = &self.lookups;
            let secret = get(&l.secrets, Some(namespace), secret_name).await?;
            check_live(&secret, "secret")?;
            let held = secret
                .pointer("/data/token")
                .and_then(Value::as_str)
                .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok());
            if held.as_deref() != Some(token.as_bytes()) {
                return Err(format!(
                    "token does not match the token in secret {namespace}/{secret_name}"
                ));
            }
            let invalid_label = "kubernetes.io/legacy-token-invalid-since";
            if secret
                .pointer("/metadata/labels")
                .and_then(|l| l.get(invalid_label))
                .is_some()
            {
                return Err(format!(
                    "the token in secret {namespace}/{secret_name} for service account {namespace}/{sa_name} has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the '{invalid_label}' label from the secret to temporarily allow use of this token"
                ));
            }
            let sa = get(&l.serviceaccounts, Some(namespace), sa_name).await?;
            check_live(&sa, "service account")?;
            if meta_str(&sa, "uid") != Some(sa_uid) {
                return Err(format!(
                    "service account UID ({}) does not match claim ({sa_uid})",
                    meta_str(&sa, "uid").unwrap_or("")
                ));
            }
        }
        Ok(service_account_user(
            namespace,
            sa_name,
            sa_uid,
            BTreeMap::new(),
        ))
    }
}

/// The object, or upstream's lookup failure.
async fn get(store: &Store, ns: Option<&str>, name: &str) -> Result<Value, String> {
    store.get(ns, name).await.map_err(|e| match e {
        RegistryError::NotFound { .. } => e.to_string(),
        other => format!("looking up {name}: {other}"),
    })
}

/// Fails for an object deleted longer ago than the leeway, as upstream's validator.
fn check_live(obj: &Value, what: &str) -> Result<(), String> {
    let deleted = meta_str(obj, "deletionTimestamp")
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|t| t.unix_timestamp() < now() - LEEWAY_SECONDS);
    if deleted {
        Err(format!("{what} has been deleted"))
    } else {
        Ok(())
    }
}

/// Upstream's `ServiceAccountInfo.UserInfo`.
fn service_account_user(
    namespace: &str,
    name: &str,
    uid: &str,
    extra: BTreeMap<String, Vec<String>>,
) -> UserInfo {
    UserInfo {
        name: username(namespace, name),
        uid: uid.into(),
        groups: vec![
            ALL_SERVICE_ACCOUNTS_GROUP.into(),
            format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        ],
        extra,
    }
}
