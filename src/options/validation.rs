//! `validate()`: every flag error at once, each naming its flag, in upstream's words where it has them.

use super::complete::{CompletedOptions, Mode};
use super::duration;
use super::tls;
use crate::storage::StorageBackend;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// One invalid flag and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// The flag's name without dashes.
    pub flag: &'static str,
    /// A message that names the flag.
    pub message: String,
}

impl FlagError {
    /// A new error for `flag`.
    pub fn new(flag: &'static str, message: String) -> Self {
        Self { flag, message }
    }
}

/// Every validation error, reported together.
#[derive(Debug, Clone, thiserror::Error)]
pub struct FlagErrors(pub Vec<FlagError>);

impl fmt::Display for FlagErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", e.message)?;
        }
        Ok(())
    }
}

/// Authorization modes upstream knows.
pub const AUTHORIZATION_MODES: &[&str] = &[
    "AlwaysAllow",
    "AlwaysDeny",
    "ABAC",
    "Webhook",
    "RBAC",
    "Node",
];
/// Upstream modes kubeboot rejects explicitly rather than accept and ignore their configuration.
const UNIMPLEMENTED_AUTHORIZATION_MODES: &[&str] = &["ABAC", "Webhook"];

/// Every admission plugin upstream kube-apiserver 1.33 registers.
pub const ADMISSION_PLUGINS: &[&str] = &[
    "AlwaysAdmit",
    "AlwaysDeny",
    "AlwaysPullImages",
    "CertificateApproval",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "ClusterTrustBundleAttest",
    "DefaultIngressClass",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
    "DenyServiceExternalIPs",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "ImagePolicyWebhook",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "NamespaceLifecycle",
    "NodeRestriction",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "PodNodeSelector",
    "PodSecurity",
    "PodTolerationRestriction",
    "Priority",
    "ResourceQuota",
    "RuntimeClass",
    "ServiceAccount",
    "StorageObjectInUseProtection",
    "TaintNodesByCondition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
];

/// The shortest and longest `--service-account-max-token-expiration` upstream accepts.
const MIN_TOKEN_EXPIRATION: Duration = Duration::from_secs(3600);
const MAX_TOKEN_EXPIRATION: Duration = Duration::from_secs(1 << 32);

