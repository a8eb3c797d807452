//! The foundation: CLI, options, PKI, TLS, delegation chain, health checks, graceful shutdown.

use crate::common::kubectls;
use crate::support::https::Https;
use crate::support::kubeboot::{TestServer, run_kubeboot};
use kubeboot::pki::certs::{LeafSpec, new_ca, new_leaf};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use x509_parser::prelude::{FromDer, X509Certificate};

#[tokio::test]
async fn up_serves_health_to_kubectl_127_132_and_135() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    assert!(
        server.stdout().contains(&format!(
            "export KUBECONFIG={}",
            server.kubeconfig().display()
        )),
        "{}",
        server.stdout()
    );
    for (version, kubectl) in kubectls() {
        let out = server.kubectl(&kubectl, &["get", "--raw", "/readyz?verbose"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kubectl {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in [
            "[+]ping ok",
            "[+]log ok",
            "[+]shutdown ok",
            "readyz check passed",
        ] {
            assert!(
                text.contains(line),
                "kubectl {version}: {line:?} missing in\n{text}"
            );
        }
        let out = server.kubectl(&kubectl, &["get", "--raw", "/livez"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ok",
            "kubectl {version}"
        );
        let out = server.kubectl(&kubectl, &["version", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["serverVersion"]["minor"], "33", "kubectl {version}: {v}");
        assert!(
            v["serverVersion"]["gitVersion"]
                .as_str()
                .unwrap()
                .starts_with("v1.33.0+kubeboot")
        );
    }
}

#[tokio::test]
async fn health_endpoints_support_verbose_exclude_and_single_checks() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let anon = server.anonymous();
    let r = anon.get("/readyz?exclude=log&verbose").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("[+]log excluded: ok\n"), "{}", r.body);
    let r = anon.get("/readyz?exclude=nosuch&verbose").await.unwrap();
    assert!(
        r.body
            .contains("warn: some health checks cannot be excluded: no matches for \"nosuch\""),
        "{}",
        r.body
    );
    assert_eq!(anon.get("/healthz").await.unwrap().body, "ok");
    let r = anon.get("/livez?verbose").await.unwrap();
    assert!(
        r.body.ends_with("livez check passed\n") && !r.body.contains("shutdown"),
        "{}",
        r.body
    );
    // Single checks are not public-info paths: anonymous gets 403, the admin gets the check.
    assert_eq!(anon.get("/readyz/ping").await.unwrap().status, 403);
    let admin = server.admin();
    let r = admin.get("/readyz/shutdown").await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(admin.get("/readyz/nosuch").await.unwrap().status, 404);

    // Upstream's check names, whichever store answers: tools exclude them by name.
    let names = |body: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.strip_prefix("[+]")?.strip_suffix(" ok"))
            .filter(|n| !n.starts_with("poststarthook/"))
            .map(str::to_string)
            .collect()
    };
    let r = admin.get("/readyz?verbose").await.unwrap();
    assert_eq!(
        names(&r.body),
        [
            "ping",
            "log",
            "etcd",
            "autoregister-completion",
            "etcd-readiness",
            "informer-sync",
            "shutdown"
        ],
        "{}",
        r.body
    );
    let r = admin.get("/livez?verbose").await.unwrap();
    assert_eq!(
        names(&r.body),
        ["ping", "log", "etcd", "autoregister-completion"],
        "{}",
        r.body
    );
    let r = admin
        .get("/readyz?exclude=etcd&exclude=etcd-readiness&verbose")
        .await
        .unwrap();
    assert!(r.body.contains("[+]etcd excluded: ok\n"), "{}", r.body);
    assert!(!r.body.contains("warn:"), "{}", r.body);
    assert_eq!(admin.get("/livez/etcd").await.unwrap().body, "ok");
    assert_eq!(
        admin.get("/livez/etcd-readiness").await.unwrap().status,
        404
    );
}

