//! ValidatingAdmissionPolicy against a started server: a policy whose param (a ConfigMap in the
//! request's namespace) limits Deployment replicas, bound twice — `Deny` where namespaces are
//! labelled strict, `Warn` where lenient — refuses or warns with upstream's words through kubectl
//! and HTTP; a missing param with parameterNotFoundAction Deny refuses.

use crate::common::{failed, newest_kubectl, ok, two_version_crd};
use crate::support::kubeboot::TestServer;
use crate::support::wait::eventually;
use serde_json::{Value, json};

const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
}

fn binding(name: &str, action: &str, limits: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "policyName": "replica-limit", "validationActions": [action],
        "paramRef": {"name": "replica-limits", "parameterNotFoundAction": "Deny"},
        "matchResources": {"namespaceSelector": {"matchLabels": {"limits": limits}}}}})
}

#[tokio::test]
async fn a_policy_with_a_param_denies_and_warns_through_its_bindings() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    for (name, limits) in [
        ("strict", "strict"),
        ("lenient", "lenient"),
        ("unset", "strict"),
    ] {
        admin
            .create(
                "/api/v1/namespaces",
                &json!({"metadata": {"name": name, "labels": {"limits": limits}}}),
            )
            .await;
    }
    for ns in ["strict", "lenient"] {
        admin
            .create(
                &format!("/api/v1/namespaces/{ns}/configmaps"),
                &json!({"metadata": {"name": "replica-limits"}, "data": {"maxReplicas": "3"}}),
            )
            .await;
    }
    admin
        .create(
            POLICIES,
            &json!({"metadata": {"name": "replica-limit"}, "spec": {
                "failurePolicy": "Fail",
                "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
                "variables": [{"name": "max", "expression": "int(params.data.maxReplicas)"}],
                "validations": [{"expression": "object.spec.replicas <= variables.max",
                    "messageExpression": "'replicas must be no greater than ' + string(variables.max)",
                    "reason": "Invalid"}]}}),
        )
        .await;
    admin
        .create(BINDINGS, &binding("limit-deny", "Deny", "strict"))
        .await;
    admin
        .create(BINDINGS, &binding("limit-warn", "Warn", "lenient"))
        .await;
    let at = |ns: &str| format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let denied = "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replica-limit' \
                  with binding 'limit-deny' denied request: replicas must be no greater than 3";

    // Deny: upstream's 422 Invalid with the policy and binding named. The informers see the
    // new policy and bindings within moments.
    let r = eventually("the policy to apply", || async {
        let r = admin
            .json("POST", &at("strict"), &deployment("big", 5))
            .await;
        (r.status != 201).then_some(r)
    })
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let status = r.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["message"], denied);
    let r = admin
        .json("POST", &at("strict"), &deployment("small", 2))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let kubectl = newest_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let apply = |ns: &str, obj: &Value| {
        let path = dir.path().join(format!("{ns}.json"));
        std::fs::write(&path, obj.to_string()).unwrap();
        server.kubectl(&kubectl, &["apply", "-n", ns, "-f", path.to_str().unwrap()])
    };
    // kubectl shows an Invalid status by its cause, as it does for upstream's.
    let stderr = failed(
        &apply("strict", &deployment("big", 5)),
        "kubectl apply in strict",
    );
    assert!(
        stderr.contains(
            "The deployments \"big\" is invalid: : ValidatingAdmissionPolicy 'replica-limit' with \
             binding 'limit-deny' denied request: replicas must be no greater than 3"
        ),
        "{stderr}"
    );

    // Warn: admitted, with the warning kubectl prints.
    let out = apply("lenient", &deployment("big", 5));
    ok(&out, "kubectl apply in lenient");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding \
             'limit-warn': replicas must be no greater than 3"
        ),
        "{stderr}"
    );

    // No param where the binding needs one, with parameterNotFoundAction Deny.
    let r = admin
        .json("POST", &at("unset"), &deployment("big", 1))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replica-limit' with binding \
         'limit-deny' denied request: no params found for policy binding with `Deny` parameterNotFoundAction"
    );
}

