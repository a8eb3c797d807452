//! `complete()`: fills the defaults upstream derives (addresses, service IP, PKI paths, backend).

use super::ServerRunOptions;
use super::validation::FlagError;
use crate::net::indexed_ip;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the process was started; `up` is the local single-machine mode with loopback defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `kubeboot init`: generate the PKI only.
    Init,
    /// `kubeboot serve` or `kubeboot kube-apiserver`: serve with upstream defaults.
    Serve,
    /// `kubeboot up`: init then serve, bound to loopback unless told otherwise.
    Up,
}

/// kubeadm's file layout under the certificate directory, plus the admin kubeconfig.
#[derive(Debug, Clone)]
pub struct PkiPaths {
    /// Directory holding every file below but the kubeconfig.
    pub dir: PathBuf,
    /// Cluster CA certificate.
    pub ca_crt: PathBuf,
    /// Cluster CA key.
    pub ca_key: PathBuf,
    /// API server serving certificate.
    pub apiserver_crt: PathBuf,
    /// API server serving key.
    pub apiserver_key: PathBuf,
    /// Front-proxy (request header) CA certificate.
    pub front_proxy_ca_crt: PathBuf,
    /// Front-proxy CA key.
    pub front_proxy_ca_key: PathBuf,
    /// Front-proxy client certificate the aggregator presents to extension servers.
    pub front_proxy_client_crt: PathBuf,
    /// Front-proxy client key.
    pub front_proxy_client_key: PathBuf,
    /// Service-account token signing key (PKCS#8 PEM).
    pub sa_key: PathBuf,
    /// Service-account token verification key (SPKI PEM).
    pub sa_pub: PathBuf,
    /// Admin kubeconfig (client certificate of kubernetes-admin, group system:masters).
    pub admin_kubeconfig: PathBuf,
}

impl PkiPaths {
    fn new(dir: &Path, data_dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ca_crt: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            apiserver_crt: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            front_proxy_ca_crt: dir.join("front-proxy-ca.crt"),
            front_proxy_ca_key: dir.join("front-proxy-ca.key"),
            front_proxy_client_crt: dir.join("front-proxy-client.crt"),
            front_proxy_client_key: dir.join("front-proxy-client.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
            admin_kubeconfig: data_dir.join("admin.kubeconfig"),
        }
    }
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

/// The NodePort range, as `base` and `size` like upstream's `utilnet.PortRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePortRange {
    /// First port of the range.
    pub base: u16,
    /// Number of ports in the range.
    pub size: u32,
}

/// Which storage backend serves the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// redb file under the data directory.
    Embedded {
        /// Path of the database file.
        path: PathBuf,
    },
    /// etcd v3 cluster.
    Etcd {
        /// Endpoints, scheme://host:port.
        servers: Vec<String>,
        /// CA bundle for etcd's serving certificate.
        cafile: Option<PathBuf>,
        /// Client certificate presented to etcd.
        certfile: Option<PathBuf>,
        /// Key of the client certificate.
        keyfile: Option<PathBuf>,
    },
}

/// Storage settings shared by both backends.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The backend and its connection settings.
    pub backend: StorageBackend,
    /// Key prefix of every resource (`--etcd-prefix`), without a trailing slash.
    pub prefix: String,
    /// Recent events each resource's watch cache keeps (`--default-watch-cache-size`; 0: no cache).
    pub watch_cache_size: usize,
}

