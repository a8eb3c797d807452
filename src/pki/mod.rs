//! The cluster PKI in kubeadm's layout: CAs, serving and client certificates, SA keys, admin kubeconfig.

pub mod certs;
pub mod insecure;
pub mod kubeconfig;
pub mod publish;

use crate::options::ValidOptions;
use certs::{LeafSpec, Pair};
use rcgen::ExtendedKeyUsagePurpose;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The user name of the admin kubeconfig's client certificate.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The group that bypasses authorization, as upstream.
pub const MASTERS_GROUP: &str = "system:masters";

/// Errors of the PKI module.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file `serve` needs does not exist.
    #[error("missing {}: run `kubeboot init` first (with the same --data-dir / --cert-dir)", path.display())]
    Missing {
        /// The missing file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM or certificate could not be parsed.
    #[error("{}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rcgen refused to generate a certificate or key.
    #[error("generating a certificate: {0}")]
    Generate(#[source] rcgen::Error),
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// `Result` with [`PkiError`].
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

/// What `ensure` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A valid file was already there.
    Kept,
    /// The file was written; the note says why when it replaced one.
    Wrote(Option<String>),
}

/// One row of the `init` table.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file.
    pub path: PathBuf,
    /// What happened.
    pub action: Action,
}

/// Everything `ensure` did, printed as a table by `init`.
#[derive(Debug, Default)]
pub struct Report(pub Vec<Entry>);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .0
            .iter()
            .map(|e| e.path.display().to_string().len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(f, "{:<width$}  ACTION", "FILE")?;
        for e in &self.0 {
            let action = match &e.action {
                Action::Kept => "kept".to_string(),
                Action::Wrote(None) => "wrote".to_string(),
                Action::Wrote(Some(why)) => format!("wrote (replaced: {why})"),
            };
            writeln!(f, "{:<width$}  {action}", e.path.display())?;
        }
        Ok(())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `path` atomically (temp file, fsync, rename) with the given mode.
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    // An existing temp file keeps its old mode; set it explicitly so keys are never world-readable.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(&tmp))?;
    file.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<Option<Pair>> {
    match (read_if_exists(cert)?, read_if_exists(key)?) {
        (Some(cert_pem), Some(key_pem)) => Ok(Some(Pair { cert_pem, key_pem })),
        _ => Ok(None),
    }
}

fn write_pair(pair: &Pair, cert: &Path, key: &Path) -> Result<()> {
    write_atomic(key, &pair.key_pem, 0o600)?;
    write_atomic(cert, &pair.cert_pem, 0o644)
}

/// The host name, lower-cased as kubeadm uses it for the node name.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_lowercase();
    (!name.is_empty()).then_some(name)
}

/// The serving certificate kubeadm would generate for these options.
pub fn apiserver_spec(o: &ValidOptions) -> LeafSpec {
    let mut dns: Vec<String> = Vec::new();
    if let Some(h) = hostname() {
        dns.push(h);
    }
    for d in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ] {
        dns.push(d.to_string());
    }
    let mut ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        o.advertise_address,
        o.api_server_service_ip,
    ];
    if !o.bind_address.is_unspecified() {
        ips.push(o.bind_address);
    }
    if o.external_host.parse::<IpAddr>().is_err() {
        dns.push(o.external_host.clone());
    }
    for san in &o.cert_extra_sans {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(san.clone()),
        }
    }
    dns.dedup();
    let mut unique_ips = Vec::new();
    for ip in ips {
        if !unique_ips.contains(&ip) {
            unique_ips.push(ip);
        }
    }
    LeafSpec {
        common_name: "kube-apiserver".into(),
        organizations: vec![],
        dns_names: dns,
        ips: unique_ips,
        usage: ExtendedKeyUsagePurpose::ServerAuth,
    }
}

fn client_spec(common_name: &str, organizations: &[&str]) -> LeafSpec {
    LeafSpec {
        common_name: common_name.into(),
        organizations: organizations.iter().map(|s| s.to_string()).collect(),
        dns_names: vec![],
        ips: vec![],
        usage: ExtendedKeyUsagePurpose::ClientAuth,
    }
}