#[tokio::test]
async fn requests_pass_the_chain_and_end_in_a_not_found_status() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    // Outside every API group the chain ends in Go's plain http.NotFound, as upstream's.
    for path in [
        "/no/such/path",
        "/apis/nosuch.example.com",
        "/healthz/nosuch",
    ] {
        let r = admin.get(path).await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (404, "404 page not found\n"),
            "{path}"
        );
    }
    // Inside a served group-version, a Status.
    let r = admin.get("/api/v1/nosuchresources").await.unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource", "reason": "NotFound", "details": {}, "code": 404})
    );
    // /version is owned by the kube API server link, behind the aggregator.
    let v = admin.get("/version").await.unwrap().json();
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    // Anonymous users reach /version but nothing outside the public-info paths.
    assert_eq!(
        server.anonymous().get("/version").await.unwrap().status,
        200
    );
    let r = server
        .anonymous()
        .get("/api/v1/namespaces/default/pods")
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let s = r.json();
    assert_eq!(s["reason"], "Forbidden");
    assert_eq!(
        s["message"],
        r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(s["details"]["kind"], "pods");
}

#[tokio::test]
async fn serving_certificate_has_kubeadms_sans_and_usages() {
    let mut server = TestServer::up(&["--cert-extra-sans=api.example.test,192.0.2.7"]);
    server.wait_ready().await;
    let pem = std::fs::read_to_string(server.data_dir().join("pki/apiserver.crt")).unwrap();
    let der =
        kubeboot::pki::certs::first_cert_der(&pem, std::path::Path::new("apiserver.crt")).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let (dns, ips) = kubeboot::pki::certs::subject_alt_names(&cert);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_lowercase();
    for name in [
        hostname.as_str(),
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "api.example.test",
    ] {
        assert!(
            dns.iter().any(|d| d == name),
            "DNS SAN {name} missing: {dns:?}"
        );
    }
    for ip in ["127.0.0.1", "10.0.0.1", "192.0.2.7"] {
        assert!(
            ips.contains(&ip.parse::<IpAddr>().unwrap()),
            "IP SAN {ip} missing: {ips:?}"
        );
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, "kube-apiserver");
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
    let not_after = cert.validity().not_after.to_datetime();
    let days = (not_after - time::OffsetDateTime::now_utc()).whole_days();
    assert!(
        (363..=365).contains(&days),
        "serving cert valid for {days} days"
    );

    let (ca_pem, client_pem, _) = kubeboot::pki::kubeconfig::from_yaml(
        &std::fs::read_to_string(server.kubeconfig()).unwrap(),
    )
    .and_then(|k| kubeboot::pki::kubeconfig::credentials(&k))
    .unwrap();
    let ca_der = kubeboot::pki::certs::first_cert_der(&ca_pem, std::path::Path::new("ca")).unwrap();
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca.is_ca());
    assert_eq!(
        ca.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "kubernetes"
    );
    let client_der =
        kubeboot::pki::certs::first_cert_der(&client_pem, std::path::Path::new("admin")).unwrap();
    let (_, client) = X509Certificate::from_der(&client_der).unwrap();
    assert_eq!(
        client
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "system:masters"
    );
    assert_eq!(
        client
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "kubernetes-admin"
    );
    for key in [
        "pki/ca.key",
        "pki/apiserver.key",
        "pki/sa.key",
        "pki/front-proxy-ca.key",
        "admin.kubeconfig",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir().join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key} has mode {mode:o}");
    }
}