/// Options after `complete()`: every default filled; the only type the server can be built from.
#[derive(Debug, Clone)]
pub struct CompletedOptions {
    /// The flags as given, for validation and for messages that name them.
    pub flags: ServerRunOptions,
    /// How the process was started.
    pub mode: Mode,
    /// Address the listener binds.
    pub bind_address: IpAddr,
    /// Address advertised to the cluster (the `kubernetes` Service endpoint).
    pub advertise_address: IpAddr,
    /// Port of the HTTPS listener.
    pub secure_port: u16,
    /// Host name for externalized URLs.
    pub external_host: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// PKI file layout.
    pub pki: PkiPaths,
    /// Serving certificate, explicit or generated.
    pub tls_cert_file: PathBuf,
    /// Serving key, explicit or generated.
    pub tls_private_key_file: PathBuf,
    /// Whether the serving certificate is generated by kubeboot (no --tls-cert-file).
    pub generate_serving_cert: bool,
    /// CA for client certificates, explicit or the generated cluster CA.
    pub client_ca_file: PathBuf,
    /// Request-header authentication, when configured or generated.
    pub requestheader: Option<RequestHeaderConfig>,
    /// Front-proxy client certificate the aggregator presents.
    pub proxy_client_cert_file: PathBuf,
    /// Front-proxy client key.
    pub proxy_client_key_file: PathBuf,
    /// Service cluster IP ranges: primary first, at most one secondary of the other family.
    pub service_cluster_ip_ranges: Vec<IpNet>,
    /// First address of the primary range: the `kubernetes` Service's cluster IP.
    pub api_server_service_ip: IpAddr,
    /// NodePort range.
    pub node_port_range: NodePortRange,
    /// Service-account issuers; the first signs.
    pub service_account_issuers: Vec<String>,
    /// Keys that verify service-account tokens.
    pub service_account_key_files: Vec<PathBuf>,
    /// Key that signs service-account tokens.
    pub service_account_signing_key_file: PathBuf,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Delay between the first signal and closing the listener.
    pub shutdown_delay: Duration,
    /// Non-long-running request timeout.
    pub request_timeout: Duration,
    /// Extra subject alternative names for a generated serving certificate.
    pub cert_extra_sans: Vec<String>,
    /// Admission plugins in effect, in upstream's order.
    pub admission_plugins: Vec<String>,
    /// Errors met while completing, reported by `validate()` with the rest.
    pub(super) completion_errors: Vec<FlagError>,
}

/// Admission plugins upstream enables by default (kube-apiserver 1.33).
pub const DEFAULT_ADMISSION_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "TaintNodesByCondition",
    "PodSecurity",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// The issuer kubeadm configures; used when none is given so SA tokens work out of the box.
pub const DEFAULT_SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