/// Builds `ensure`'s report while deciding, file by file, whether to keep or regenerate.
struct Ensurer {
    force: bool,
    report: Report,
}

impl Ensurer {
    /// Keeps a valid CA or writes a new one; returns the CA and whether it is new.
    fn ca(&mut self, cert: &Path, key: &Path, common_name: &str) -> Result<(Pair, bool)> {
        let existing = read_pair(cert, key)?;
        let mut why = None;
        if let (false, Some(pair)) = (self.force, existing) {
            match certs::unusable_reason(&pair, cert, None, None)? {
                None => {
                    self.kept(cert);
                    return Ok((pair, false));
                }
                Some(reason) => why = Some(reason),
            }
        }
        let pair = certs::new_ca(common_name)?;
        write_pair(&pair, cert, key)?;
        self.wrote(cert, why);
        Ok((pair, true))
    }

    /// Keeps a valid leaf signed by `ca` or writes a new one.
    fn leaf(
        &mut self,
        cert: &Path,
        key: &Path,
        spec: &LeafSpec,
        ca: &Pair,
        ca_is_new: bool,
    ) -> Result<Pair> {
        let mut why = None;
        if !self.force
            && !ca_is_new
            && let Some(pair) = read_pair(cert, key)?
        {
            match certs::unusable_reason(&pair, cert, Some(ca), Some(spec))? {
                None => {
                    self.kept(cert);
                    return Ok(pair);
                }
                Some(reason) => why = Some(reason),
            }
        }
        let pair = certs::new_leaf(spec, ca)?;
        write_pair(&pair, cert, key)?;
        self.wrote(cert, why);
        Ok(pair)
    }

    fn service_account_keys(&mut self, key: &Path, public: &Path) -> Result<()> {
        let mut why = None;
        if !self.force
            && let (Some(private_pem), Some(public_pem)) =
                (read_if_exists(key)?, read_if_exists(public)?)
        {
            match certs::service_account_key_reason(&private_pem, &public_pem) {
                None => {
                    self.kept(key);
                    return Ok(());
                }
                Some(reason) => why = Some(reason),
            }
        }
        let (private_pem, public_pem) = certs::new_service_account_key()?;
        write_atomic(key, &private_pem, 0o600)?;
        write_atomic(public, &public_pem, 0o644)?;
        self.wrote(key, why);
        Ok(())
    }

    fn kubeconfig(&mut self, path: &Path, server: &str, ca: &Pair, ca_is_new: bool) -> Result<()> {
        let spec = client_spec(ADMIN_USER, &[MASTERS_GROUP]);
        let mut why = None;
        if !self.force
            && !ca_is_new
            && let Some(text) = read_if_exists(path)?
        {
            why = Some(match kubeconfig::from_yaml(&text) {
                None => "not a kubeconfig kubeboot wrote".to_string(),
                Some(k) if kubeconfig::server(&k) != Some(server) => {
                    format!("server is not {server}")
                }
                Some(k) => match kubeconfig::credentials(&k) {
                    Some((ca_pem, cert_pem, key_pem)) if ca_pem == ca.cert_pem => {
                        match certs::unusable_reason(
                            &Pair { cert_pem, key_pem },
                            path,
                            Some(ca),
                            Some(&spec),
                        )? {
                            None => {
                                self.kept(path);
                                return Ok(());
                            }
                            Some(reason) => reason,
                        }
                    }
                    _ => "does not trust the current CA".to_string(),
                },
            });
        }
        let client = certs::new_leaf(&spec, ca)?;
        let config = kubeconfig::new(
            server,
            &ca.cert_pem,
            ADMIN_USER,
            &client.cert_pem,
            &client.key_pem,
        );
        write_atomic(path, &kubeconfig::to_yaml(&config), 0o600)?;
        self.wrote(path, why);
        Ok(())
    }

    fn kept(&mut self, path: &Path) {
        self.report.0.push(Entry {
            path: path.to_path_buf(),
            action: Action::Kept,
        });
    }

