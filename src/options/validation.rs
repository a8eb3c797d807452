//! `validate()`: every flag error at once, each naming its flag, in upstream's words where it has
//! them; completed options that pass become [`ValidOptions`], the only input of the server.

use super::complete::{CompletedOptions, Mode};
use super::duration;
use crate::storage::{StorageBackend, StorageMediaType};
use std::fmt;
use std::ops::Deref;
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

/// Completed options that passed `validate()`: the only type the server, `init` and `certs`
/// are built from, so validation cannot be skipped. Reads as the [`CompletedOptions`] it holds.
#[derive(Debug, Clone)]
pub struct ValidOptions(CompletedOptions);

impl Deref for ValidOptions {
    type Target = CompletedOptions;

    fn deref(&self) -> &CompletedOptions {
        &self.0
    }
}

/// The errors of one `validate()`, in upstream's order: a flag `complete()` could not parse is
/// reported at its turn among the checks, as if it had been checked there.
struct Report {
    errors: Vec<FlagError>,
    unparsed: Vec<FlagError>,
}

impl Report {
    fn error(&mut self, flag: &'static str, message: String) {
        self.errors.push(FlagError::new(flag, message));
    }

    /// Reports the parse errors of `flags`, in the order `complete()` met them.
    fn parsed(&mut self, flags: &[&str]) {
        let (these, rest) = std::mem::take(&mut self.unparsed)
            .into_iter()
            .partition(|e| flags.contains(&e.flag));
        self.unparsed = rest;
        self.errors.extend::<Vec<_>>(these);
    }

    fn finish(mut self) -> Result<(), FlagErrors> {
        self.errors.append(&mut self.unparsed);
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(FlagErrors(self.errors))
        }
    }
}

/// The shortest and longest `--service-account-max-token-expiration` upstream accepts.
const MIN_TOKEN_EXPIRATION: Duration = Duration::from_secs(3600);
const MAX_TOKEN_EXPIRATION: Duration = Duration::from_secs(1 << 32);