impl ServerRunOptions {
    /// Fills every default as upstream's `Complete()` does; never fails, errors wait for `validate()`.
    pub fn complete(self, mode: Mode) -> CompletedOptions {
        let mut errors = Vec::new();
        let default_bind = if mode == Mode::Up {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let bind_address = match &self.bind_address {
            None => default_bind,
            Some(s) => parse_ip("bind-address", s, &mut errors).unwrap_or(default_bind),
        };
        let advertise_address = match &self.advertise_address {
            Some(s) => parse_ip("advertise-address", s, &mut errors)
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            None if !bind_address.is_unspecified() => bind_address,
            None => first_host_address().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let external_host = self
            .external_hostname
            .clone()
            .unwrap_or_else(|| advertise_address.to_string());

        let data_dir = self.data_dir.clone();
        let cert_dir = self
            .cert_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("pki"));
        let pki = PkiPaths::new(&cert_dir, &data_dir);

        let generate_serving_cert = self.tls_cert_file.is_none();
        let tls_cert_file = self
            .tls_cert_file
            .clone()
            .unwrap_or_else(|| pki.apiserver_crt.clone());
        let tls_private_key_file = self
            .tls_private_key_file
            .clone()
            .unwrap_or_else(|| pki.apiserver_key.clone());
        let client_ca_file = self
            .client_ca_file
            .clone()
            .unwrap_or_else(|| pki.ca_crt.clone());

        let requestheader = Some(RequestHeaderConfig {
            client_ca_file: self
                .requestheader_client_ca_file
                .clone()
                .unwrap_or_else(|| pki.front_proxy_ca_crt.clone()),
            allowed_names: or_default(&self.requestheader_allowed_names, &["front-proxy-client"]),
            username_headers: or_default(&self.requestheader_username_headers, &["X-Remote-User"]),
            uid_headers: self.requestheader_uid_headers.clone(),
            group_headers: or_default(&self.requestheader_group_headers, &["X-Remote-Group"]),
            extra_headers_prefix: or_default(
                &self.requestheader_extra_headers_prefix,
                &["X-Remote-Extra-"],
            ),
        });

        let service_cluster_ip_ranges =
            parse_service_ranges(&self.service_cluster_ip_range, &mut errors);
        let api_server_service_ip = service_cluster_ip_ranges
            .first()
            .and_then(|net| indexed_ip(net, 1))
            .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let node_port_range = parse_port_range(&self.service_node_port_range, &mut errors)
            .unwrap_or(NodePortRange {
                base: 30000,
                size: 2768,
            });

        let service_account_issuers = if self.service_account_issuer.is_empty()
            && self.service_account_signing_key_file.is_none()
        {
            vec![DEFAULT_SERVICE_ACCOUNT_ISSUER.to_string()]
        } else {
            self.service_account_issuer.clone()
        };
        let service_account_signing_key_file = self
            .service_account_signing_key_file
            .clone()
            .unwrap_or_else(|| pki.sa_key.clone());
        let service_account_key_files = if self.service_account_key_file.is_empty() {
            vec![pki.sa_pub.clone()]
        } else {
            self.service_account_key_file.clone()
        };

        let storage = StorageConfig {
            backend: self.storage_backend_choice(&data_dir),
            prefix: self.etcd_prefix.trim_end_matches('/').to_string(),
            watch_cache_size: self.default_watch_cache_size.max(0) as usize,
        };

        let mut admission_plugins: Vec<String> = DEFAULT_ADMISSION_PLUGINS
            .iter()
            .map(|s| s.to_string())
            .chain(self.enable_admission_plugins.iter().cloned())
            .filter(|p| !self.disable_admission_plugins.contains(p))
            .collect();
        admission_plugins.dedup();

        CompletedOptions {
            mode,
            bind_address,
            advertise_address,
            secure_port: u16::try_from(self.secure_port).unwrap_or(0),
            external_host,
            data_dir,
            proxy_client_cert_file: self
                .proxy_client_cert_file
                .clone()
                .unwrap_or_else(|| pki.front_proxy_client_crt.clone()),
            proxy_client_key_file: self
                .proxy_client_key_file
                .clone()
                .unwrap_or_else(|| pki.front_proxy_client_key.clone()),
            pki,
            tls_cert_file,
            tls_private_key_file,
            generate_serving_cert,
            client_ca_file,
            requestheader,
            service_cluster_ip_ranges,
            api_server_service_ip,
            node_port_range,
            service_account_issuers,
            service_account_key_files,
            service_account_signing_key_file,
            storage,
            shutdown_delay: self.shutdown_delay_duration,
            request_timeout: self.request_timeout,
            cert_extra_sans: self.cert_extra_sans.clone(),
            admission_plugins,
            completion_errors: errors,
            flags: self,
        }
    }

    fn storage_backend_choice(&self, data_dir: &Path) -> StorageBackend {
        let etcd = StorageBackend::Etcd {
            servers: self.etcd_servers.clone(),
            cafile: self.etcd_cafile.clone(),
            certfile: self.etcd_certfile.clone(),
            keyfile: self.etcd_keyfile.clone(),
        };
        match self.storage_backend.as_deref() {
            Some("etcd" | "etcd3") => etcd,
            None if !self.etcd_servers.is_empty() => etcd,
            _ => StorageBackend::Embedded {
                path: data_dir.join("kubeboot.redb"),
            },
        }
    }
}

impl CompletedOptions {
    /// The URL clients use to reach this server, as written into the admin kubeconfig.
    pub fn server_url(&self) -> String {
        let host = if self.bind_address.is_unspecified() {
            self.advertise_address
        } else {
            self.bind_address
        };
        match host {
            IpAddr::V6(v6) => format!("https://[{v6}]:{}", self.secure_port),
            IpAddr::V4(v4) => format!("https://{v4}:{}", self.secure_port),
        }
    }
}

fn or_default(given: &[String], default: &[&str]) -> Vec<String> {
    if given.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        given.to_vec()
    }
}

fn parse_ip(flag: &'static str, s: &str, errors: &mut Vec<FlagError>) -> Option<IpAddr> {
    match s.trim().parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errors.push(FlagError::new(
                flag,
                format!("invalid argument {s:?} for \"--{flag}\" flag: failed to parse IP: {s:?}"),
            ));
            None
        }
    }
}

