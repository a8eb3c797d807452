//! Identities for tests: a client certificate for any user name and groups, signed by a started
//! server's cluster CA (as x509 authentication reads it: CN the user, O the groups), handed out as
//! an HTTPS client or as a kubeconfig for kubectl.

use super::https::Https;
use super::kubeboot::TestServer;
use kubeboot::pki::certs::{LeafSpec, Pair, new_leaf};
use kubeboot::pki::kubeconfig;
use std::path::PathBuf;

impl TestServer {
    /// A client certificate for `user` in `groups`, signed by this server's cluster CA.
    pub fn user_cert(&self, user: &str, groups: &[&str]) -> Pair {
        let pki = self.data_dir().join("pki");
        let ca = Pair {
            cert_pem: std::fs::read_to_string(pki.join("ca.crt")).unwrap(),
            key_pem: std::fs::read_to_string(pki.join("ca.key")).unwrap(),
        };
        let spec = LeafSpec {
            common_name: user.into(),
            organizations: groups.iter().map(|g| g.to_string()).collect(),
            dns_names: vec![],
            ips: vec![],
            usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        };
        new_leaf(&spec, &ca).unwrap()
    }

    /// An HTTPS client authenticated as `user` in `groups` by a client certificate.
    pub fn as_user(&self, user: &str, groups: &[&str]) -> Https {
        let ca = std::fs::read(self.data_dir().join("pki/ca.crt")).unwrap();
        let pair = self.user_cert(user, groups);
        Https::new(
            self.addr(),
            &ca,
            Some((pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())),
        )
    }

    /// Writes a kubeconfig for `user` in `groups` (a fresh client certificate) into the server's
    /// directory and returns its path, for `kubectl --kubeconfig`.
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> PathBuf {
        let ca = std::fs::read_to_string(self.data_dir().join("pki/ca.crt")).unwrap();
        let pair = self.user_cert(user, groups);
        let config = kubeconfig::new(
            &format!("https://{}", self.addr()),
            &ca,
            user,
            &pair.cert_pem,
            &pair.key_pem,
        );
        let file = user.replace([':', '/'], "_");
        let path = self.dir.path().join(format!("{file}.kubeconfig"));
        std::fs::write(&path, kubeconfig::to_yaml(&config)).unwrap();
        path
    }
}

/// A certificate request (base64 PEM, as a CSR's `spec.request` holds it) for `common_name`
/// in the organizations `groups`.
pub fn csr_request(common_name: &str, groups: &[&str]) -> String {
    use base64::Engine;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    for g in groups {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *g);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    base64::engine::general_purpose::STANDARD.encode(pem)
}