/// The Kubernetes CEL libraries (quantities, URLs, IPs and CIDRs, regex, formats) in a policy's
/// validations and in a CRD's rules, each refusing what it should with its message.
#[tokio::test]
async fn policies_and_crd_rules_use_the_kubernetes_cel_libraries() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create("/api/v1/namespaces", &json!({"metadata": {"name": "libs"}}))
        .await;
    let validation =
        |expression: &str, message: &str| json!({"expression": expression, "message": message});
    admin
        .create(
            POLICIES,
            &json!({"metadata": {"name": "endpoints"}, "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}],
                    "objectSelector": {"matchLabels": {"kind": "endpoint"}}},
                "validations": [
                    validation("isURL(object.data.url) && url(object.data.url).getScheme() == 'https'",
                        "url must be an https URL"),
                    validation("cidr('10.0.0.0/8').containsIP(object.data.ip) && ip(object.data.ip).family() == 4",
                        "ip must be in 10.0.0.0/8"),
                    validation("quantity(object.data.size).isLessThan(quantity('1Gi'))",
                        "size must be under 1Gi"),
                    validation("object.data.version.findAll('[0-9]+').size() == 3",
                        "version must be major.minor.patch"),
                ]}}),
        )
        .await;
    admin
        .create(
            BINDINGS,
            &json!({"metadata": {"name": "endpoints"},
                "spec": {"policyName": "endpoints", "validationActions": ["Deny"]}}),
        )
        .await;
    let configmaps = "/api/v1/namespaces/libs/configmaps";
    let endpoint = |name: &str, url: &str, ip: &str, size: &str, version: &str| {
        json!({"metadata": {"name": name, "labels": {"kind": "endpoint"}},
            "data": {"url": url, "ip": ip, "size": size, "version": version}})
    };
    let refused = |name: &str, message: &str| {
        format!(
            "configmaps \"{name}\" is forbidden: ValidatingAdmissionPolicy 'endpoints' with binding \
             'endpoints' denied request: {message}"
        )
    };
    let r = eventually("the policy to apply", || async {
        let r = admin
            .json(
                "POST",
                configmaps,
                &endpoint(
                    "plain-http",
                    "http://a.example.com/",
                    "10.1.2.3",
                    "1Mi",
                    "1.2.3",
                ),
            )
            .await;
        (r.status != 201).then_some(r)
    })
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        refused("plain-http", "url must be an https URL")
    );
    for (name, url, ip, size, version, message) in [
        (
            "outside",
            "https://a.example.com/",
            "192.168.0.1",
            "1Mi",
            "1.2.3",
            "ip must be in 10.0.0.0/8",
        ),
        (
            "large",
            "https://a.example.com/",
            "10.0.0.1",
            "2Gi",
            "1.2.3",
            "size must be under 1Gi",
        ),
        (
            "short",
            "https://a.example.com/",
            "10.0.0.1",
            "1Mi",
            "1.2",
            "version must be major.minor.patch",
        ),
    ] {
        let r = admin
            .json("POST", configmaps, &endpoint(name, url, ip, size, version))
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.json()["message"], refused(name, message));
    }
    let r = admin
        .json(
            "POST",
            configmaps,
            &endpoint(
                "good",
                "https://a.example.com:8443/x?y=1",
                "10.0.0.1",
                "512Mi",
                "1.22.3",
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // The same libraries in a CRD's validation rules.
    let rule = |rule: &str, message: &str| json!({"rule": rule, "message": message});
    admin
        .create(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &json!({"metadata": {"name": "subnets.net.example.com"}, "spec": {
                "group": "net.example.com", "scope": "Namespaced",
                "names": {"plural": "subnets", "singular": "subnet", "kind": "Subnet"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object",
                            "properties": {"network": {"type": "string"}, "gateway": {"type": "string"},
                                "dns": {"type": "string"}, "mtu": {"type": "string"},
                                "zone": {"type": "string"}},
                            "x-kubernetes-validations": [
                                rule("isCIDR(self.network) && cidr(self.network).containsIP(self.gateway)",
                                    "gateway must be inside the network"),
                                rule("ip.isCanonical(self.gateway)", "gateway must be written canonically"),
                                rule("url(self.dns).getHostname().endsWith('.example.com')",
                                    "dns must be under example.com"),
                                rule("quantity(self.mtu).isInteger() && quantity(self.mtu).asInteger() <= 9000",
                                    "mtu must be a whole number up to 9000"),
                                rule("!format.dns1123Label().validate(self.zone).hasValue()",
                                    "zone must be a DNS label"),
                            ]}}}}}]}}),
        )
        .await;
    let subnets = "/apis/net.example.com/v1/namespaces/libs/subnets";
    let subnet = |name: &str, spec: Value| json!({"apiVersion": "net.example.com/v1", "kind": "Subnet", "metadata": {"name": name}, "spec": spec});
    let good = json!({"network": "2001:db8::/64", "gateway": "2001:db8::1",
        "dns": "https://dns.example.com/resolve", "mtu": "1500", "zone": "zone-a"});
    let r = eventually("the CRD to be served", || async {
        let r = admin
            .json("POST", subnets, &subnet("good", good.clone()))
            .await;
        (r.status != 404).then_some(r)
    })
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bad = json!({"network": "10.0.0.0/24", "gateway": "10.0.1.1",
        "dns": "https://dns.example.org/", "mtu": "10k", "zone": "Zone_A"});
    let r = admin.json("POST", subnets, &subnet("bad", bad)).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let causes: Vec<String> = r.json()["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        causes,
        [
            "Invalid value: \"object\": gateway must be inside the network",
            "Invalid value: \"object\": dns must be under example.com",
            "Invalid value: \"object\": mtu must be a whole number up to 9000",
            "Invalid value: \"object\": zone must be a DNS label",
        ]
    );
    let r = admin
        .json(
            "POST",
            subnets,
            &subnet(
                "loud",
                json!({"network": "2001:db8::/64", "gateway": "2001:DB8::1",
                "dns": "https://dns.example.com/", "mtu": "9000"}),
            ),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("gateway must be written canonically"),
        "{}",
        r.body
    );
}