    fn wrote(&mut self, path: &Path, why: Option<String>) {
        self.report.0.push(Entry {
            path: path.to_path_buf(),
            action: Action::Wrote(why),
        });
    }
}

/// Generates whatever is missing or unusable in the PKI and kubeconfig; `force` regenerates all.
///
/// Idempotent: a second run keeps every valid file. A new CA invalidates what it signed, so
/// those files are regenerated with it.
pub fn ensure(o: &ValidOptions, force: bool) -> Result<Report> {
    let p = &o.pki;
    let mut e = Ensurer {
        force,
        report: Report::default(),
    };
    let (ca, ca_is_new) = e.ca(&p.ca_crt, &p.ca_key, "kubernetes")?;
    if o.generate_serving_cert {
        e.leaf(
            &p.apiserver_crt,
            &p.apiserver_key,
            &apiserver_spec(o),
            &ca,
            ca_is_new,
        )?;
    }
    // kubeadm's certificate for kube-apiserver → kubelet calls (logs, exec, port-forward).
    e.leaf(
        &p.apiserver_kubelet_client_crt,
        &p.apiserver_kubelet_client_key,
        &client_spec("kube-apiserver-kubelet-client", &[]),
        &ca,
        ca_is_new,
    )?;
    let (fp_ca, fp_ca_is_new) = e.ca(
        &p.front_proxy_ca_crt,
        &p.front_proxy_ca_key,
        "front-proxy-ca",
    )?;
    e.leaf(
        &p.front_proxy_client_crt,
        &p.front_proxy_client_key,
        &client_spec("front-proxy-client", &[]),
        &fp_ca,
        fp_ca_is_new,
    )?;
    e.service_account_keys(&p.sa_key, &p.sa_pub)?;
    e.kubeconfig(&p.admin_kubeconfig, &o.server_url(), &ca, ca_is_new)?;
    Ok(e.report)
}

/// Fails with the first file `serve` needs that does not exist.
pub fn require(o: &ValidOptions) -> Result<()> {
    let mut needed: Vec<&Path> = vec![
        &o.tls_cert_file,
        &o.tls_private_key_file,
        &o.authentication.client_ca_file,
        &o.proxy_client_cert_file,
        &o.proxy_client_key_file,
        &o.service_account_signing_key_file,
    ];
    if let Some(rh) = &o.authentication.requestheader {
        needed.push(&rh.client_ca_file);
    }
    needed.extend(o.service_account_key_files.iter().map(PathBuf::as_path));
    match needed.into_iter().find(|p| !p.exists()) {
        Some(path) => Err(PkiError::Missing {
            path: path.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// One row of `kubeboot certs check-expiration`.
#[derive(Debug)]
pub struct Expiry {
    /// File name (the kubeconfig's client certificate is listed under the kubeconfig's name).
    pub name: String,
    /// Expiry instant.
    pub not_after: time::OffsetDateTime,
}

/// Expiry of every certificate in the PKI and of the admin kubeconfig's client certificate.
pub fn expirations(o: &ValidOptions) -> Result<Vec<Expiry>> {
    let p = &o.pki;
    let mut out = Vec::new();
    let mut push = |name: String, pem: &str, path: &Path| -> Result<()> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let der = certs::first_cert_der(pem, path)?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        out.push(Expiry {
            name,
            not_after: cert.validity().not_after.to_datetime(),
        });
        Ok(())
    };
    if let Some(text) = read_if_exists(&p.admin_kubeconfig)?
        && let Some((_, cert, _)) =
            kubeconfig::from_yaml(&text).and_then(|k| kubeconfig::credentials(&k))
    {
        push(file_name(&p.admin_kubeconfig), &cert, &p.admin_kubeconfig)?;
    }
    for path in [
        &p.apiserver_crt,
        &p.apiserver_kubelet_client_crt,
        &p.front_proxy_client_crt,
        &p.ca_crt,
        &p.front_proxy_ca_crt,
    ] {
        match read_if_exists(path)? {
            Some(pem) => push(file_name(path), &pem, path)?,
            None => return Err(PkiError::Missing { path: path.clone() }),
        }
    }
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
