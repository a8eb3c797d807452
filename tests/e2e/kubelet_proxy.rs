//! The kubelet proxy family against a started server: a kubelet stand-in (an HTTPS server in
//! this process that serves `/containerLogs`, `/exec`, `/portForward` and `/stats/summary` as a
//! kubelet does, and accepts only kubeboot's kubelet client certificate) is reached through
//! `pods/log` (kubectl logs, also following), `pods/exec` and `pods/portforward` (protocol
//! switches passed through), and `nodes/proxy` (kubectl get --raw), on the node's preferred
//! address and published port, verified with `--kubelet-certificate-authority`.

use crate::common::{newest_kubectl, ok};
use crate::support::backend::{Backend, Body, Handler, full};
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use bytes::Bytes;
use http_body_util::BodyExt;
use kubeboot::pki::certs::{LeafSpec, new_ca, new_leaf};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const NS: &str = "/api/v1/namespaces/default";
/// The CommonName of kubeboot's kubelet client certificate, as kubeadm names it.
const CLIENT: &str = "kube-apiserver-kubelet-client";

/// What the stand-in was asked: path with query, and the client's CommonName.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The kubelet stand-in: logs (a follow sends its second line only once `release` is
/// notified, so a buffering proxy would show nothing), stats, and protocol switches that echo.
fn kubelet(seen: Seen, release: Arc<Notify>) -> Handler {
    Arc::new(move |mut req, client| {
        let (seen, release) = (seen.clone(), release.clone());
        Box::pin(async move {
            let target = req.uri().path_and_query().unwrap().to_string();
            seen.lock().unwrap().push((target.clone(), client));
            let path = req.uri().path().to_string();
            if path.starts_with("/exec/")
                && req
                    .headers()
                    .get("upgrade")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
            {
                return websocket_exec(req, &target);
            }
            if let Some(protocol) = req.headers().get("upgrade").cloned() {
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    if let Ok(io) = upgrade.await {
                        let mut io = hyper_util::rt::TokioIo::new(io);
                        let mut buf = [0u8; 256];
                        while let Ok(n) = io.read(&mut buf).await {
                            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                });
                return hyper::Response::builder()
                    .status(101)
                    .header("connection", "Upgrade")
                    .header("upgrade", protocol)
                    .body(full(""))
                    .unwrap();
            }
            if path.starts_with("/containerLogs/") {
                if target.contains("follow=true") {
                    let lines = futures::stream::unfold(0, move |n| {
                        let release = release.clone();
                        async move {
                            match n {
                                0 => Some(("line 1\n", 1)),
                                1 => {
                                    release.notified().await;
                                    Some(("line 2\n", 2))
                                }
                                _ => None,
                            }
                        }
                    });
                    use futures::StreamExt;
                    let frames = lines.map(|l| {
                        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(l)))
                    });
                    let body: Body = BodyExt::boxed(http_body_util::StreamBody::new(frames));
                    return hyper::Response::new(body);
                }
                return hyper::Response::new(full("line 1\nline 2\n"));
            }
            if path == "/stats/summary" {
                return hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(full(r#"{"node":{"nodeName":"n1"}}"#))
                    .unwrap();
            }
            hyper::Response::builder()
                .status(404)
                .body(full("404 page not found\n"))
                .unwrap()
        })
    })
}

