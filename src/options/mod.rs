//! Command-line options with kube-apiserver's flag names, in stages that cannot be skipped:
//! [`ServerRunOptions`] (the flags as given) → `complete()` → [`CompletedOptions`] (every flag
//! parsed once, every default filled) → `validate()` → [`ValidOptions`] (all errors at once, or
//! the only type the server chain, `init` and `certs` are built from). Each part of the server
//! gets its own configuration from here (`auth::AuthenticationConfig`, `storage::StorageConfig`,
//! …); nothing else reads a flag.

mod complete;
pub mod duration;
mod every_flag;
pub mod tls;
pub mod upstream_flags;
mod validation;

pub use complete::{CompletedOptions, Mode, NodePortRange, PkiPaths};
pub use tls::TlsParameters;
pub use validation::{FlagError, FlagErrors, ValidOptions};

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

/// Every flag of `kubeboot serve | init | up | kube-apiserver`, with upstream names and defaults.
///
/// Values that upstream checks in `Validate()` (IPs, CIDRs, ranges, files) are kept as strings
/// here so that `validate()` can report every bad flag at once instead of stopping at the first.
#[derive(Args, Debug, Clone)]
pub struct ServerRunOptions {
    /// IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long = "advertise-address", value_name = "IP")]
    pub advertise_address: Option<String>,

    /// IP address on which to listen for the --secure-port port [default: 0.0.0.0; 127.0.0.1 for `up`].
    #[arg(long = "bind-address", value_name = "IP")]
    pub bind_address: Option<String>,

    /// Port on which to serve HTTPS with authentication and authorization [default: 6443].
    // An Option, so that a port given explicitly can be checked against an inherited socket's.
    #[arg(long = "secure-port", allow_negative_numbers = true)]
    pub secure_port: Option<i64>,

    /// Directory where the TLS certs are located [default: <data-dir>/pki].
    #[arg(long = "cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,

    /// File containing the default x509 certificate for HTTPS (CA cert, if any, concatenated after it).
    #[arg(long = "tls-cert-file", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file", value_name = "FILE")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Minimum TLS version supported: VersionTLS12 or VersionTLS13.
    #[arg(long = "tls-min-version", value_name = "VERSION")]
    pub tls_min_version: Option<String>,