#[tokio::test]
async fn sigterm_turns_readyz_red_keeps_serving_for_the_delay_then_exits_zero() {
    let mut server = TestServer::up(&["--shutdown-delay-duration=3s"]);
    server.wait_ready().await;
    let admin = server.admin();
    // A keep-alive connection opened before the signal keeps being served during the delay.
    let mut conn = admin.connect().await.unwrap();
    assert_eq!(
        Https::send(&mut conn, "GET", "/version", &[])
            .await
            .unwrap()
            .status,
        200
    );

    let signaled = Instant::now();
    server.signal(libc::SIGTERM);
    let anon = server.anonymous();
    let red = loop {
        let r = anon.get("/readyz").await.unwrap();
        if r.status == 500 {
            break r;
        }
        assert!(
            signaled.elapsed() < Duration::from_secs(2),
            "/readyz still {} after SIGTERM",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        red.body.contains("[-]shutdown failed: reason withheld\n"),
        "{}",
        red.body
    );
    assert!(red.body.ends_with("readyz check failed\n"), "{}", red.body);
    assert_eq!(anon.get("/livez").await.unwrap().status, 200);
    assert_eq!(anon.get("/healthz").await.unwrap().status, 200);
    assert_eq!(
        Https::send(&mut conn, "GET", "/version", &[])
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(admin.get("/version").await.unwrap().status, 200);

    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.success(),
        "exit status {status}\n{}",
        server.stderr()
    );
    assert!(
        signaled.elapsed() >= Duration::from_secs(3),
        "exited before the shutdown delay"
    );
    assert!(
        admin.get("/version").await.is_err(),
        "still accepting connections after exit"
    );
}

#[tokio::test]
async fn a_second_signal_exits_at_once_with_status_1() {
    let mut server = TestServer::up(&["--shutdown-delay-duration=10m"]);
    server.wait_ready().await;
    server.signal(libc::SIGTERM);
    let anon = server.anonymous();
    while anon.get("/readyz").await.unwrap().status != 500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", server.stderr());
}

#[tokio::test]
async fn a_tls_1_1_client_hello_is_refused_with_a_protocol_version_alert() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    // A minimal TLS 1.1 ClientHello: record version 3.2, client version 3.2, no supported_versions.
    let mut hello = vec![0x03, 0x02];
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x2f]); // cipher suites (two AEAD)
    hello.extend_from_slice(&[0x01, 0x00]); // compression: null
    // signature_algorithms, so the server gets as far as comparing versions.
    hello.extend_from_slice(&[
        0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01,
    ]);
    let mut handshake = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![
        0x16,
        0x03,
        0x02,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);

    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    assert!(reply.len() >= 7, "expected an alert record, got {reply:?}");
    assert_eq!(reply[0], 0x15, "not an alert record: {reply:?}");
    assert_eq!(
        (reply[5], reply[6]),
        (2, 70),
        "expected fatal protocol_version alert: {reply:?}"
    );
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_rejected() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let other_ca = new_ca("someone-else").unwrap();
    let spec = LeafSpec {
        common_name: "kubernetes-admin".into(),
        organizations: vec!["system:masters".into()],
        dns_names: vec![],
        ips: vec![],
        usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    };
    let intruder = new_leaf(&spec, &other_ca).unwrap();
    let ca = std::fs::read(server.data_dir().join("pki/ca.crt")).unwrap();
    let client = Https::new(
        server.addr(),
        &ca,
        Some((intruder.cert_pem.as_bytes(), intruder.key_pem.as_bytes())),
    );
    assert!(
        client.get("/version").await.is_err(),
        "a foreign client certificate was accepted"
    );
    // The same request with the real admin certificate goes through.
    assert_eq!(
        server.admin().get("/no/such/path").await.unwrap().status,
        404
    );
}