/// A policy's expressions ask the authorizer about the request's user, a service account and
/// the request's own resource, as upstream's `authorizer` variable.
#[tokio::test]
async fn a_policy_asks_the_authorizer() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "authz"}}),
        )
        .await;
    admin
        .create(
            POLICIES,
            &json!({"metadata": {"name": "approved-only"}, "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": ["configmaps"]}]},
                "matchConditions": [{"name": "labelled",
                    "expression": "has(object.metadata.labels) && 'approved' in object.metadata.labels"}],
                "validations": [
                    {"expression": "authorizer.group('example.com').resource('approvals').namespace(object.metadata.namespace).check('create').allowed()",
                        "messageExpression": "'user ' + request.userInfo.username + ' may not approve'"},
                    {"expression": "authorizer.serviceAccount('authz', 'bot').group('').resource('secrets').namespace('authz').check('get').allowed()",
                        "message": "the bot must be able to read secrets"},
                    {"expression": "authorizer.requestResource.check('delete').allowed()",
                        "message": "approvers must be able to delete what they approve"},
                ]}}),
        )
        .await;
    admin
        .create(
            BINDINGS,
            &json!({"metadata": {"name": "approved-only"},
                "spec": {"policyName": "approved-only", "validationActions": ["Deny"]}}),
        )
        .await;
    let role = |name: &str, rules: Value| json!({"metadata": {"name": name, "namespace": "authz"}, "rules": rules});
    let binding = |name: &str, subject: Value| {
        json!({"metadata": {"name": name, "namespace": "authz"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject]})
    };
    let user =
        |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name});
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/authz/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/authz/rolebindings";
    // Both users may create ConfigMaps; only carol may approve, and delete them.
    admin
        .create(
            roles,
            &role(
                "writer",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]),
            ),
        )
        .await;
    admin
        .create(
            roles,
            &role(
                "approver",
                json!([
            {"apiGroups": ["example.com"], "resources": ["approvals"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]}]),
            ),
        )
        .await;
    admin
        .create(bindings, &binding("writer", user("dave")))
        .await;
    admin
        .create(bindings, &binding("writer-carol", user("carol")))
        .await;
    admin
        .create(
            roles,
            &role(
                "writer-carol",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]),
            ),
        )
        .await;
    admin
        .create(bindings, &binding("approver", user("carol")))
        .await;
    let configmaps = "/api/v1/namespaces/authz/configmaps";
    let approved = |name: &str| json!({"metadata": {"name": name, "labels": {"approved": "yes"}}});
    let dave = server.as_user("dave", &[]);
    let carol = server.as_user("carol", &[]);

    // Dave may write but not approve.
    let r = eventually("the policy and RBAC to apply", || async {
        let r = dave.json("POST", configmaps, &approved("by-dave")).await;
        (r.status == 422).then_some(r)
    })
    .await;
    assert_eq!(
        r.json()["message"],
        "configmaps \"by-dave\" is forbidden: ValidatingAdmissionPolicy 'approved-only' with binding \
         'approved-only' denied request: user dave may not approve"
    );
    // Carol may approve, but the bot cannot read secrets yet.
    let r = carol.json("POST", configmaps, &approved("by-carol")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("denied request: the bot must be able to read secrets"),
        "{}",
        r.body
    );
    admin
        .create(
            roles,
            &role(
                "bot",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
        )
        .await;
    admin
        .create(
            bindings,
            &binding(
                "bot",
                json!({"kind": "ServiceAccount", "name": "bot", "namespace": "authz"}),
            ),
        )
        .await;
    let r = eventually("the bot's binding to apply", || async {
        let r = carol.json("POST", configmaps, &approved("by-carol")).await;
        (r.status == 201).then_some(r)
    })
    .await;
    assert_eq!(r.json()["metadata"]["name"], "by-carol");
    // Unlabelled, the policy does not apply: dave may create it.
    let r = dave
        .json("POST", configmaps, &json!({"metadata": {"name": "plain"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // requestResource: carol's delete right is what the third validation asks.
    admin
        .request(
            "DELETE",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/authz/roles/approver",
            &[],
        )
        .await
        .unwrap();
    admin
        .create(
            roles,
            &role(
                "approver",
                json!([
            {"apiGroups": ["example.com"], "resources": ["approvals"], "verbs": ["create"]}]),
            ),
        )
        .await;
    let r = eventually("carol's delete right to be gone", || async {
        let r = carol.json("POST", configmaps, &approved("again")).await;
        (r.status == 422).then_some(r)
    })
    .await;
    assert!(
        r.body
            .contains("denied request: approvers must be able to delete what they approve"),
        "{}",
        r.body
    );
}

/// A policy naming v1 of a two-version CRD sees a v2 request as v1 (matchPolicy Equivalent,
/// the default), and not at all with matchPolicy Exact.
#[tokio::test]
async fn a_policy_sees_equivalent_versions_converted_unless_exact() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();
    two_version_crd(&admin, "gadgets", "Gadget").await;
    let policy = |name: &str, match_policy: &str| {
        json!({"metadata": {"name": name}, "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"matchPolicy": match_policy, "resourceRules": [{"apiGroups": ["example.com"],
                "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["gadgets"]}]},
            "validations": [{"expression": "object.spec.size < 5",
                "messageExpression": "'seen as ' + object.apiVersion + ' (' + request.kind.version + '), asked as ' + request.requestKind.version"}]}})
    };
    for (name, match_policy) in [("equivalent", "Equivalent"), ("exact", "Exact")] {
        admin.create(POLICIES, &policy(name, match_policy)).await;
        admin
            .create(
                BINDINGS,
                &json!({"metadata": {"name": name},
                    "spec": {"policyName": name, "validationActions": ["Deny"]}}),
            )
            .await;
    }
    let gadget = |version: &str, name: &str, size: i64| {
        json!({"apiVersion": format!("example.com/{version}"), "kind": "Gadget",
            "metadata": {"name": name}, "spec": {"size": size}})
    };
    let gadgets = |version: &str| format!("/apis/example.com/{version}/namespaces/default/gadgets");
    let r = eventually("the CRD and the policies to be live", || async {
        let r = admin
            .json("POST", &gadgets("v2"), &gadget("v2", "big", 10))
            .await;
        (r.status == 422).then_some(r)
    })
    .await;
    assert_eq!(
        r.json()["message"],
        "gadgets.example.com \"big\" is forbidden: ValidatingAdmissionPolicy 'equivalent' with binding \
         'equivalent' denied request: seen as example.com/v1 (v1), asked as v2"
    );
    // Asked of v1, both policies match; the first in name order answers.
    let r = admin
        .json("POST", &gadgets("v1"), &gadget("v1", "big", 10))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Delete the Equivalent binding: the Exact policy alone does not see v2 requests.
    let r = admin
        .request("DELETE", &format!("{BINDINGS}/equivalent"), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("v2 requests to pass the Exact policy", || async {
        let r = admin
            .json("POST", &gadgets("v2"), &gadget("v2", "big", 10))
            .await;
        (r.status == 201).then_some(())
    })
    .await;
    let r = admin
        .json("POST", &gadgets("v1"), &gadget("v1", "big-v1", 10))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("'exact' denied request: seen as example.com/v1 (v1), asked as v1"),
        "{}",
        r.body
    );
}

/// A policy on Deployments with the given validations (no bindings: type checking needs none).
fn deployments_policy(name: &str, validations: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["deployments"]}]},
        "validations": validations}})
}

