//! Services: upstream's `SetDefaults_Service`, the shape checks of `ValidateService` and
//! `ValidateServiceUpdate` (IP and node port allocation live in the store, not here), the
//! `kubectl get services` columns and the `spec.clusterIP`/`spec.type` field selectors.

use super::{format_labels, port_name, port_num, s};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, PROXY_VERBS, Rules, Sub};
use crate::registry::table::{Column, age_cell};
use crate::registry::validation::{NameRule, dns1123_label, dns1123_subdomain, labels};
use k8s_openapi::api::core::v1::{
    ClientIPConfig, Service, ServicePort, ServiceSpec, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";

/// Rules of core/v1 Service.
pub struct ServiceRules;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn is_headless(spec: &ServiceSpec) -> bool {
    s(&spec.cluster_ip) == "None"
}

/// The cluster IPs as upstream sees them after normalising `clusterIP` into `clusterIPs`.
fn cluster_ips(spec: &ServiceSpec) -> Vec<String> {
    match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.clone(),
        _ if !s(&spec.cluster_ip).is_empty() => vec![s(&spec.cluster_ip).to_string()],
        _ => Vec::new(),
    }
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    s(&spec.type_) != "ExternalName"
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    matches!(s(&spec.type_), "NodePort" | "LoadBalancer")
}

fn validate_port(
    p: &ServicePort,
    require_name: bool,
    names: &mut HashSet<String>,
    at: &str,
    errs: &mut ErrorList,
) {
    let name = s(&p.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    } else if !name.is_empty() {
        for m in dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{at}.name"), name, m));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
    }
    for m in port_num(p.port) {
        errs.push(FieldError::invalid(format!("{at}.port"), p.port, m));
    }
    match s(&p.protocol) {
        "" => errs.push(FieldError::required(format!("{at}.protocol"), "")),
        proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
            format!("{at}.protocol"),
            proto,
            PROTOCOLS,
        )),
        _ => {}
    }
    match &p.target_port {
        Some(IntOrString::Int(n)) => {
            for m in port_num(*n) {
                errs.push(FieldError::invalid(format!("{at}.targetPort"), *n, m));
            }
        }
        Some(IntOrString::String(n)) => {
            for m in port_name(n) {
                errs.push(FieldError::invalid(
                    format!("{at}.targetPort"),
                    n.as_str(),
                    m,
                ));
            }
        }
        None => {}
    }
}

fn validate_service(svc: &Service) -> ErrorList {
    let mut errs = Vec::new();
    let spec = svc.spec.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    let ty = s(&spec.type_);
    let headless = is_headless(&spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !cluster_ips(&spec).is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            // A CNAME may end in a dot to mark it fully qualified.
            let cname = s(&spec.external_name).trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, m));
                }
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        validate_port(
            p,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
            &mut errs,
        );
    }
    if let Some(sel) = &spec.selector {
        errs.extend(labels(
            serde_json::to_value(sel).ok().as_ref(),
            "spec.selector",
        ));
    }
    match s(&spec.session_affinity) {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        a if !AFFINITIES.contains(&a) => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            a,
            AFFINITIES,
        )),
        "None" if spec.session_affinity_config.is_some() => errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        )),
        _ => {}
    }
    for (i, ip) in cluster_ips(&spec).iter().enumerate() {
        if ip != "None" && ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                format!("spec.clusterIPs[{i}]"),
                ip.as_str(),
                IP_MSG,
            ));
        }
    }
    if let Some(ips) = &spec.cluster_ips
        && !ips.is_empty()
        && !s(&spec.cluster_ip).is_empty()
        && ips[0] != s(&spec.cluster_ip)
    {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            json!(ips),
            "first value must match `clusterIP`",
        ));
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                format!("spec.externalIPs[{i}]"),
                ip.as_str(),
                IP_MSG,
            ));
        }
    }
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, TYPES));
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((s(&p.protocol).to_string(), np)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].nodePort"),
                np,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !seen.insert((s(&p.protocol).to_string(), p.port)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                json!({"protocol": s(&p.protocol), "port": p.port}),
            ));
        }
    }
    errs
}