/// A kubelet's exec over WebSocket (`v5.channel.k8s.io`), as kubectl ≥ 1.31 speaks it: the
/// command's words echoed on stdout (channel 1), then its Status on channel 3 — success, or
/// exit code 3 for a command `fail` — and a close frame.
fn websocket_exec(
    mut req: hyper::Request<hyper::body::Incoming>,
    target: &str,
) -> hyper::Response<Body> {
    use base64::Engine;
    let key = req.headers()["sec-websocket-key"]
        .to_str()
        .unwrap()
        .to_string();
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    );
    let accept = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let words: Vec<String> = form_urlencoded::parse(target.split_once('?').unwrap().1.as_bytes())
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.into_owned())
        .collect();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(io) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(io);
        // Unmasked binary frames, as a server sends them (RFC 6455 §5.2).
        let frame = |channel: u8, data: &[u8]| {
            let len = data.len() + 1;
            let mut f = vec![0x82];
            if len <= 125 {
                f.push(len as u8);
            } else {
                f.push(126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            f.push(channel);
            f.extend_from_slice(data);
            f
        };
        let status = if words.first().map(String::as_str) == Some("fail") {
            json!({"metadata": {}, "status": "Failure", "message": "command terminated with non-zero exit code: exit status 3",
                "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}})
        } else {
            json!({"metadata": {}, "status": "Success"})
        };
        let mut out = frame(1, format!("{}\n", words.join(" ")).as_bytes());
        out.extend(frame(3, status.to_string().as_bytes()));
        out.extend([0x88, 0x02, 0x03, 0xe8]);
        let _ = io.write_all(&out).await;
        // Drain what the client sends (its close) until it hangs up.
        let mut buf = [0u8; 256];
        while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    hyper::Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
        .body(full(""))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_exec_port_forward_and_node_proxy_reach_the_kubelet() {
    let dir = tempfile::tempdir().unwrap();
    // kubeboot's client certificate for kubelets, from a CA only the kubelet trusts.
    let client_ca = new_ca("kubelet-client-ca").unwrap();
    let client = new_leaf(
        &LeafSpec {
            common_name: CLIENT.into(),
            organizations: vec![],
            dns_names: vec![],
            ips: vec![],
            usage: rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        },
        &client_ca,
    )
    .unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (seen, release): (Seen, _) = (Arc::default(), Arc::new(Notify::new()));
    let stand_in = Backend::start(
        Some(&client_ca.cert_pem),
        kubelet(seen.clone(), release.clone()),
    );
    let flags = [
        format!(
            "--kubelet-client-certificate={}",
            file("kc.crt", &client.cert_pem)
        ),
        format!("--kubelet-client-key={}", file("kc.key", &client.key_pem)),
        format!(
            "--kubelet-certificate-authority={}",
            file("kubelet-ca.crt", &stand_in.ca_pem)
        ),
        "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
    ];
    let mut server = TestServer::up(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    server.wait_ready().await;
    let admin = server.admin();
    for node in ["n1", "n2"] {
        admin
            .create("/api/v1/nodes", &json!({"metadata": {"name": node}}))
            .await;
    }
    let status = json!({"status": {
        "addresses": [{"type": "Hostname", "address": "n1.invalid"},
                      {"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": stand_in.addr.port()}}}});
    let r = admin
        .with_body(
            "PATCH",
            "/api/v1/nodes/n1/status",
            "application/merge-patch+json",
            status.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pod = |name: &str, node: Option<&str>, containers: &[&str]| {
        let mut pod = json!({"metadata": {"name": name}, "spec": {"containers":
            containers.iter().map(|c| json!({"name": c, "image": "busybox"})).collect::<Vec<_>>()}});
        if let Some(node) = node {
            pod["spec"]["nodeName"] = json!(node);
        }
        pod
    };
    admin
        .create(&format!("{NS}/pods"), &pod("p1", Some("n1"), &["c"]))
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p2", Some("n1"), &["a", "b"]))
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p3", None, &["c"]))
        .await;
    admin
        .create(&format!("{NS}/pods"), &pod("p4", Some("n2"), &["c"]))
        .await;
    let kubectl = newest_kubectl();
    let last_seen = || seen.lock().unwrap().last().cloned().unwrap();

    // kubectl logs, with options passed on as the kubelet's query.
    let out = ok(&server.kubectl(&kubectl, &["logs", "p1"]), "kubectl logs");
    assert_eq!(out, "line 1\nline 2\n");
    assert_eq!(
        last_seen(),
        (
            "/containerLogs/default/p1/c".to_string(),
            Some(CLIENT.into())
        )
    );
    ok(
        &server.kubectl(
            &kubectl,
            &[
                "logs",
                "p1",
                "--tail=5",
                "--timestamps",
                "--limit-bytes=100",
            ],
        ),
        "kubectl logs --tail",
    );
    assert_eq!(
        last_seen().0,
        "/containerLogs/default/p1/c?timestamps=true&tailLines=5&limitBytes=100"
    );

    // kubectl logs -f streams: the first line arrives before the kubelet sends the second.
    let mut follow = server
        .kubectl_command(&kubectl, &["logs", "-f", "p1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (line, reader)
    });
    let (line, mut reader) = tokio::time::timeout(std::time::Duration::from_secs(30), first)
        .await
        .expect("the first line while the kubelet holds the second")
        .unwrap();
    assert_eq!(line, "line 1\n");
    release.notify_one();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert_eq!(rest, "line 2\n");
    assert!(follow.wait().unwrap().success());
    assert!(last_seen().0.ends_with("?follow=true"), "{:?}", last_seen());

    // Upstream's errors: which container, bad options, no node.
    let r = admin.get(&format!("{NS}/pods/p2/log")).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "a container name must be specified for pod p2, choose one of: [a b]"
    );
    let r = admin
        .get(&format!("{NS}/pods/p1/log?container=z"))
        .await
        .unwrap();
    assert_eq!(r.json()["message"], "container z is not valid for pod p1");
    let r = admin
        .get(&format!("{NS}/pods/p1/log?tailLines=-1"))
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "PodLogOptions \"p1\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
    let r = admin
        .json(
            "POST",
            &format!("{NS}/pods/p3/exec?command=true"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["message"], "pod p3 does not have a host assigned");
    let r = admin.get(&format!("{NS}/pods/p4/log")).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "Internal error occurred: no preferred addresses found; known addresses: []"
    );

    // exec and port-forward: the protocol switch joins the caller to the kubelet.
    for (path, protocol, kubelet_path) in [
        (
            format!("{NS}/pods/p1/exec?command=echo&command=hi&stdout=true&stdin=true"),
            "v5.channel.k8s.io",
            "/exec/default/p1/c?input=1&output=1&command=echo&command=hi",
        ),
        (
            format!("{NS}/pods/p1/portforward?ports=8080"),
            "SPDY/3.1",
            "/portForward/default/p1?port=8080",
        ),
    ] {
        let (head, mut tls) = admin.switch("POST", &path, protocol).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(
            head.contains(&format!("upgrade: {}", protocol.to_lowercase())),
            "{head}"
        );
        tls.write_all(b"through the kubelet\n").await.unwrap();
        let mut echo = vec![0u8; "through the kubelet\n".len()];
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            tls.read_exact(&mut echo),
        )
        .await
        .expect("the echo")
        .unwrap();
        assert_eq!(echo, b"through the kubelet\n");
        assert_eq!(last_seen(), (kubelet_path.to_string(), Some(CLIENT.into())));
    }

    // kubectl exec over WebSocket, through kubeboot to the kubelet, exit codes included.
    let out = ok(
        &server.kubectl(&kubectl, &["exec", "p1", "--", "echo", "hello", "kubelet"]),
        "kubectl exec",
    );
    assert_eq!(out, "echo hello kubelet\n");
    let failed = server.kubectl(&kubectl, &["exec", "p1", "--", "fail"]);
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");

    // nodes/proxy reaches the kubelet's own paths.
    let out = ok(
        &server.kubectl(
            &kubectl,
            &["get", "--raw", "/api/v1/nodes/n1/proxy/stats/summary"],
        ),
        "kubectl get --raw nodes/n1/proxy",
    );
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["node"]["nodeName"], "n1");
    assert_eq!(last_seen().0, "/stats/summary");

    // pods/proxy refuses loopback pod IPs, as upstream's IsProxyableIP.
    let r = admin
        .with_body(
            "PATCH",
            &format!("{NS}/pods/p1/status"),
            "application/merge-patch+json",
            json!({"status": {"podIP": "127.0.0.1"}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the pod IP to be stored", || async {
        let r = admin.get(&format!("{NS}/pods/p1/proxy/")).await.ok()?;
        (r.status == 400).then_some(r)
    })
    .await;
    let r = admin.get(&format!("{NS}/pods/p1/proxy/")).await.unwrap();
    assert_eq!(r.json()["message"], "address not allowed");

    // Discovery lists the connect subresources with upstream's kinds and verbs.
    let r = admin.get("/api/v1").await.unwrap();
    let resources = r.json()["resources"].as_array().unwrap().clone();
    let find = |name: &str| {
        resources
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in discovery"))
    };
    assert_eq!(find("pods/exec")["kind"], "PodExecOptions");
    assert_eq!(find("pods/exec")["verbs"], json!(["create", "get"]));
    assert_eq!(find("pods/log")["verbs"], json!(["get"]));
    assert_eq!(find("nodes/proxy")["kind"], "NodeProxyOptions");
    assert_eq!(
        find("services/proxy")["verbs"],
        json!(["create", "delete", "get", "patch", "update"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_adds_ephemeral_containers_that_stay_as_they_are() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            &format!("{NS}/pods"),
            &json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        )
        .await;
    let kubectl = newest_kubectl();
    ok(
        &server.kubectl(
            &kubectl,
            &[
                "debug",
                "web",
                "--image=busybox",
                "--target=c",
                "--attach=false",
                "--container=dbg",
                "--",
                "sleep",
                "1d",
            ],
        ),
        "kubectl debug",
    );
    let pod = admin.get(&format!("{NS}/pods/web")).await.unwrap().json();
    let ec = &pod["spec"]["ephemeralContainers"][0];
    assert_eq!(
        (&ec["name"], &ec["image"], &ec["targetContainerName"]),
        (&json!("dbg"), &json!("busybox"), &json!("c"))
    );
    assert_eq!(ec["command"], json!(["sleep", "1d"]));
    // The subresource reads the pod; it changes nothing but ephemeral containers.
    let r = admin
        .get(&format!("{NS}/pods/web/ephemeralcontainers"))
        .await
        .unwrap();
    assert_eq!(r.json()["kind"], "Pod");
    let sub = format!("{NS}/pods/web/ephemeralcontainers");
    let patch = |body: Value| {
        let (admin, sub) = (&admin, &sub);
        async move {
            admin
                .with_body(
                    "PATCH",
                    sub,
                    "application/merge-patch+json",
                    body.to_string(),
                )
                .await
        }
    };
    let r = patch(json!({"metadata": {"labels": {"x": "y"}},
        "spec": {"containers": [{"name": "c", "image": "httpd"}]}}))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pod = r.json();
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx");
    // Existing ones may be neither changed nor removed; new ones are validated.
    let r = patch(json!({"spec": {"ephemeralContainers": [
        {"name": "dbg", "image": "alpine", "targetContainerName": "c"}]}}))
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("spec.ephemeralContainers[dbg]: Forbidden: existing ephemeral containers \"dbg\" may not be changed"),
        "{}",
        r.body
    );
    let r = admin
        .with_body(
            "PATCH",
            &sub,
            "application/strategic-merge-patch+json",
            json!({"spec": {"ephemeralContainers": [
                {"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(".name: Duplicate value: \"c\"")
            && message.contains(".ports: Forbidden: cannot be set for an Ephemeral Container"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_resize_changes_cpu_and_memory_and_nothing_else() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            &format!("{NS}/pods"),
            &json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"},
                              "limits": {"cpu": "200m", "memory": "128Mi"}}}]}}),
        )
        .await;
    let kubectl = newest_kubectl();
    let resize = |patch: Value| {
        server.kubectl(
            &kubectl,
            &[
                "patch",
                "pod",
                "web",
                "--subresource=resize",
                "--type=strategic",
                "-p",
                &patch.to_string(),
                "-o",
                "json",
            ],
        )
    };
    // CPU and memory change; anything else in the patch (the image) is dropped.
    let out = ok(
        &resize(
            json!({"spec": {"containers": [{"name": "c", "image": "httpd",
            "resources": {"requests": {"cpu": "200m"}, "limits": {"cpu": "400m"}}}]}}),
        ),
        "kubectl patch --subresource=resize",
    );
    let pod: Value = serde_json::from_str(&out).unwrap();
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx");
    assert_eq!(c["resources"]["requests"]["cpu"], "200m");
    assert_eq!(c["resources"]["limits"]["cpu"], "400m");
    assert_eq!(c["resources"]["requests"]["memory"], "64Mi");

    let refused = |patch: Value| {
        let out = resize(patch);
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(json!({"spec": {"containers": [{"name": "c",
        "resources": {"requests": {"ephemeral-storage": "2Gi"}}}]}}));
    assert!(
        err.contains("spec: Forbidden: only cpu and memory resources are mutable"),
        "{err}"
    );
    // (A request removed comes back as its limit by defaulting, as upstream; a limit cannot go.)
    let err = refused(json!({"spec": {"containers": [{"name": "c",
        "resources": {"limits": {"memory": null}}}]}}));
    assert!(
        err.contains("spec.containers[0].resources.limits[memory]: Forbidden: resource removal is not supported"),
        "{err}"
    );
    let err = refused(json!({"spec": {"containers": [{"name": "c", "resources": {
        "requests": {"cpu": "400m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
        "limits": {"cpu": "400m", "memory": "128Mi", "ephemeral-storage": "1Gi"}}}]}}));
    assert!(
        err.contains("Pod QOS Class may not change as a result of resizing"),
        "{err}"
    );
    // Discovery lists the subresource as upstream 1.33 does.
    let r = admin.get("/api/v1").await.unwrap();
    let resize = r.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/resize")
        .cloned()
        .expect("pods/resize in discovery");
    assert_eq!(resize["verbs"], json!(["get", "patch", "update"]));
}