#[tokio::test]
async fn anonymous_auth_false_answers_401_and_token_file_users_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "s3cret,alice,1001,\"dev,ops\"\n").unwrap();
    let token_flag = format!("--token-auth-file={}", tokens.display());
    let server = TestServer::spawn_in(dir, &["up"], &["--anonymous-auth=false", &token_flag]);
    let deadline = Instant::now() + Duration::from_secs(60);
    // /readyz is not public without anonymous auth: wait with the admin certificate.
    loop {
        if server.kubeconfig().exists()
            && let Ok(r) = server.admin().get("/readyz").await
            && r.status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let anon = server.anonymous();
    let r = anon.get("/readyz").await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], "Unauthorized");
    let r = anon
        .request(
            "GET",
            "/no/such/path",
            &[("authorization", "Bearer s3cret")],
        )
        .await
        .unwrap();
    // Authenticated as alice, whom RBAC grants no such path.
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"forbidden: User "alice" cannot get path "/no/such/path""#
    );
    let r = anon
        .request("GET", "/version", &[("authorization", "Bearer wrong")])
        .await
        .unwrap();
    assert_eq!(r.status, 401);
}

#[test]
fn init_twice_keeps_every_file_and_force_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        "pki/ca.crt",
        "pki/ca.key",
        "pki/apiserver.crt",
        "pki/apiserver.key",
        "pki/apiserver-kubelet-client.crt",
        "pki/apiserver-kubelet-client.key",
        "pki/front-proxy-ca.crt",
        "pki/front-proxy-client.crt",
        "pki/sa.key",
        "pki/sa.pub",
        "admin.kubeconfig",
    ];
    let read_all = || files.map(|f| std::fs::read(dir.path().join(".kubeboot").join(f)).unwrap());
    let first = run_kubeboot(dir.path(), &["init"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("wrote"));
    let before = read_all();

    let second = run_kubeboot(dir.path(), &["init"]);
    let table = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    assert!(!table.contains("wrote"), "{table}");
    assert_eq!(table.matches("kept").count(), 7, "{table}");
    assert_eq!(read_all(), before);

    let forced = run_kubeboot(dir.path(), &["init", "--force"]);
    assert!(forced.status.success());
    assert_eq!(
        String::from_utf8_lossy(&forced.stdout)
            .matches("wrote")
            .count(),
        7
    );
    let after = read_all();
    for (i, f) in files.iter().enumerate() {
        assert_ne!(after[i], before[i], "{f} was not replaced by --force");
    }

    // A serving certificate missing a SAN the flags now ask for is regenerated, the CA is kept.
    let out = run_kubeboot(dir.path(), &["init", "--cert-extra-sans=new.example.test"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("apiserver.crt")
            && table.contains("subject alternative name new.example.test is missing"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("pki/ca.crt") && l.ends_with("kept")),
        "{table}"
    );
}

#[test]
fn serve_without_pki_names_the_missing_file_and_suggests_init() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_kubeboot(dir.path(), &["serve", "--secure-port=1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apiserver.crt") && err.contains("kubeboot init"),
        "{err}"
    );
}