fn parse_service_ranges(s: &str, errors: &mut Vec<FlagError>) -> Vec<IpNet> {
    let flag = "service-cluster-ip-range";
    let mut nets = Vec::new();
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() > 2 {
        errors.push(FlagError::new(
            flag,
            "--service-cluster-ip-range can have a maximum of two CIDRs (dual-stack)".to_string(),
        ));
        return nets;
    }
    for part in parts {
        match part.parse::<IpNet>() {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => {
                errors.push(FlagError::new(
                    flag,
                    format!(
                        "service-cluster-ip-range[{}] {part:?} is not a valid CIDR",
                        nets.len()
                    ),
                ));
                return Vec::new();
            }
        }
    }
    if nets.len() == 2 && nets[0].addr().is_ipv4() == nets[1].addr().is_ipv4() {
        errors.push(FlagError::new(
            flag,
            "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family"
                .to_string(),
        ));
    }
    for net in &nets {
        // Upstream caps the range so the allocator bitmap stays small: /12 for IPv4, /108 for IPv6.
        let host_bits = net.max_prefix_len() - net.prefix_len();
        if host_bits > 20 {
            errors.push(FlagError::new(
                flag,
                format!("specified --service-cluster-ip-range {net} is too large; for 32-bit addresses, the mask must be >= 12, for 128-bit addresses, the mask must be >= 108"),
            ));
        } else if host_bits < 2 {
            errors.push(FlagError::new(
                flag,
                format!("specified --service-cluster-ip-range {net} is too small; it must hold at least the network address, the service IP and the broadcast address"),
            ));
        }
    }
    nets
}

fn parse_port_range(s: &str, errors: &mut Vec<FlagError>) -> Option<NodePortRange> {
    let flag = "service-node-port-range";
    let bad = |errors: &mut Vec<FlagError>| {
        errors.push(FlagError::new(
            flag,
            format!("invalid argument {s:?} for \"--service-node-port-range\" flag: unable to parse port range: {s}"),
        ));
        None
    };
    let (base, size) = if let Some((a, b)) = s.split_once('-') {
        match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            (Ok(a), Ok(b)) if b >= a => (a, b - a + 1),
            _ => return bad(errors),
        }
    } else if let Some((a, n)) = s.split_once('+') {
        match (a.trim().parse::<u32>(), n.trim().parse::<u32>()) {
            (Ok(a), Ok(n)) => (a, n + 1),
            _ => return bad(errors),
        }
    } else {
        match s.trim().parse::<u32>() {
            Ok(a) => (a, 1),
            Err(_) => return bad(errors),
        }
    };
    if base == 0 || base + size - 1 > 65535 {
        return bad(errors);
    }
    Some(NodePortRange {
        base: base as u16,
        size,
    })
}

/// The first global-unicast address of an up, non-loopback interface, as upstream's
/// `ChooseHostInterface` picks when no advertise address is given.
fn first_host_address() -> Option<IpAddr> {
    let mut found = None;
    // SAFETY: getifaddrs allocates a linked list that we only read and then free exactly once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return None;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
            let loopback = ifa.ifa_flags & (libc::IFF_LOOPBACK as u32) != 0;
            if up && !loopback && !ifa.ifa_addr.is_null() {
                let family = (*ifa.ifa_addr).sa_family as i32;
                if family == libc::AF_INET {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    if !ip.is_link_local() && !ip.is_unspecified() {
                        found = Some(IpAddr::V4(ip));
                        break;
                    }
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: ServerRunOptions,
    }

    fn complete(args: &[&str], mode: Mode) -> CompletedOptions {
        let mut argv = vec!["kubeboot"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).opts.complete(mode)
    }

    #[test]
    fn service_ip_is_the_first_address_of_the_primary_range() {
        let c = complete(
            &["--service-cluster-ip-range=10.96.0.0/12,fd00::/108"],
            Mode::Serve,
        );
        assert_eq!(
            c.api_server_service_ip,
            "10.96.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(c.service_cluster_ip_ranges.len(), 2);
        assert!(c.completion_errors.is_empty());
    }

    #[test]
    fn up_binds_loopback_and_advertises_it() {
        let c = complete(&[], Mode::Up);
        assert_eq!(c.bind_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.advertise_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.server_url(), "https://127.0.0.1:6443");
    }

    #[test]
    fn node_port_range_accepts_dash_and_plus_forms() {
        let c = complete(&["--service-node-port-range=30000+100"], Mode::Serve);
        assert_eq!(
            c.node_port_range,
            NodePortRange {
                base: 30000,
                size: 101
            }
        );
        let c = complete(&["--service-node-port-range=1000-1009"], Mode::Serve);
        assert_eq!(
            c.node_port_range,
            NodePortRange {
                base: 1000,
                size: 10
            }
        );
    }

    #[test]
    fn etcd_servers_select_the_etcd_backend() {
        let c = complete(&["--etcd-servers=http://127.0.0.1:2379"], Mode::Serve);
        assert!(matches!(c.storage.backend, StorageBackend::Etcd { .. }));
        let c = complete(&[], Mode::Serve);
        assert!(matches!(c.storage.backend, StorageBackend::Embedded { .. }));
    }
}