impl CompletedOptions {
    /// Checks every flag and returns all errors together, as upstream's `Validate()`; the options
    /// become [`ValidOptions`] only when there is none.
    pub fn validate(mut self) -> Result<ValidOptions, FlagErrors> {
        let mut r = Report {
            errors: Vec::new(),
            unparsed: std::mem::take(&mut self.parse_errors),
        };
        if let Some(path) = &self.admission_config_file {
            match crate::admission::AdmissionConfig::load(path) {
                Ok(config) => self.admission_config = config,
                Err(e) => r.error(
                    "admission-control-config-file",
                    format!("--admission-control-config-file: {e}"),
                ),
            }
        }
        // ImagePolicyWebhook needs its configuration, and a backend its kubeconfig names.
        if self
            .flags
            .enable_admission_plugins
            .iter()
            .any(|p| p == "ImagePolicyWebhook")
        {
            let error = match &self.admission_config.image_policy {
                None => Some("no config specified".to_string()),
                Some(c) => c.client().err().map(|e| e.to_string()),
            };
            if let Some(e) = error {
                r.error(
                    "admission-control-config-file",
                    format!("--admission-control-config-file: plugin ImagePolicyWebhook: {e}"),
                );
            }
        }
        // EventRateLimit without limits fails as upstream's default configuration does.
        if self
            .flags
            .enable_admission_plugins
            .iter()
            .any(|p| p == "EventRateLimit")
            && let Err(e) = self.admission_config.event_rate_limit.validate()
        {
            r.error(
                "admission-control-config-file",
                format!("--admission-control-config-file: plugin EventRateLimit: {e}"),
            );
        }
        if let Some(path) = &self.encryption_provider_config {
            match crate::storage::encryption::EncryptionConfig::load(path) {
                Ok(config) => self.encryption = Some(std::sync::Arc::new(config)),
                Err(e) => r.error(
                    "encryption-provider-config",
                    format!("--encryption-provider-config: {e}"),
                ),
            }
        }
        if let Some(path) = &self.audit_policy_file {
            match crate::audit::Policy::load(path) {
                Ok(policy) => self.audit_policy = Some(policy),
                Err(e) => r.error("audit-policy-file", format!("--audit-policy-file: {e}")),
            }
        }
        let f = &self.flags;
        if !(0.0..=0.02).contains(&f.goaway_chance) {
            r.error(
                "goaway-chance",
                "--goaway-chance can not be less than 0 or greater than 0.02".into(),
            );
        }
        if crate::audit::webhook::Mode::parse(&f.audit_webhook_mode).is_none() {
            r.error(
                "audit-webhook-mode",
                format!(
                    r#"--audit-webhook-mode: invalid audit webhook mode {}, allowed modes are "batch,blocking,blocking-strict""#,
                    f.audit_webhook_mode
                ),
            );
        }
        for (flag, value) in [
            (
                "audit-webhook-batch-buffer-size",
                f.audit_webhook_batch_buffer_size,
            ),
            (
                "audit-webhook-batch-max-size",
                f.audit_webhook_batch_max_size,
            ),
        ] {
            if value == 0 {
                let what = flag
                    .trim_start_matches("audit-webhook-batch-")
                    .replace('-', " ");
                r.error(
                    flag,
                    format!(
                        "--{flag}: invalid audit batch webhook {what} 0, must be a positive number"
                    ),
                );
            }
        }

        r.parsed(&[
            "bind-address",
            "advertise-address",
            "service-cluster-ip-range",
            "service-node-port-range",
        ]);
        if let Some(port) = f.secure_port
            && !(1..=65535).contains(&port)
        {
            r.error(
                "secure-port",
                format!(
                    "--secure-port {port} must be between 1 and 65535, inclusive. It cannot be turned off with 0"
                ),
            );
        }
        // An inherited socket that is unusable, or whose port --secure-port contradicts.
        r.parsed(&["secure-port"]);
        r.parsed(&["tls-min-version", "tls-cipher-suites"]);
        if f.tls_cert_file.is_some() != f.tls_private_key_file.is_some() {
            r.error(
                "tls-cert-file",
                "--tls-cert-file and --tls-private-key-file must be given together".into(),
            );
        }
        if f.proxy_client_cert_file.is_some() != f.proxy_client_key_file.is_some() {
            r.error(
                "proxy-client-cert-file",
                "--proxy-client-cert-file and --proxy-client-key-file must be given together"
                    .into(),
            );
        }
        if f.kubelet_client_certificate.is_some() != f.kubelet_client_key.is_some() {
            r.error(
                "kubelet-client-certificate",
                "--kubelet-client-certificate and --kubelet-client-key must be given together"
                    .into(),
            );
        }
        for t in &f.kubelet_preferred_address_types {
            if !crate::controlplane::kubelet::DEFAULT_ADDRESS_TYPES.contains(&t.as_str()) {
                r.error(
                    "kubelet-preferred-address-types",
                    format!("--kubelet-preferred-address-types contains invalid value {t:?}"),
                );
            }
        }
        for san in &f.cert_extra_sans {
            if san.trim().is_empty() || san.contains(char::is_whitespace) {
                r.error(
                    "cert-extra-sans",
                    format!("--cert-extra-sans: {san:?} is not a valid IP address or DNS name"),
                );
            }
        }

        let files: [(&'static str, Option<&Path>); 15] = [
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
            (
                "kubelet-client-certificate",
                f.kubelet_client_certificate.as_deref(),
            ),
            ("kubelet-client-key", f.kubelet_client_key.as_deref()),
            (
                "kubelet-certificate-authority",
                f.kubelet_certificate_authority.as_deref(),
            ),
        ];
        let sa_keys = f
            .service_account_key_file
            .iter()
            .map(|p| ("service-account-key-file", Some(p.as_path())));
        for (flag, path) in files.into_iter().chain(sa_keys) {
            if let Some(path) = path
                && let Err(e) = std::fs::File::open(path)
            {
                r.error(
                    flag,
                    format!("--{flag} {}: unreadable: {e}", path.display()),
                );
            }
        }

        if f.service_account_signing_key_file.is_some() && f.service_account_issuer.is_empty() {
            r.error(
                "service-account-issuer",
                "--service-account-issuer is a required flag when --service-account-signing-key-file is given".into(),
            );
        }
        for issuer in &f.service_account_issuer {
            if issuer.is_empty() {
                r.error(
                    "service-account-issuer",
                    "--service-account-issuer cannot be an empty string".into(),
                );
            } else if issuer.contains(':')
                && !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            {
                r.error(
                    "service-account-issuer",
                    format!(
                        "--service-account-issuer {issuer:?} contained a ':' but was not a valid URL"
                    ),
                );
            }
        }
        let max_exp = f.service_account_max_token_expiration;
        if !max_exp.is_zero() && !(MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&max_exp) {
            r.error(
                "service-account-max-token-expiration",
                format!(
                    "--service-account-max-token-expiration {} must be between 1h and 2^32 seconds",
                    duration::format(max_exp)
                ),
            );
        }

        r.parsed(&[
            "authorization-mode",
            "enable-admission-plugins",
            "disable-admission-plugins",
            "runtime-config",
        ]);

        r.parsed(&[
            "max-requests-inflight",
            "max-mutating-requests-inflight",
            "min-request-timeout",
            "default-watch-cache-size",
        ]);
        if f.enable_priority_and_fairness
            && f.max_requests_inflight >= 0
            && f.max_mutating_requests_inflight >= 0
            && f.max_requests_inflight + f.max_mutating_requests_inflight <= 0
        {
            // Upstream's words (ApplyTo of the feature options): APF shares this sum.
            r.error(
                "max-requests-inflight",
                format!(
                    "invalid configuration: MaxRequestsInFlight={} and MaxMutatingRequestsInFlight={}; they must add up to something positive",
                    f.max_requests_inflight, f.max_mutating_requests_inflight
                ),
            );
        }
        if f.storage_compaction_keep < 1 {
            r.error(
                "storage-compaction-keep",
                "--storage-compaction-keep must be at least 1".into(),
            );
        }
        if f.request_timeout.is_zero() {
            r.error(
                "request-timeout",
                "--request-timeout must be greater than 0".into(),
            );
        }

        r.parsed(&["storage-backend"]);
        match &self.storage.backend {
            StorageBackend::Etcd { servers, .. } => {
                if servers.is_empty() {
                    r.error(
                        "etcd-servers",
                        "--etcd-servers must be specified with --storage-backend=etcd".into(),
                    );
                }
                for s in servers {
                    if !(s.starts_with("http://") || s.starts_with("https://")) {
                        r.error(
                            "etcd-servers",
                            format!(
                                "--etcd-servers {s:?} must be a URL of the form http(s)://host:port"
                            ),
                        );
                    }
                }
                if !cfg!(feature = "etcd") {
                    r.error(
                        "storage-backend",
                        "--storage-backend=etcd: this kubeboot was built without the `etcd` cargo feature".into(),
                    );
                }
            }
            StorageBackend::Embedded { .. } if !f.etcd_servers.is_empty() => r.error(
                "etcd-servers",
                "--etcd-servers cannot be combined with --storage-backend=embedded".into(),
            ),
            StorageBackend::Embedded { .. } => {}
        }
        if self.storage.media_type == StorageMediaType::Protobuf
            && matches!(self.storage.backend, StorageBackend::Embedded { .. })
        {
            r.error(
                "storage-media-type",
                "--storage-media-type=application/vnd.kubernetes.protobuf needs the etcd backend: the embedded store keeps its own format".into(),
            );
        }
        if !self.storage.prefix.starts_with('/') {
            r.error(
                "etcd-prefix",
                format!("--etcd-prefix {:?} must start with '/'", f.etcd_prefix),
            );
        }
        if f.data_dir.as_os_str().is_empty() {
            r.error("data-dir", "--data-dir must not be empty".into());
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

        r.finish()?;
        Ok(ValidOptions(self))
    }
}

impl CompletedOptions {
    /// Flags that are accepted but whose behaviour kubeboot does not have yet, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let f = &self.flags;
        let mut out = Vec::new();
        let backends = [
            ("audit-log-path", f.audit_log_path.is_some()),
            (
                "audit-webhook-config-file",
                f.audit_webhook_config_file.is_some(),
            ),
        ];
        if f.audit_policy_file.is_none() {
            for (flag, _) in backends.iter().filter(|(_, given)| *given) {
                out.push(format!(
                    "--{flag}: no --audit-policy-file, so no request is audited"
                ));
            }
        } else if !backends.iter().any(|(_, given)| *given) {
            out.push(
                "--audit-policy-file: no --audit-log-path or --audit-webhook-config-file, so audit events go nowhere"
                    .into(),
            );
        }
        let unimplemented: Vec<&str> = f
            .enable_admission_plugins
            .iter()
            .map(String::as_str)
            .filter(|p| !crate::admission::plugins::IMPLEMENTED.contains(p))
            .collect();
        if !unimplemented.is_empty() {
            out.push(format!(
                "--enable-admission-plugins: kubeboot does not implement {} yet; they do not run",
                unimplemented.join(", ")
            ));
        }
        if f.enable_aggregator_routing == Some(false) {
            out.push("--enable-aggregator-routing=false: kubeboot always routes to endpoint IPs, as it runs without kube-proxy".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ServerRunOptions;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: ServerRunOptions,
    }

    fn validate(args: &[&str]) -> Result<ValidOptions, FlagErrors> {
        let mut argv = vec!["kubeboot"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).opts.complete(Mode::Init).validate()
    }

    #[test]
    fn the_defaults_are_valid() {
        let valid = validate(&[]).unwrap();
        assert_eq!(valid.secure_port, 6443);
    }

    #[test]
    fn errors_found_while_parsing_are_reported_at_their_flags_turn() {
        let errs = validate(&[
            "--storage-backend=sqlite",
            "--max-requests-inflight=-1",
            "--request-timeout=0s",
            "--runtime-config=x=maybe",
            "--authorization-mode=Magic",
            "--tls-min-version=VersionTLS11",
            "--secure-port=0",
            "--bind-address=nope",
        ])
        .unwrap_err();
        let flags: Vec<&str> = errs.0.iter().map(|e| e.flag).collect();
        assert_eq!(
            flags,
            [
                "bind-address",
                "secure-port",
                "tls-min-version",
                "authorization-mode",
                "runtime-config",
                "max-requests-inflight",
                "request-timeout",
                "storage-backend",
            ]
        );
    }

    #[test]
    fn an_unknown_audit_webhook_mode_is_an_error_naming_the_flag_and_the_modes() {
        let errs = validate(&["--audit-webhook-mode=sync"]).unwrap_err();
        assert_eq!(
            errs.0
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>(),
            [
                r#"--audit-webhook-mode: invalid audit webhook mode sync, allowed modes are "batch,blocking,blocking-strict""#
            ]
        );
        assert_eq!(errs.0[0].flag, "audit-webhook-mode");
    }
}