#[test]
fn bad_flags_exit_non_zero_with_a_message_naming_each_flag() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sa.key");
    std::fs::write(&key, "not a key").unwrap();
    let key_flag = format!("--service-account-signing-key-file={}", key.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--secure-port=70000"], "--secure-port"),
        (
            vec!["--service-cluster-ip-range=10.0.0.0/33"],
            "service-cluster-ip-range",
        ),
        (vec!["--advertise-address=1.2.3"], "--advertise-address"),
        (vec!["--bind-address=nope"], "--bind-address"),
        (
            vec!["--service-node-port-range=9-x"],
            "--service-node-port-range",
        ),
        (
            vec![
                "--tls-cert-file=/nonexistent.crt",
                "--tls-private-key-file=/nonexistent.key",
            ],
            "--tls-cert-file",
        ),
        (
            vec!["--client-ca-file=/nonexistent/ca.crt"],
            "--client-ca-file",
        ),
        (vec![key_flag.as_str()], "--service-account-issuer"),
        (
            vec!["--service-account-max-token-expiration=30m"],
            "--service-account-max-token-expiration",
        ),
        (
            vec!["--authorization-mode=Node,Magic"],
            "--authorization-mode",
        ),
        (
            vec!["--enable-admission-plugins=NamespaceLifecycle,Bogus"],
            "--enable-admission-plugins",
        ),
        (vec!["--tls-min-version=VersionTLS11"], "--tls-min-version"),
        (
            vec!["--tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA"],
            "--tls-cipher-suites",
        ),
        (vec!["--runtime-config=nonsense=maybe"], "--runtime-config"),
        (vec!["--storage-backend=sqlite"], "--storage-backend"),
        (vec!["--request-timeout=5"], "--request-timeout"),
        (vec!["--no-such-flag=1"], "--no-such-flag"),
    ];
    for (args, flag) in cases {
        let mut argv = vec!["init"];
        argv.extend(&args);
        let out = run_kubeboot(dir.path(), &argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            err.contains(flag),
            "{args:?}: error does not name {flag}:\n{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{args:?}: {err}"
        );
    }
    // Every error is reported at once.
    let out = run_kubeboot(
        dir.path(),
        &[
            "init",
            "--secure-port=0",
            "--authorization-mode=Magic",
            "--service-cluster-ip-range=bad",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for flag in [
        "--secure-port",
        "--authorization-mode",
        "service-cluster-ip-range",
    ] {
        assert!(err.contains(flag), "{flag} missing from\n{err}");
    }
    assert!(
        !dir.path().join(".kubeboot/pki/ca.crt").exists(),
        "init wrote files despite invalid flags"
    );
}

#[tokio::test]
async fn kube_apiserver_mode_accepts_kubeadms_flags_and_warns_once_per_unimplemented_flag() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run_kubeboot(dir.path(), &["init", "--data-dir=.kubeboot"])
            .status
            .success()
    );
    let pki = dir.path().join(".kubeboot/pki");
    // The command of manifests/kube-apiserver.yaml (kubeadm's, with kubeboot's image), pointed at
    // this PKI; the etcd flags stay out (no etcd here) and the address flags are the test's own.
    let manifest_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/kube-apiserver.yaml");
    let manifest: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let command = manifest["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap();
    assert_eq!(command[0], "kube-apiserver");
    let mut flags: Vec<String> = command[1..]
        .iter()
        .map(|f| {
            f.as_str()
                .unwrap()
                .replace("/etc/kubernetes/pki/", &format!("{}/", pki.display()))
        })
        .filter(|f| {
            ![
                "--etcd-",
                "--secure-port",
                "--advertise-address",
                "--bind-address",
            ]
            .iter()
            .any(|p| f.starts_with(p))
        })
        .collect();
    assert!(flags.len() > 20, "{flags:?}");
    // Unimplemented flags also in the `--name value` spelling.
    flags.extend(["--feature-gates".to_string(), "SomeGate=true".to_string()]);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();

    // Invoked under the name kube-apiserver, as a static-pod manifest does.
    let link = dir.path().join("kube-apiserver");
    std::os::unix::fs::symlink(crate::support::kubeboot::KUBEBOOT, &link).unwrap();
    let mut command = std::process::Command::new(&link);
    command
        .args(&args)
        .args(["--bind-address=127.0.0.1", "--data-dir=.kubeboot"])
        .current_dir(dir.path())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .stdout(std::process::Stdio::null());
    let mut server = TestServer::spawn(command, dir);
    server.wait_ready().await;
    let log = server.stderr();
    // kubeadm's --enable-bootstrap-token-auth=true and --kubelet-* flags are implemented: no
    // warning.
    for flag in [
        "--enable-bootstrap-token-auth",
        "--kubelet-client-certificate",
        "--kubelet-client-key",
        "--kubelet-preferred-address-types",
    ] {
        assert!(!log.contains(&format!("flag {flag}")), "{flag}:\n{log}");
    }
    for flag in ["--allow-privileged", "--feature-gates"] {
        assert_eq!(
            log.matches(&format!("flag {flag} is accepted")).count(),
            1,
            "{flag}:\n{log}"
        );
    }
    assert!(
        !log.contains("--requestheader-allowed-names is accepted"),
        "{log}"
    );
    // The front-proxy client certificate authenticates through the request-header authenticator.
    let fp = |f: &str| std::fs::read(server.data_dir().join("pki").join(f)).unwrap();
    let proxy = Https::new(
        server.addr(),
        &fp("ca.crt"),
        Some((&fp("front-proxy-client.crt"), &fp("front-proxy-client.key"))),
    );
    let r = proxy
        .request(
            "GET",
            "/no/such/path",
            &[("x-remote-user", "bob"), ("x-remote-group", "devs")],
        )
        .await
        .unwrap();
    // Authenticated as bob, whom RBAC grants no such path.
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        r#"forbidden: User "bob" cannot get path "/no/such/path""#
    );
    // Without the user header the proxy certificate is not a user certificate: 401.
    assert_eq!(proxy.get("/version").await.unwrap().status, 401);
}