impl CompletedOptions {
    /// Checks every flag and returns all errors together, as upstream's `Validate()`.
    pub fn validate(&self) -> Result<(), FlagErrors> {
        let mut errs = self.completion_errors.clone();
        let f = &self.flags;
        let mut err =
            |flag: &'static str, message: String| errs.push(FlagError::new(flag, message));

        if !(1..=65535).contains(&f.secure_port) {
            err(
                "secure-port",
                format!(
                    "--secure-port {} must be between 1 and 65535, inclusive. It cannot be turned off with 0",
                    f.secure_port
                ),
            );
        }
        if let Err(e) = tls::protocol_versions(f.tls_min_version.as_deref()) {
            err("tls-min-version", e);
        }
        if let Err(e) = tls::cipher_suites(&f.tls_cipher_suites) {
            err("tls-cipher-suites", e);
        }
        if f.tls_cert_file.is_some() != f.tls_private_key_file.is_some() {
            err(
                "tls-cert-file",
                "--tls-cert-file and --tls-private-key-file must be given together".into(),
            );
        }
        if f.proxy_client_cert_file.is_some() != f.proxy_client_key_file.is_some() {
            err(
                "proxy-client-cert-file",
                "--proxy-client-cert-file and --proxy-client-key-file must be given together"
                    .into(),
            );
        }
        for san in &f.cert_extra_sans {
            if san.trim().is_empty() || san.contains(char::is_whitespace) {
                err(
                    "cert-extra-sans",
                    format!("--cert-extra-sans: {san:?} is not a valid IP address or DNS name"),
                );
            }
        }

        let files: [(&'static str, Option<&Path>); 12] = [
            ("tls-cert-file", f.tls_cert_file.as_deref()),
            ("tls-private-key-file", f.tls_private_key_file.as_deref()),
            ("client-ca-file", f.client_ca_file.as_deref()),
            (
                "requestheader-client-ca-file",
                f.requestheader_client_ca_file.as_deref(),
            ),
            (
                "proxy-client-cert-file",
                f.proxy_client_cert_file.as_deref(),
            ),
            ("proxy-client-key-file", f.proxy_client_key_file.as_deref()),
            (
                "service-account-signing-key-file",
                f.service_account_signing_key_file.as_deref(),
            ),
            ("token-auth-file", f.token_auth_file.as_deref()),
            ("etcd-cafile", f.etcd_cafile.as_deref()),
            ("etcd-certfile", f.etcd_certfile.as_deref()),
            ("etcd-keyfile", f.etcd_keyfile.as_deref()),
            ("audit-policy-file", f.audit_policy_file.as_deref()),
        ];
        let sa_keys = f
            .service_account_key_file
            .iter()
            .map(|p| ("service-account-key-file", Some(p.as_path())));
        for (flag, path) in files.into_iter().chain(sa_keys) {
            if let Some(path) = path
                && let Err(e) = std::fs::File::open(path)
            {
                err(
                    flag,
                    format!("--{flag} {}: unreadable: {e}", path.display()),
                );
            }
        }

        if f.service_account_signing_key_file.is_some() && f.service_account_issuer.is_empty() {
            err(
                "service-account-issuer",
                "--service-account-issuer is a required flag when --service-account-signing-key-file is given".into(),
            );
        }
        for issuer in &f.service_account_issuer {
            if issuer.is_empty() {
                err(
                    "service-account-issuer",
                    "--service-account-issuer cannot be an empty string".into(),
                );
            } else if issuer.contains(':')
                && !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            {
                err(
                    "service-account-issuer",
                    format!(
                        "--service-account-issuer {issuer:?} contained a ':' but was not a valid URL"
                    ),
                );
            }
        }
        let max_exp = f.service_account_max_token_expiration;
        if !max_exp.is_zero() && !(MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&max_exp) {
            err(
                "service-account-max-token-expiration",
                format!(
                    "--service-account-max-token-expiration {} must be between 1h and 2^32 seconds",
                    duration::format(max_exp)
                ),
            );
        }

        for mode in &f.authorization_mode {
            if !AUTHORIZATION_MODES.contains(&mode.as_str()) {
                err(
                    "authorization-mode",
                    format!("--authorization-mode {mode:?} is not a valid mode"),
                );
            } else if UNIMPLEMENTED_AUTHORIZATION_MODES.contains(&mode.as_str()) {
                err(
                    "authorization-mode",
                    format!("--authorization-mode {mode:?} is not implemented by kubeboot"),
                );
            }
        }
        for (i, mode) in f.authorization_mode.iter().enumerate() {
            if f.authorization_mode[..i].contains(mode) {
                err(
                    "authorization-mode",
                    format!("--authorization-mode {mode:?} has been specified more than once"),
                );
            }
        }
        for (flag, plugins) in [
            ("enable-admission-plugins", &f.enable_admission_plugins),
            ("disable-admission-plugins", &f.disable_admission_plugins),
        ] {
            for plugin in plugins {
                if !ADMISSION_PLUGINS.contains(&plugin.as_str()) {
                    err(flag, format!("--{flag} plugin {plugin:?} is unknown"));
                }
            }
        }
        for entry in f.runtime_config.iter().filter(|e| !e.is_empty()) {
            let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), "true"));
            let key_ok = !key.is_empty() && (key == "v1" || key.contains('/'));
            if !key_ok || !matches!(value, "true" | "false" | "") {
                err(
                    "runtime-config",
                    format!(
                        "--runtime-config {entry:?} is invalid: expected <group>/<version>=true|false"
                    ),
                );
            }
        }

        if f.max_requests_inflight < 0 {
            err(
                "max-requests-inflight",
                "--max-requests-inflight can not be negative value".into(),
            );
        }
        if f.max_mutating_requests_inflight < 0 {
            err(
                "max-mutating-requests-inflight",
                "--max-mutating-requests-inflight can not be negative value".into(),
            );
        }
        if f.min_request_timeout < 0 {
            err(
                "min-request-timeout",
                "--min-request-timeout can not be negative value".into(),
            );
        }
        if f.default_watch_cache_size < 0 {
            err(
                "default-watch-cache-size",
                "--default-watch-cache-size can not be negative value".into(),
            );
        }
        if f.storage_compaction_keep < 1 {
            err(
                "storage-compaction-keep",
                "--storage-compaction-keep must be at least 1".into(),
            );
        }
        if f.request_timeout.is_zero() {
            err(
                "request-timeout",
                "--request-timeout must be greater than 0".into(),
            );
        }

        match f.storage_backend.as_deref() {
            None | Some("embedded" | "etcd" | "etcd3") => {}
            Some(other) => err(
                "storage-backend",
                format!("--storage-backend {other:?} is invalid: must be embedded or etcd (etcd3)"),
            ),
        }
        match &self.storage.backend {
            StorageBackend::Etcd { servers, .. } => {
                if servers.is_empty() {
                    err(
                        "etcd-servers",
                        "--etcd-servers must be specified with --storage-backend=etcd".into(),
                    );
                }
                for s in servers {
                    if !(s.starts_with("http://") || s.starts_with("https://")) {
                        err(
                            "etcd-servers",
                            format!(
                                "--etcd-servers {s:?} must be a URL of the form http(s)://host:port"
                            ),
                        );
                    }
                }
                if !cfg!(feature = "etcd") {
                    err(
                        "storage-backend",
                        "--storage-backend=etcd: this kubeboot was built without the `etcd` cargo feature".into(),
                    );
                }
            }
            StorageBackend::Embedded { .. } if !f.etcd_servers.is_empty() => err(
                "etcd-servers",
                "--etcd-servers cannot be combined with --storage-backend=embedded".into(),
            ),
            StorageBackend::Embedded { .. } => {}
        }
        if !self.storage.prefix.starts_with('/') {
            err(
                "etcd-prefix",
                format!("--etcd-prefix {:?} must start with '/'", f.etcd_prefix),
            );
        }
        if f.data_dir.as_os_str().is_empty() {
            err("data-dir", "--data-dir must not be empty".into());
        }
        if self.mode != Mode::Init
            && self.bind_address.is_unspecified()
            && self.advertise_address.is_loopback()
            && f.advertise_address.is_none()
        {
            // Not an error upstream either, but worth saying: nodes elsewhere cannot reach a loopback advertise address.
            tracing::warn!(
                "no non-loopback interface found; advertising {}",
                self.advertise_address
            );
        }

        if errs.is_empty() {
            Ok(())
        } else {
            Err(FlagErrors(errs))
        }
    }
}

impl CompletedOptions {
    /// Flags that are accepted but whose behaviour kubeboot does not have yet, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let f = &self.flags;
        let mut out = Vec::new();
        if f.audit_log_path.is_some() || f.audit_policy_file.is_some() {
            out.push("--audit-log-path/--audit-policy-file: audit logging is not implemented by kubeboot yet; no audit events are written".into());
        }
        out
    }
}
