//! `--tls-min-version` and `--tls-cipher-suites` mapped onto what rustls (ring) implements.

use rustls::crypto::ring::ALL_CIPHER_SUITES;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// What the secure port offers, parsed once from `--tls-min-version` and `--tls-cipher-suites`.
#[derive(Debug, Clone)]
pub struct TlsParameters {
    /// Protocol versions, newest first.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// Cipher suites, TLS 1.3's always among them.
    pub cipher_suites: Vec<SupportedCipherSuite>,
}

/// The protocol versions a `--tls-min-version` value allows (TLS 1.2 when unset, as upstream).
pub fn protocol_versions(
    min: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    match min {
        None | Some("" | "VersionTLS12") => {
            Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12])
        }
        Some("VersionTLS13") => Ok(vec![&rustls::version::TLS13]),
        Some(v @ ("VersionTLS10" | "VersionTLS11")) => Err(format!(
            "--tls-min-version {v} is not supported by kubeboot: TLS 1.0 and 1.1 are insecure; use VersionTLS12 or VersionTLS13"
        )),
        Some(v) => Err(format!(
            "--tls-min-version {v:?} is unknown: allowed values are VersionTLS12, VersionTLS13"
        )),
    }
}

/// The cipher suites a `--tls-cipher-suites` list selects; empty selects rustls' defaults.
///
/// As in Go, the TLS 1.3 suites are not configurable: they are always on, and naming them is
/// accepted and changes nothing.
pub fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, String> {
    if names.is_empty() {
        return Ok(ALL_CIPHER_SUITES.to_vec());
    }
    let mut selected: Vec<SupportedCipherSuite> = ALL_CIPHER_SUITES
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        .copied()
        .collect();
    let mut unknown = Vec::new();
    for name in names {
        let name = name.trim();
        let rustls_name = if let Some(rest) = name
            .strip_prefix("TLS_AES_")
            .or(name.strip_prefix("TLS_CHACHA20_"))
        {
            let family = if name.starts_with("TLS_AES_") {
                "AES_"
            } else {
                "CHACHA20_"
            };
            format!("TLS13_{family}{rest}")
        } else if name.ends_with("_CHACHA20_POLY1305") {
            // Go spells the TLS 1.2 ChaCha suites without the hash.
            format!("{name}_SHA256")
        } else {
            name.to_string()
        };
        match ALL_CIPHER_SUITES
            .iter()
            .find(|s| s.suite().as_str() == Some(rustls_name.as_str()))
        {
            Some(suite) if !selected.contains(suite) => selected.push(*suite),
            Some(_) => {}
            None => unknown.push(name.to_string()),
        }
    }
    if unknown.is_empty() {
        Ok(selected)
    } else {
        Err(format!(
            "--tls-cipher-suites: unsupported cipher suite(s) {}: kubeboot offers only AEAD suites with forward secrecy ({})",
            unknown.join(", "),
            ALL_CIPHER_SUITES
                .iter()
                .filter_map(|s| s.suite().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_cipher_names_map_to_rustls_suites() {
        let suites = cipher_suites(&[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into(),
            "TLS_AES_128_GCM_SHA256".into(),
        ])
        .unwrap();
        assert!(
            suites
                .iter()
                .any(|s| s.suite().as_str() == Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"))
        );
        assert!(
            !suites
                .iter()
                .any(|s| s.suite().as_str() == Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"))
        );
    }

    #[test]
    fn cbc_suites_are_rejected_by_name() {
        let err = cipher_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()]).unwrap_err();
        assert!(err.contains("TLS_RSA_WITH_AES_128_CBC_SHA"));
    }

    #[test]
    fn tls11_minimum_is_rejected() {
        assert!(
            protocol_versions(Some("VersionTLS11"))
                .unwrap_err()
                .contains("--tls-min-version")
        );
        assert_eq!(protocol_versions(Some("VersionTLS13")).unwrap().len(), 1);
    }
}