#[test]
fn unknown_flags_are_rejected_in_kube_apiserver_mode_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_kubeboot(dir.path(), &["kube-apiserver", "--definitely-not-a-flag=1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--definitely-not-a-flag"));
}

#[test]
fn version_and_certs_check_expiration() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["version"][..], &["--version"][..]] {
        let out = run_kubeboot(dir.path(), args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(text.contains("v1.33.0"), "{text}");
    }
    assert!(
        String::from_utf8_lossy(&run_kubeboot(dir.path(), &["version"]).stdout)
            .contains("git commit: ")
    );
    assert!(run_kubeboot(dir.path(), &["init"]).status.success());
    let out = run_kubeboot(dir.path(), &["certs", "check-expiration"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, days) in [
        ("admin.kubeconfig", "364d"),
        ("apiserver.crt", "364d"),
        ("apiserver-kubelet-client.crt", "364d"),
        ("front-proxy-client.crt", "364d"),
        ("ca.crt", "3649d"),
        ("front-proxy-ca.crt", "3649d"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.trim_end().ends_with(days)),
            "{name} {days}:\n{text}"
        );
    }
}

#[tokio::test]
async fn extension_apiserver_authentication_configmap_publishes_the_client_and_front_proxy_cas() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let cm = server
        .admin()
        .get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
        .await
        .unwrap();
    assert_eq!(cm.status, 200, "{}", cm.json());
    let data = &cm.json()["data"];
    let pki = server.data_dir().join("pki");
    let file = |name: &str| std::fs::read_to_string(pki.join(name)).unwrap();
    assert_eq!(
        data["client-ca-file"].as_str(),
        Some(file("ca.crt").as_str())
    );
    assert_eq!(
        data["requestheader-client-ca-file"].as_str(),
        Some(file("front-proxy-ca.crt").as_str())
    );
    assert_eq!(
        data["requestheader-allowed-names"],
        r#"["front-proxy-client"]"#
    );
    assert_eq!(
        data["requestheader-username-headers"],
        r#"["X-Remote-User"]"#
    );
    assert_eq!(data["requestheader-group-headers"], r#"["X-Remote-Group"]"#);
    assert_eq!(
        data["requestheader-extra-headers-prefix"],
        r#"["X-Remote-Extra-"]"#
    );
    let readyz = server.admin().get("/readyz?verbose").await.unwrap();
    assert!(
        readyz
            .body
            .contains("[+]poststarthook/start-cluster-authentication-info-controller ok"),
        "{}",
        readyz.body
    );
}

