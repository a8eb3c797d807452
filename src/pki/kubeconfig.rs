//! The admin kubeconfig, in the shape kubeadm writes it.

use serde::{Deserialize, Serialize};

/// The context and cluster name written into generated kubeconfigs.
pub const CLUSTER_NAME: &str = "kubeboot";

/// A kubeconfig with one cluster, one user and one context.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    clusters: Vec<NamedCluster>,
    contexts: Vec<NamedContext>,
    #[serde(rename = "current-context")]
    current_context: String,
    users: Vec<NamedUser>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Context {
    cluster: String,
    user: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct NamedUser {
    name: String,
    user: User,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct User {
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: String,
    #[serde(rename = "client-key-data")]
    client_key_data: String,
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()
}

impl Kubeconfig {
    /// A kubeconfig for `user` reaching `server`, trusting `ca_pem`.
    pub fn new(server: &str, ca_pem: &str, user: &str, cert_pem: &str, key_pem: &str) -> Self {
        let context = format!("{user}@{CLUSTER_NAME}");
        Self {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: CLUSTER_NAME.into(),
                cluster: Cluster {
                    server: server.into(),
                    certificate_authority_data: b64(ca_pem),
                },
            }],
            contexts: vec![NamedContext {
                name: context.clone(),
                context: Context {
                    cluster: CLUSTER_NAME.into(),
                    user: user.into(),
                },
            }],
            current_context: context,
            users: vec![NamedUser {
                name: user.into(),
                user: User {
                    client_certificate_data: b64(cert_pem),
                    client_key_data: b64(key_pem),
                },
            }],
        }
    }

    /// Parses a kubeconfig written by [`Kubeconfig::to_yaml`].
    pub fn from_yaml(text: &str) -> Option<Self> {
        serde_saphyr::from_str(text).ok()
    }

    /// Serializes to YAML.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a kubeconfig always serializes")
    }

    /// The server URL of the first cluster.
    pub fn server(&self) -> Option<&str> {
        self.clusters.first().map(|c| c.cluster.server.as_str())
    }

    /// The CA, client certificate and client key PEMs of the first cluster and user.
    pub fn credentials(&self) -> Option<(String, String, String)> {
        let cluster = &self.clusters.first()?.cluster;
        let user = &self.users.first()?.user;
        Some((
            unb64(&cluster.certificate_authority_data)?,
            unb64(&user.client_certificate_data)?,
            unb64(&user.client_key_data)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_round_trips_through_yaml() {
        let k = Kubeconfig::new(
            "https://127.0.0.1:6443",
            "CA",
            "kubernetes-admin",
            "CERT",
            "KEY",
        );
        let yaml = k.to_yaml();
        assert!(
            yaml.contains("current-context: kubernetes-admin@kubeboot"),
            "{yaml}"
        );
        let back = Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(back, k);
        assert_eq!(
            back.credentials().unwrap(),
            ("CA".into(), "CERT".into(), "KEY".into())
        );
    }
}
