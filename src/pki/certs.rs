//! Certificate and key generation with rcgen, and the checks that decide whether a file is kept.

use super::{PkiError, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use std::net::IpAddr;
use std::path::Path;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Validity of a CA, as kubeadm: ten years.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of a leaf certificate, as kubeadm: one year.
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// A certificate expiring sooner than this is regenerated rather than kept.
const RENEW_BEFORE: Duration = Duration::days(1);

/// A PEM certificate with its PEM private key.
pub struct Pair {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 private key, PEM.
    pub key_pem: String,
}

/// What a leaf certificate is for.
pub struct LeafSpec {
    /// Subject common name (the user name for client certificates).
    pub common_name: String,
    /// Subject organizations (groups for client certificates).
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ips: Vec<IpAddr>,
    /// Server or client authentication.
    pub usage: ExtendedKeyUsagePurpose,
}

fn base_params(
    common_name: &str,
    organizations: &[String],
    validity: Duration,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(PkiError::Generate)?;
    let mut dn = DistinguishedName::new();
    for org in organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    // Allow for clocks a little behind ours, as kubeadm does.
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + validity;
    let mut serial = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| PkiError::Random)?;
    serial[0] &= 0x7f; // positive INTEGER
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

/// A new self-signed CA with a fresh ECDSA P-256 key.
pub fn new_ca(common_name: &str) -> Result<Pair> {
    let key = KeyPair::generate().map_err(PkiError::Generate)?;
    let mut params = base_params(common_name, &[], CA_VALIDITY)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params.self_signed(&key).map_err(PkiError::Generate)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A new leaf certificate signed by the CA in `ca`.
pub fn new_leaf(spec: &LeafSpec, ca: &Pair) -> Result<Pair> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(PkiError::Generate)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(PkiError::Generate)?;
    let key = KeyPair::generate().map_err(PkiError::Generate)?;
    let mut params = base_params(&spec.common_name, &spec.organizations, LEAF_VALIDITY)?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![spec.usage.clone()];
    params.use_authority_key_identifier_extension = true;
    for dns in &spec.dns_names {
        params.subject_alt_names.push(SanType::DnsName(
            dns.clone().try_into().map_err(PkiError::Generate)?,
        ));
    }
    for ip in &spec.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(PkiError::Generate)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A new service-account signing key: ECDSA P-256, private PKCS#8 PEM and public SPKI PEM.
pub fn new_service_account_key() -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(PkiError::Generate)?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

/// The DER of the first certificate in a PEM file's text.
pub fn first_cert_der(pem_text: &str, path: &Path) -> Result<Vec<u8>> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| PkiError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(pem.contents)
}

/// Why an existing certificate cannot be kept, or `None` when it can.
pub fn unusable_reason(
    pair: &Pair,
    path: &Path,
    ca: Option<&Pair>,
    want: Option<&LeafSpec>,
) -> Result<Option<String>> {
    let der = first_cert_der(&pair.cert_pem, path)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let not_after = cert.validity().not_after.to_datetime();
    if not_after - OffsetDateTime::now_utc() < RENEW_BEFORE {
        return Ok(Some(format!("expires {not_after}")));
    }
    let key = match KeyPair::from_pem(&pair.key_pem) {
        Ok(key) => key,
        Err(e) => return Ok(Some(format!("private key unreadable: {e}"))),
    };
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Ok(Some("private key does not match the certificate".into()));
    }
    if let Some(ca) = ca {
        let ca_der = first_cert_der(&ca.cert_pem, path)?;
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).map_err(|e| PkiError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
            return Ok(Some("not signed by the current CA".into()));
        }
    }
    if let Some(want) = want {
        let subject = cert.subject();
        let cn = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok());
        if cn != Some(want.common_name.as_str()) {
            return Ok(Some(format!("common name is not {}", want.common_name)));
        }
        let orgs: Vec<&str> = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .collect();
        if want
            .organizations
            .iter()
            .any(|o| !orgs.contains(&o.as_str()))
        {
            return Ok(Some(format!(
                "organizations are not {}",
                want.organizations.join(",")
            )));
        }
        let (dns, ips) = subject_alt_names(&cert);
        if let Some(missing) = want.dns_names.iter().find(|d| !dns.contains(d)) {
            return Ok(Some(format!(
                "subject alternative name {missing} is missing"
            )));
        }
        if let Some(missing) = want.ips.iter().find(|ip| !ips.contains(ip)) {
            return Ok(Some(format!(
                "subject alternative name {missing} is missing"
            )));
        }
    }
    Ok(None)
}

/// DNS and IP subject alternative names of a certificate.
pub fn subject_alt_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => ips.push(IpAddr::from(
                        <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                    )),
                    16 => ips.push(IpAddr::from(
                        <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
                    )),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// Whether a service-account key pair on disk is usable: the private key parses and matches sa.pub.
pub fn service_account_key_reason(private_pem: &str, public_pem: &str) -> Option<String> {
    let key = match KeyPair::from_pem(private_pem) {
        Ok(key) => key,
        Err(e) => return Some(format!("private key unreadable: {e}")),
    };
    if key.public_key_pem().trim() != public_pem.trim() {
        return Some("public key does not match the private key".into());
    }
    None
}