#[tokio::test]
async fn json_is_indented_for_curl_browsers_and_pretty_true_as_upstream() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    let get = |path: &'static str, agent: &'static str| {
        let admin = &admin;
        async move {
            admin
                .request("GET", path, &[("user-agent", agent)])
                .await
                .unwrap()
        }
    };
    let indented = |body: &str| {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        serde_json::to_string_pretty(&value).unwrap()
    };
    let compact = |body: &str| {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        serde_json::to_string(&value).unwrap()
    };
    let object = "/api/v1/namespaces/default";
    let plain = get(object, "kubeboot-test/1.0").await;
    assert_eq!(
        plain.body,
        compact(&plain.body),
        "other clients get compact JSON"
    );

    // An object, a list, a Table, discovery and an error, as curl sees them.
    for path in [
        object,
        "/api/v1/namespaces",
        "/api/v1",
        "/apis/apps/v1/namespaces/default/deployments/missing",
    ] {
        let r = get(path, "curl/8.5.0").await;
        assert!(r.body.starts_with("{\n  \""), "{path}: {}", r.body);
        assert_eq!(r.body, indented(&r.body), "{path}");
        assert!(
            !r.body.ends_with('\n'),
            "no trailing newline, as MarshalIndent"
        );
    }
    let r = get(object, "curl/8.5.0").await;
    assert_eq!(r.json(), plain.json(), "the same object, only indented");
    let missing = get(
        "/apis/apps/v1/namespaces/default/deployments/missing",
        "Mozilla/5.0 (X11; Linux x86_64)",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, indented(&missing.body));
    assert_eq!(missing.json()["reason"], "NotFound");
    let wget = get(object, "Wget/1.21").await;
    assert_eq!(wget.body, indented(&wget.body));

    // ?pretty= wins over the User-Agent; Go's ParseBool decides, anything else is false.
    for (query, pretty) in [
        ("pretty=true", true),
        ("pretty=1", true),
        ("pretty=T", true),
        ("pretty=false", false),
        ("pretty=0", false),
        ("pretty=yes", false),
    ] {
        for agent in ["curl/8.5.0", "kubeboot-test/1.0"] {
            let path = format!("{object}?{query}");
            let r = admin
                .request("GET", &path, &[("user-agent", agent)])
                .await
                .unwrap();
            let want = if pretty {
                indented(&r.body)
            } else {
                compact(&r.body)
            };
            assert_eq!(r.body, want, "{query} with {agent}");
        }
    }
    // So does pretty=1 on the accepted media type.
    let r = admin
        .request(
            "GET",
            object,
            &[
                ("user-agent", "kubeboot-test/1.0"),
                ("accept", "application/json;pretty=1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.body, indented(&r.body));
    // An empty ?pretty= falls back to the User-Agent.
    let r = admin
        .request(
            "GET",
            &format!("{object}?pretty="),
            &[("user-agent", "curl/8.5.0")],
        )
        .await
        .unwrap();
    assert_eq!(r.body, indented(&r.body));

    // /version is indented for everyone, as upstream's WriteRawJSON; OpenAPI documents are
    // served as cached, whoever asks.
    let version = get("/version", "kubeboot-test/1.0").await;
    assert_eq!(version.body, indented(&version.body));
    assert_eq!(version.json()["major"], "1");
    assert_eq!(get("/version", "curl/8.5.0").await.body, version.body);
    let document = get("/openapi/v2", "kubeboot-test/1.0").await;
    assert_eq!(document.status, 200);
    assert_eq!(get("/openapi/v2", "curl/8.5.0").await.bytes, document.bytes);

    // Watch events stay one per line; YAML and protobuf are not JSON to indent.
    let r = admin
        .request(
            "GET",
            "/api/v1/namespaces?watch=true&timeoutSeconds=1&pretty=true",
            &[("user-agent", "curl/8.5.0")],
        )
        .await
        .unwrap();
    let events = r.json_lines();
    assert!(events.len() >= 4, "{}", r.body);
    assert!(events.iter().all(|e| e["type"] == "ADDED"), "{}", r.body);
    let r = admin
        .request(
            "GET",
            object,
            &[("user-agent", "curl/8.5.0"), ("accept", "application/yaml")],
        )
        .await
        .unwrap();
    assert!(r.body.starts_with("apiVersion: v1\n"), "{}", r.body);
}