/// The policy `name` once its status has observed `generation`.
async fn type_checked(admin: &crate::support::https::Https, name: &str, generation: i64) -> Value {
    eventually("the policy to be type-checked", || async {
        let policy = admin.get(&format!("{POLICIES}/{name}")).await.ok()?.json();
        (policy["status"]["observedGeneration"] == generation).then_some(policy)
    })
    .await
}

#[tokio::test]
async fn a_policys_expressions_are_type_checked_against_the_kinds_it_matches() {
    let mut server = TestServer::up(&[]);
    server.wait_ready().await;
    let admin = server.admin();

    // Well typed: upstream's conformance case, no warnings but a typeChecking all the same.
    admin
        .create(
            POLICIES,
            &deployments_policy(
                "correct",
                json!([{"expression": "object.spec.replicas > 1"}]),
            ),
        )
        .await;
    let policy = type_checked(&admin, "correct", 1).await;
    assert_eq!(policy["status"]["typeChecking"], json!({}), "{policy}");
    let managers: Vec<&Value> = policy["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["manager"])
        .collect();
    assert!(
        managers.contains(&&json!("validatingadmissionpolicy-status-controller")),
        "{managers:?}"
    );

    // Type confusion in an expression and a messageExpression: one warning each, worded as
    // upstream's checker words them.
    admin
        .create(
            POLICIES,
            &deployments_policy(
                "confused",
                json!([{"expression": "object.spec.replicas > '1'",
                    "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas"}]),
            ),
        )
        .await;
    let policy = type_checked(&admin, "confused", 1).await;
    assert_eq!(
        policy["status"]["typeChecking"]["expressionWarnings"],
        json!([
            {"fieldRef": "spec.validations[0].expression",
             "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'\n | object.spec.replicas > '1'\n | .....................^\n"},
            {"fieldRef": "spec.validations[0].messageExpression",
             "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:28: found no matching overload for '_+_' applied to '(string, int)'\n | 'wants replicas > 1, got ' + object.spec.replicas\n | ...........................^\n"},
        ])
    );
    // kubectl reads the warnings from the status.
    let kubectl = newest_kubectl();
    let out = server.kubectl(
        &kubectl,
        &[
            "get",
            "validatingadmissionpolicy",
            "confused",
            "-o",
            "jsonpath={.status.typeChecking.expressionWarnings[*].fieldRef}",
        ],
    );
    assert_eq!(
        ok(&out, "kubectl get"),
        "spec.validations[0].expression spec.validations[0].messageExpression"
    );

    // Fixed: the next generation is checked again and the warnings go.
    let mut fixed = policy.clone();
    fixed["spec"]["validations"] = json!([{"expression": "object.spec.replicas > 1",
        "messageExpression": "'wants replicas > 1, got ' + string(object.spec.replicas)"}]);
    let r = admin
        .json("PUT", &format!("{POLICIES}/confused"), &fixed)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let policy = type_checked(&admin, "confused", 2).await;
    assert_eq!(policy["status"]["typeChecking"], json!({}), "{policy}");

    // A custom kind is typed by its CRD's schema; params by the paramKind's; variables by
    // their expressions; a field the schema lacks is named.
    admin
        .create(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &json!({"metadata": {"name": "crontabs.stable.example.com"}, "spec": {
                "group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "cronSpec": {"type": "string"},
                            "replicas": {"type": "integer"}}}}}}}]}}),
        )
        .await;
    eventually("the CRD to be served", || async {
        let r = admin
            .get("/apis/stable.example.com/v1/crontabs")
            .await
            .ok()?;
        (r.status == 200).then_some(())
    })
    .await;
    admin
        .create(
            POLICIES,
            &json!({"metadata": {"name": "crontabs"}, "spec": {
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [{"apiGroups": ["stable.example.com"],
                "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["crontabs"]}]},
            "variables": [{"name": "replicas", "expression": "object.spec.replicas"}],
            "validations": [
                {"expression": "object.spec.replicas > '1'"},
                {"expression": "object.spec.maxRetries < 10"},
                {"expression": "params.data.max > 1"},
                {"expression": "variables.replicas < 5 && object.spec.cronSpec != ''"},
            ]}}),
        )
        .await;
    let policy = type_checked(&admin, "crontabs", 1).await;
    let warnings = policy["status"]["typeChecking"]["expressionWarnings"]
        .as_array()
        .unwrap()
        .clone();
    let refs: Vec<&str> = warnings
        .iter()
        .map(|w| w["fieldRef"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "spec.validations[0].expression",
            "spec.validations[1].expression",
            "spec.validations[2].expression",
        ]
    );
    let text = |i: usize| warnings[i]["warning"].as_str().unwrap();
    assert!(
        text(0).starts_with("stable.example.com/v1, Kind=CronTab: ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'"),
        "{}",
        text(0)
    );
    assert!(
        text(1).contains("undefined field 'maxRetries'"),
        "{}",
        text(1)
    );
    assert!(
        text(2).contains("found no matching overload for '_>_' applied to '(string, int)'"),
        "{}",
        text(2)
    );
}