/// Upstream's `validateUpgradeDowngradeClusterIPs`: cluster IPs may not change once set.
fn validate_cluster_ip_update(new: &ServiceSpec, old: &ServiceSpec) -> ErrorList {
    let mut errs = Vec::new();
    if s(&new.type_) == "ExternalName" || s(&old.type_) == "ExternalName" {
        return errs;
    }
    if is_headless(new) && is_headless(old) {
        return errs;
    }
    let (n, o) = (cluster_ips(new), cluster_ips(old));
    let changed = || FieldError::invalid("spec.clusterIPs[0]", json!(n), "may not change once set");
    if n.len() == o.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    json!(n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                json!(n),
                "primary clusterIP can not be unset",
            ));
        } else if n[0] != o[0] {
            errs.push(changed());
        }
        if n.len() == 1 && s(&new.ip_family_policy) != "SingleStack" {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                json!(n),
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(changed());
    }
    errs
}

/// Upstream's `getServiceExternalIP` with wide output (the server never truncates).
fn external_ip(spec: &ServiceSpec, svc: &Service) -> String {
    let external = spec.external_ips.clone().unwrap_or_default();
    match s(&spec.type_) {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let lb: BTreeSet<String> = svc
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.clone())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| {
                    i.ip.filter(|ip| !ip.is_empty())
                        .or(i.hostname.filter(|h| !h.is_empty()))
                })
                .collect();
            let mut all: Vec<String> = lb.into_iter().collect();
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(&spec.external_name).into(),
        _ => "<unknown>".into(),
    }
}

/// Upstream's `dropTypeDependentFields`: a type change drops the values the new type cannot
/// use, unless the update itself set them.
fn drop_type_dependent_fields(n: &mut ServiceSpec, o: &ServiceSpec) {
    if !needs_cluster_ip(n) {
        if n.cluster_ip == o.cluster_ip && n.cluster_ips == o.cluster_ips {
            n.cluster_ip = None;
            n.cluster_ips = None;
        }
        if n.ip_families == o.ip_families {
            n.ip_families = None;
        }
        if n.ip_family_policy == o.ip_family_policy {
            n.ip_family_policy = None;
        }
    }
    let node_ports = |spec: &ServiceSpec| -> Vec<i32> {
        spec.ports
            .iter()
            .flatten()
            .map(|p| p.node_port.unwrap_or(0))
            .collect()
    };
    if !needs_node_port(n) && node_ports(n) == node_ports(o) {
        for p in n.ports.iter_mut().flatten() {
            p.node_port = None;
        }
    }
    let needs_hc = s(&n.type_) == "LoadBalancer" && s(&n.external_traffic_policy) == "Local";
    if !needs_hc && n.health_check_node_port == o.health_check_node_port {
        n.health_check_node_port = None;
    }
    if s(&n.type_) != "LoadBalancer" {
        n.allocate_load_balancer_node_ports = None;
        if n.load_balancer_class == o.load_balancer_class {
            n.load_balancer_class = None;
        }
    }
    let externally_accessible = matches!(s(&n.type_), "LoadBalancer" | "NodePort")
        || (s(&n.type_) == "ClusterIP" && n.external_ips.as_ref().is_some_and(|e| !e.is_empty()));
    if !externally_accessible && n.external_traffic_policy == o.external_traffic_policy {
        n.external_traffic_policy = None;
    }
}

