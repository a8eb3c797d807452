//! Client CA bundles are re-read when their files change, as upstream's dynamic certificates:
//! a CA added to `--client-ca-file` is trusted without a restart, and one removed is not.

use crate::support::https::Https;
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use kubeboot::pki::certs::{LeafSpec, new_ca, new_leaf};
use serde_json::json;

/// Who the server says `client` is, or `None` when it does not accept the client's certificate.
async fn whoami(client: &Https) -> Option<String> {
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    // A refused certificate fails the handshake (or, verified before a rotation, the request).
    let mut sender = client.connect().await.ok()?;
    let r = Https::send_body(
        &mut sender,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &[("content-type", "application/json")],
        review.to_string().into(),
    )
    .await
    .ok()?;
    (r.status == 201).then(|| {
        r.json()["status"]["userInfo"]["username"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

#[tokio::test]
async fn a_ca_added_to_the_client_ca_file_is_trusted_without_a_restart_and_a_removed_one_is_not() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let ca_file = server.data_dir().join("pki/ca.crt");
    let cluster_ca = std::fs::read_to_string(&ca_file).unwrap();
    let rotated = new_ca("rotated").unwrap();
    let carol = new_leaf(
        &LeafSpec {
            common_name: "carol".into(),
            organizations: vec![],
            dns_names: vec![],
            ips: vec![],
            usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        },
        &rotated,
    )
    .unwrap();
    let carol = Https::new(
        server.addr(),
        cluster_ca.as_bytes(),
        Some((carol.cert_pem.as_bytes(), carol.key_pem.as_bytes())),
    );
    assert_eq!(whoami(&carol).await, None, "a certificate of an unknown CA");
    assert_eq!(
        whoami(&server.admin()).await.as_deref(),
        Some("kubernetes-admin")
    );

    std::fs::write(&ca_file, format!("{cluster_ca}{}", rotated.cert_pem)).unwrap();
    eventually("carol's CA to be trusted", || async {
        (whoami(&carol).await.as_deref() == Some("carol")).then_some(())
    })
    .await;
    assert_eq!(
        whoami(&server.admin()).await.as_deref(),
        Some("kubernetes-admin")
    );

    std::fs::write(&ca_file, &cluster_ca).unwrap();
    eventually("carol's CA to be dropped", || async {
        whoami(&carol).await.is_none().then_some(())
    })
    .await;
    assert_eq!(
        whoami(&server.admin()).await.as_deref(),
        Some("kubernetes-admin")
    );
}