    /// Comma-separated list of cipher suites for the server (IANA names).
    #[arg(
        long = "tls-cipher-suites",
        value_delimiter = ',',
        value_name = "SUITES"
    )]
    pub tls_cipher_suites: Vec<String>,

    /// Extra Subject Alternative Names for the API server serving certificate (IPs or DNS names).
    #[arg(
        long = "cert-extra-sans",
        alias = "apiserver-cert-extra-sans",
        value_delimiter = ','
    )]
    pub cert_extra_sans: Vec<String>,

    /// Client certificates signed by this CA authenticate with the certificate's CommonName.
    #[arg(long = "client-ca-file", value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,

    /// CIDR range (or two, comma-separated, for dual-stack) from which to assign service cluster IPs.
    #[arg(long = "service-cluster-ip-range", default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: String,

    /// Port range reserved for services with NodePort visibility, e.g. '30000-32767' or '30000+2768'.
    #[arg(long = "service-node-port-range", default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Identifier of the service account token issuer (repeatable; the first one signs).
    #[arg(long = "service-account-issuer", value_name = "URL")]
    pub service_account_issuer: Vec<String>,

    /// PEM-encoded keys used to verify ServiceAccount tokens (repeatable).
    #[arg(long = "service-account-key-file", value_name = "FILE")]
    pub service_account_key_file: Vec<PathBuf>,

    /// Path to the file that contains the current private key of the service account token issuer.
    #[arg(long = "service-account-signing-key-file", value_name = "FILE")]
    pub service_account_signing_key_file: Option<PathBuf>,

    /// The maximum validity duration of a token created by the service account token issuer.
    #[arg(long = "service-account-max-token-expiration", value_parser = parse_duration, default_value = "0s")]
    pub service_account_max_token_expiration: Duration,

    /// If true, validate legacy ServiceAccount tokens against their Secret and ServiceAccount.
    #[arg(long = "service-account-lookup", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_lookup: bool,

    /// Turns on projected service account expiration extension during token generation.
    #[arg(long = "service-account-extend-token-expiration", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_extend_token_expiration: bool,

    /// Overrides the URI for the JSON Web Key Set in the discovery doc served at /.well-known/openid-configuration.
    #[arg(long = "service-account-jwks-uri", value_name = "URL")]
    pub service_account_jwks_uri: Option<String>,

    /// Enable to allow secrets of type 'bootstrap.kubernetes.io/token' in the 'kube-system' namespace to be used for TLS bootstrapping authentication.
    #[arg(long = "enable-bootstrap-token-auth", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_bootstrap_token_auth: bool,

    /// Identifiers of the API; service account tokens must name one (default: the first issuer).
    #[arg(
        long = "api-audiences",
        value_delimiter = ',',
        value_name = "AUDIENCES"
    )]
    pub api_audiences: Vec<String>,

    /// Root CA bundle to verify client certificates on incoming requests before trusting usernames in headers.
    #[arg(long = "requestheader-client-ca-file", value_name = "FILE")]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Client certificate common names allowed to provide usernames in headers (empty: any).
    #[arg(long = "requestheader-allowed-names", value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,

    /// Request header names to inspect for usernames (X-Remote-User is common).
    #[arg(long = "requestheader-username-headers", value_delimiter = ',')]
    pub requestheader_username_headers: Vec<String>,

    /// Request header names to inspect for UIDs.
    #[arg(long = "requestheader-uid-headers", value_delimiter = ',')]
    pub requestheader_uid_headers: Vec<String>,

    /// Request header names to inspect for groups (X-Remote-Group is suggested).
    #[arg(long = "requestheader-group-headers", value_delimiter = ',')]
    pub requestheader_group_headers: Vec<String>,

    /// Request header prefixes to inspect for extra user information (X-Remote-Extra- is suggested).
    #[arg(long = "requestheader-extra-headers-prefix", value_delimiter = ',')]
    pub requestheader_extra_headers_prefix: Vec<String>,

    /// How the kubernetes Service's endpoints are kept: lease (every live server) or none.
    #[arg(long = "endpoint-reconciler-type", default_value = "lease")]
    pub endpoint_reconciler_type: String,

    /// Path to a client cert file for TLS to kubelets.
    #[arg(long = "kubelet-client-certificate", value_name = "FILE")]
    pub kubelet_client_certificate: Option<PathBuf>,

    /// Path to a client key file for TLS to kubelets.
    #[arg(long = "kubelet-client-key", value_name = "FILE")]
    pub kubelet_client_key: Option<PathBuf>,

    /// Path to a cert file for the certificate authority of kubelets' serving certificates.
    #[arg(long = "kubelet-certificate-authority", value_name = "FILE")]
    pub kubelet_certificate_authority: Option<PathBuf>,

    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(
        long = "kubelet-preferred-address-types",
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    pub kubelet_preferred_address_types: Vec<String>,

    /// DEPRECATED: kubelet port, for nodes whose status publishes none.
    #[arg(long = "kubelet-port", default_value_t = 10250)]
    pub kubelet_port: u16,

    /// Client certificate used to prove the identity of the aggregator or kube-apiserver when it proxies.
    #[arg(long = "proxy-client-cert-file", value_name = "FILE")]
    pub proxy_client_cert_file: Option<PathBuf>,

    /// Private key for the client certificate used by the aggregator when it proxies.
    #[arg(long = "proxy-client-key-file", value_name = "FILE")]
    pub proxy_client_key_file: Option<PathBuf>,

    /// Turns on aggregator routing requests to endpoint IPs rather than cluster IP (kubeboot
    /// always routes to endpoints: it runs without kube-proxy, so cluster IPs lead nowhere;
    /// `=false` is warned of).
    #[arg(long = "enable-aggregator-routing", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_aggregator_routing: Option<bool>,

    /// Storage backend: embedded (default) or etcd (etcd3 is accepted as upstream's name).
    #[arg(long = "storage-backend", value_name = "BACKEND")]
    pub storage_backend: Option<String>,

    /// List of etcd servers to connect with (scheme://ip:port), comma separated.
    #[arg(long = "etcd-servers", value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    pub etcd_prefix: String,

    /// How objects are encoded in etcd: application/vnd.kubernetes.protobuf (the default, as
    /// kube-apiserver's) or application/json; the embedded store keeps its own format (JSON).
    #[arg(long = "storage-media-type", value_name = "MEDIA_TYPE")]
    pub storage_media_type: Option<String>,

    /// Recent events each resource's watch cache keeps; 0 disables the watch cache.
    #[arg(
        long = "default-watch-cache-size",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    pub default_watch_cache_size: i64,

    /// The interval of compaction requests; 0 disables compaction from the apiserver.
    #[arg(long = "etcd-compaction-interval", value_parser = parse_duration, default_value = "5m0s")]
    pub etcd_compaction_interval: Duration,

    /// kubeboot: revisions each compaction keeps behind the current one, so watches a little behind can resume.
    #[arg(
        long = "storage-compaction-keep",
        default_value_t = 10_000,
        allow_negative_numbers = true
    )]
    pub storage_compaction_keep: i64,

    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long = "etcd-cafile", value_name = "FILE")]
    pub etcd_cafile: Option<PathBuf>,

    /// SSL certification file used to secure etcd communication.
    #[arg(long = "etcd-certfile", value_name = "FILE")]
    pub etcd_certfile: Option<PathBuf>,

    /// SSL key file used to secure etcd communication.
    #[arg(long = "etcd-keyfile", value_name = "FILE")]
    pub etcd_keyfile: Option<PathBuf>,

    /// If true, replace the max-in-flight handler with an enhanced one that queues and
    /// dispatches with priority and fairness.
    #[arg(long = "enable-priority-and-fairness", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_priority_and_fairness: bool,

    /// The limit that the server gives to clients for the maximum number of streams in an
    /// HTTP/2 connection. Zero means to use golang's default.
    #[arg(long = "http2-max-streams-per-connection", default_value_t = 0)]
    pub http2_max_streams_per_connection: u32,

    /// To prevent HTTP/2 clients from getting stuck on a single apiserver, randomly close a
    /// connection (GOAWAY) with this probability (0 to 0.02); in-flight requests finish.
    #[arg(long = "goaway-chance", default_value_t = 0.0)]
    pub goaway_chance: f64,

    /// Amount of time to retain events.
    #[arg(long = "event-ttl", value_parser = parse_duration, default_value = "1h0m0s")]
    pub event_ttl: Duration,

    /// Time to delay the termination: /readyz reports failure while requests are still served.
    #[arg(long = "shutdown-delay-duration", value_parser = parse_duration, default_value = "0s")]
    pub shutdown_delay_duration: Duration,

    /// After the delay, answer new requests with 429 and Retry-After until in-flight requests drain.
    #[arg(long = "shutdown-send-retry-after", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub shutdown_send_retry_after: bool,

    /// The longest the server waits, shutting down, for its watches to drain; with it set, watches end once the server stops taking new requests (0: watches are not ended).
    #[arg(long = "shutdown-watch-termination-grace-period", value_parser = parse_duration, default_value = "0s")]
    pub shutdown_watch_termination_grace_period: Duration,

    /// The maximum number of non-mutating requests in flight at a given time (0: no limit).
    #[arg(
        long = "max-requests-inflight",
        default_value_t = 400,
        allow_negative_numbers = true
    )]
    pub max_requests_inflight: i64,

    /// The maximum number of mutating requests in flight at a given time (0: no limit).
    #[arg(
        long = "max-mutating-requests-inflight",
        default_value_t = 200,
        allow_negative_numbers = true
    )]
    pub max_mutating_requests_inflight: i64,

    /// The duration a handler must keep a request open before timing it out.
    #[arg(long = "request-timeout", value_parser = parse_duration, default_value = "1m0s")]
    pub request_timeout: Duration,

    /// Minimum number of seconds a handler must keep a long-running request (watch) open.
    #[arg(
        long = "min-request-timeout",
        default_value_t = 1800,
        allow_negative_numbers = true
    )]
    pub min_request_timeout: i64,

    /// Ordered list of plug-ins to do authorization on the secure port.
    #[arg(
        long = "authorization-mode",
        value_delimiter = ',',
        default_value = "Node,RBAC"
    )]
    pub authorization_mode: Vec<String>,

    /// File in kubeconfig format naming the webhook the Webhook authorization mode asks.
    #[arg(long = "authorization-webhook-config-file", value_name = "FILE")]
    pub authorization_webhook_config_file: Option<PathBuf>,

    /// The SubjectAccessReview version (v1 or v1beta1) sent to and expected from the webhook.
    #[arg(long = "authorization-webhook-version", default_value = "v1beta1")]
    pub authorization_webhook_version: String,

    /// How long to cache 'authorized' responses from the webhook authorizer.
    #[arg(long = "authorization-webhook-cache-authorized-ttl", value_parser = parse_duration, default_value = "5m0s")]
    pub authorization_webhook_cache_authorized_ttl: Duration,

    /// How long to cache 'unauthorized' responses from the webhook authorizer.
    #[arg(long = "authorization-webhook-cache-unauthorized-ttl", value_parser = parse_duration, default_value = "30s")]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,

    /// Enables anonymous requests to the secure port (user system:anonymous).
    #[arg(long = "anonymous-auth", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,

    /// File of static bearer tokens (CSV: token,user,uid,"group1,group2").
    #[arg(long = "token-auth-file", value_name = "FILE")]
    pub token_auth_file: Option<PathBuf>,

    /// Admission plugins to enable in addition to the default ones.
    #[arg(long = "enable-admission-plugins", value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,

    /// Admission plugins to disable although they are on by default.
    #[arg(long = "disable-admission-plugins", value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,

    /// File with the admission plugins' configuration (an AdmissionConfiguration).
    #[arg(long = "admission-control-config-file", value_name = "FILE")]
    pub admission_control_config_file: Option<PathBuf>,

    /// Comma-separated key=value pairs enabling or disabling group/versions (e.g. batch/v1=false, api/all=true).
    #[arg(long = "runtime-config", value_delimiter = ',')]
    pub runtime_config: Vec<String>,

    /// If set, all requests coming to the apiserver are logged to this file ('-' is stdout).
    #[arg(long = "audit-log-path", value_name = "PATH")]
    pub audit_log_path: Option<String>,

    /// The file with the configuration of encryption providers for storing resources (an apiserver.config.k8s.io/v1 EncryptionConfiguration).
    #[arg(long = "encryption-provider-config", value_name = "FILE")]
    pub encryption_provider_config: Option<PathBuf>,

    /// Path to the file that defines the audit policy configuration.
    #[arg(long = "audit-policy-file", value_name = "FILE")]
    pub audit_policy_file: Option<PathBuf>,

    /// The maximum size in megabytes of the audit log file before it gets rotated (0: never).
    #[arg(long = "audit-log-maxsize", default_value_t = 0)]
    pub audit_log_maxsize: u64,

    /// The maximum number of old audit log files to retain (0: all).
    #[arg(long = "audit-log-maxbackup", default_value_t = 0)]
    pub audit_log_maxbackup: usize,

    /// The maximum number of days to retain old audit log files based on the timestamp encoded
    /// in their filename (0: no limit).
    #[arg(long = "audit-log-maxage", default_value_t = 0)]
    pub audit_log_maxage: u64,

    /// If set, the rotated log files will be compressed using gzip.
    #[arg(long = "audit-log-compress", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub audit_log_compress: bool,

    /// Path to a kubeconfig formatted file that defines the audit webhook configuration.
    #[arg(long = "audit-webhook-config-file", value_name = "FILE")]
    pub audit_webhook_config_file: Option<PathBuf>,

    /// Strategy for sending audit events. Blocking indicates sending events should block server responses. Batch causes the backend to buffer and write events asynchronously. Known modes are batch,blocking,blocking-strict.
    #[arg(long = "audit-webhook-mode", default_value = "batch")]
    pub audit_webhook_mode: String,

    /// The size of the buffer to store events before batching and writing.
    #[arg(long = "audit-webhook-batch-buffer-size", default_value_t = 10000)]
    pub audit_webhook_batch_buffer_size: usize,

    /// The maximum size of a batch.
    #[arg(long = "audit-webhook-batch-max-size", default_value_t = 400)]
    pub audit_webhook_batch_max_size: usize,

    /// The amount of time to wait before force writing the batch that hadn't reached the max size.
    #[arg(long = "audit-webhook-batch-max-wait", value_parser = parse_duration, default_value = "30s")]
    pub audit_webhook_batch_max_wait: Duration,

    /// The amount of time to wait before retrying the first failed request.
    #[arg(long = "audit-webhook-initial-backoff", value_parser = parse_duration, default_value = "10s")]
    pub audit_webhook_initial_backoff: Duration,

    /// Enable profiling via web interface host:port/debug/pprof/ (the CPU profile).
    #[arg(long = "profiling", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub profiling: bool,

    /// Sets the log format: "text" or "json".
    #[arg(long = "logging-format", value_enum, default_value = "text")]
    pub logging_format: crate::logging::LogFormat,

    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0, value_name = "LEVEL")]
    pub verbosity: u8,

    /// kubeboot: directory holding the embedded store and, by default, the PKI and admin.kubeconfig.
    #[arg(long = "data-dir", default_value = ".kubeboot", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// kubeboot: run the built-in controllers (namespace deletion, default ServiceAccounts, kube-root-ca.crt, ClusterRole aggregation, ValidatingAdmissionPolicy type checking); turn off for clusters that run kube-controller-manager.
    #[arg(long = "builtin-controllers", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub builtin_controllers: bool,

    /// The hostname to use when generating externalized URLs for this master.
    #[arg(long = "external-hostname")]
    pub external_hostname: Option<String>,
}