impl Rules<Service> for ServiceRules {
    const SHORT_NAMES: Names = &["svc"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[
        Sub::Connect {
            name: "proxy",
            kind: "ServiceProxyOptions",
            verbs: PROXY_VERBS,
        },
        Sub::Status,
    ];
    const NAME_RULE: NameRule = NameRule::Dns1035Label;
    const TRACKS_GENERATION: bool = false;

    fn prepare_for_update(&self, new: &mut Service, old: &Service) {
        let (Some(n), Some(o)) = (new.spec.as_mut(), old.spec.as_ref()) else {
            return;
        };
        // As upstream's `patchAllocatedValues`: a replace that omits allocated values keeps them.
        if needs_cluster_ip(o) && needs_cluster_ip(n) {
            if s(&n.cluster_ip).is_empty() {
                n.cluster_ip = o.cluster_ip.clone();
            }
            if n.cluster_ips.as_ref().is_none_or(|v| v.is_empty())
                && o.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
            {
                n.cluster_ips = o.cluster_ips.clone();
            }
        }
        if needs_node_port(o) && needs_node_port(n) {
            let old_ports = o.ports.clone().unwrap_or_default();
            for p in n.ports.iter_mut().flatten() {
                if p.node_port.unwrap_or(0) == 0
                    && let Some(op) = old_ports
                        .iter()
                        .find(|op| op.port == p.port && s(&op.protocol) == s(&p.protocol))
                {
                    p.node_port = op.node_port;
                }
            }
        }
        drop_type_dependent_fields(n, o);
        if s(&n.type_) != "LoadBalancer"
            && let Some(st) = &mut new.status
        {
            st.load_balancer = None;
        }
    }

    fn default(&self, svc: &mut Service) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        if s(&spec.session_affinity).is_empty() {
            spec.session_affinity = Some("None".into());
        }
        match s(&spec.session_affinity) {
            "None" => spec.session_affinity_config = None,
            "ClientIP"
                if spec
                    .session_affinity_config
                    .as_ref()
                    .and_then(|c| c.client_ip.as_ref())
                    .and_then(|c| c.timeout_seconds)
                    .is_none() =>
            {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(10800),
                    }),
                });
            }
            _ => {}
        }
        if s(&spec.type_).is_empty() {
            spec.type_ = Some("ClusterIP".into());
        }
        for p in spec.ports.iter_mut().flatten() {
            if s(&p.protocol).is_empty() {
                p.protocol = Some("TCP".into());
            }
            let unset = match &p.target_port {
                None => true,
                Some(IntOrString::Int(n)) => *n == 0,
                Some(IntOrString::String(n)) => n.is_empty(),
            };
            if unset {
                p.target_port = Some(IntOrString::Int(p.port));
            }
        }
        let ty = s(&spec.type_).to_string();
        let externally_accessible = ty == "LoadBalancer"
            || ty == "NodePort"
            || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()));
        if externally_accessible && s(&spec.external_traffic_policy).is_empty() {
            spec.external_traffic_policy = Some("Cluster".into());
        }
        if spec.internal_traffic_policy.is_none()
            && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
        {
            spec.internal_traffic_policy = Some("Cluster".into());
        }
        if ty == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
        }
        if ty != "ExternalName" && spec.ip_family_policy.is_none() {
            let policy = if spec.ip_families.as_ref().is_some_and(|f| f.len() == 2) {
                "RequireDualStack"
            } else if is_headless(spec) && spec.selector.as_ref().is_none_or(|m| m.is_empty()) {
                "PreferDualStack"
            } else {
                "SingleStack"
            };
            spec.ip_family_policy = Some(policy.into());
        }
    }

    fn validate(&self, svc: &Service) -> ErrorList {
        validate_service(svc)
    }

    fn validate_update(&self, new: &Service, old: &Service) -> ErrorList {
        let mut errs = validate_cluster_ip_update(
            &new.spec.clone().unwrap_or_default(),
            &old.spec.clone().unwrap_or_default(),
        );
        errs.extend(validate_service(new));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Type", SVC_TYPE),
            Column::text("Cluster-IP", SVC_CLUSTER_IP),
            Column::text("External-IP", SVC_EXTERNAL_IPS),
            Column::text("Port(s)", SVC_PORTS),
            Column::AGE,
            Column::wide("Selector", SVC_SELECTOR),
        ])
    }

    fn cells(&self, svc: &Service, raw: &Value) -> Vec<Value> {
        let spec = svc.spec.clone().unwrap_or_default();
        let cluster_ip = cluster_ips(&spec)
            .into_iter()
            .next()
            .unwrap_or_else(|| "<none>".into());
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| match p.node_port.unwrap_or(0) {
                0 => format!("{}/{}", p.port, s(&p.protocol)),
                np => format!("{}:{np}/{}", p.port, s(&p.protocol)),
            })
            .collect();
        let ports = if ports.is_empty() {
            "<none>".into()
        } else {
            ports.join(",")
        };
        vec![
            json!(svc.metadata.name.as_deref().unwrap_or("")),
            json!(s(&spec.type_)),
            json!(cluster_ip),
            json!(external_ip(&spec, svc)),
            json!(ports),
            age_cell(raw),
            json!(format_labels(spec.selector.as_ref())),
        ]
    }

    fn field(&self, svc: &Service, field: &str) -> Option<String> {
        let spec = svc.spec.clone().unwrap_or_default();
        match field {
            "spec.clusterIP" => Some(s(&spec.cluster_ip).into()),
            "spec.type" => Some(s(&spec.type_).into()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::test_support::{created, messages};
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy() -> Typed<Service, ServiceRules> {
        Typed::new(
            super::super::tests::info("Service", "services"),
            ServiceRules,
        )
    }

    #[test]
    fn a_new_service_gets_upstreams_defaults() {
        let s = strategy();
        let v = created(
            &s,
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        );
        let spec = &v["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["ports"][0]["targetPort"], 80);
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert!(s.validate(&v).is_empty(), "{:?}", s.validate(&v));
    }

    #[test]
    fn service_shape_errors_match_upstream() {
        let s = strategy();
        let v = created(
            &s,
            json!({"metadata": {"name": "web"}, "spec": {"type": "Bogus",
                "ports": [{"port": 80, "nodePort": 30080}, {"name": "b", "port": 0}]}}),
        );
        assert_eq!(
            messages(&s.validate(&v)),
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                r#"spec.type: Unsupported value: "Bogus": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#,
            ]
        );
        let v = created(
            &s,
            json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "nodePort": 30080}]}}),
        );
        assert_eq!(
            messages(&s.validate(&v)),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn cluster_ip_is_immutable_except_to_or_from_external_name() {
        let s = strategy();
        let old = created(
            &s,
            json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"], "ports": [{"port": 80}]}}),
        );
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.0.0.11");
        new["spec"]["clusterIPs"] = json!(["10.0.0.11"]);
        assert_eq!(
            messages(&s.validate_update(&new, &old)),
            vec![
                r#"spec.clusterIPs[0]: Invalid value: []string{"10.0.0.11"}: may not change once set"#
            ]
        );
        // A replace without the allocated IP keeps the old one.
        let mut omitted = old.clone();
        omitted["spec"].as_object_mut().unwrap().remove("clusterIP");
        omitted["spec"]
            .as_object_mut()
            .unwrap()
            .remove("clusterIPs");
        s.prepare_for_update(&mut omitted, &old);
        assert_eq!(omitted["spec"]["clusterIP"], "10.0.0.10");
        assert!(s.validate_update(&omitted, &old).is_empty());
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        ext["spec"]["externalName"] = json!("example.com.");
        s.prepare_for_update(&mut ext, &old);
        s.default(&mut ext);
        assert!(ext["spec"].get("clusterIP").is_none());
        assert!(ext["spec"].get("ipFamilyPolicy").is_none());
        assert!(
            s.validate_update(&ext, &old).is_empty(),
            "{:?}",
            s.validate_update(&ext, &old)
        );
    }

    #[test]
    fn cells_render_ports_external_ips_and_selector() {
        let s = strategy();
        let v = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "10.0.0.10",
            "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        let cells = s.cells(&v);
        assert_eq!(
            &cells[..5],
            &[
                json!("web"),
                json!("NodePort"),
                json!("10.0.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP")
            ]
        );
        assert_eq!(cells[6], "a=1,b=2");
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(
            s.cells(&lb)[2..5],
            [json!("<none>"), json!("<pending>"), json!("<none>")]
        );
        assert_eq!(
            s.field(&json!({"metadata": {}}), "spec.type").as_deref(),
            Some("")
        );
    }
}
