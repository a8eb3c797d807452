//! The admin kubeconfig, in the shape kubeadm writes it, as kube's [`Kubeconfig`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::{AuthInfo, Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};
use secrecy::{ExposeSecret, SecretString};

pub use kube::config::Kubeconfig;

/// The context and cluster name written into generated kubeconfigs.
pub const CLUSTER_NAME: &str = "kubeboot";

/// A kubeconfig with one cluster, one user and one context: `user` reaching `server`, trusting
/// `ca_pem`, with the certificate and key inline.
pub fn new(server: &str, ca_pem: &str, user: &str, cert_pem: &str, key_pem: &str) -> Kubeconfig {
    let context = format!("{user}@{CLUSTER_NAME}");
    Kubeconfig {
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        clusters: vec![NamedCluster {
            name: CLUSTER_NAME.into(),
            cluster: Some(Cluster {
                server: Some(server.into()),
                certificate_authority_data: Some(STANDARD.encode(ca_pem)),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        contexts: vec![NamedContext {
            name: context.clone(),
            context: Some(Context {
                cluster: CLUSTER_NAME.into(),
                user: Some(user.into()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(context),
        auth_infos: vec![NamedAuthInfo {
            name: user.into(),
            auth_info: Some(AuthInfo {
                client_certificate_data: Some(STANDARD.encode(cert_pem)),
                client_key_data: Some(SecretString::from(STANDARD.encode(key_pem))),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        ..Kubeconfig::default()
    }
}

/// Serializes to YAML.
pub fn to_yaml(config: &Kubeconfig) -> String {
    serde_saphyr::to_string(config).expect("a kubeconfig always serializes")
}

/// Parses a kubeconfig with every part [`new`] writes; anything else (a kubeconfig that names
/// files instead of holding its certificates, say) is not one kubeboot wrote: None.
pub fn from_yaml(text: &str) -> Option<Kubeconfig> {
    let config = Kubeconfig::from_yaml(text).ok()?;
    let complete = config.api_version.is_some()
        && config.kind.is_some()
        && config.current_context.is_some()
        && config.clusters.iter().all(|c| {
            c.cluster
                .as_ref()
                .is_some_and(|c| c.server.is_some() && c.certificate_authority_data.is_some())
        })
        && config
            .contexts
            .iter()
            .all(|c| c.context.as_ref().is_some_and(|c| c.user.is_some()))
        && config.auth_infos.iter().all(|u| {
            u.auth_info
                .as_ref()
                .is_some_and(|u| u.client_certificate_data.is_some() && u.client_key_data.is_some())
        });
    complete.then_some(config)
}

/// The server URL of the first cluster.
pub fn server(config: &Kubeconfig) -> Option<&str> {
    config.clusters.first()?.cluster.as_ref()?.server.as_deref()
}

/// The CA, client certificate and client key PEMs of the first cluster and user.
pub fn credentials(config: &Kubeconfig) -> Option<(String, String, String)> {
    let cluster = config.clusters.first()?.cluster.as_ref()?;
    let user = config.auth_infos.first()?.auth_info.as_ref()?;
    Some((
        unb64(cluster.certificate_authority_data.as_deref()?)?,
        unb64(user.client_certificate_data.as_deref()?)?,
        unb64(user.client_key_data.as_ref()?.expose_secret())?,
    ))
}

fn unb64(s: &str) -> Option<String> {
    String::from_utf8(STANDARD.decode(s).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_round_trips_through_yaml() {
        let k = new(
            "https://127.0.0.1:6443",
            "CA",
            "kubernetes-admin",
            "CERT",
            "KEY",
        );
        let yaml = to_yaml(&k);
        assert!(
            yaml.contains("current-context: kubernetes-admin@kubeboot"),
            "{yaml}"
        );
        let back = from_yaml(&yaml).unwrap();
        // kube's Kubeconfig has no PartialEq: equal serializations are equal configs.
        assert_eq!(to_yaml(&back), to_yaml(&k));
        assert_eq!(
            credentials(&back).unwrap(),
            ("CA".into(), "CERT".into(), "KEY".into())
        );
    }

    #[test]
    fn the_file_holds_what_kubeadm_writes_and_nothing_else() {
        let k = new("https://10.0.0.1:6443", "CA", "admin", "CERT", "KEY");
        let written: serde_json::Value = serde_saphyr::from_str(&to_yaml(&k)).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kubeboot", "cluster": {
                    "server": "https://10.0.0.1:6443",
                    "certificate-authority-data": "Q0E=",
                }}],
                "contexts": [{"name": "admin@kubeboot", "context": {"cluster": "kubeboot", "user": "admin"}}],
                "current-context": "admin@kubeboot",
                "users": [{"name": "admin", "user": {
                    "client-certificate-data": "Q0VSVA==",
                    "client-key-data": "S0VZ",
                }}],
            })
        );
    }

    #[test]
    fn a_kubeconfig_naming_files_is_not_one_kubeboot_wrote() {
        let yaml = "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    certificate-authority: /ca.crt\n";
        assert!(from_yaml(yaml).is_none());
        assert!(from_yaml("not: [a kubeconfig").is_none());
    }
}
