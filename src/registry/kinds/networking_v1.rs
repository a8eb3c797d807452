//! networking.k8s.io/v1 rules: Ingress, IngressClass, NetworkPolicy, IPAddress and ServiceCIDR
//! defaults, the validation users meet most, and `kubectl get` columns.

use super::workload::{format_selector, label_selector};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::{dns1035_label, dns1123_subdomain, immutable};
use k8s_openapi::api::networking::v1::{
    IPAddress, Ingress, IngressBackend, IngressClass, NetworkPolicy, NetworkPolicySpec, ServiceCIDR,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn to_json<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Ingress: upstream's `ValidateIngressCreate` (the common checks) and `printIngress`.
pub struct IngressRules;

fn validate_backend(b: &IngressBackend, path: &str, errs: &mut ErrorList) {
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            if r.kind.is_empty() {
                errs.push(FieldError::required(format!("{path}.resource.kind"), ""));
            }
            if r.name.is_empty() {
                errs.push(FieldError::required(format!("{path}.resource.name"), ""));
            }
        }
        (None, Some(svc)) => {
            if svc.name.is_empty() {
                errs.push(FieldError::required(format!("{path}.service.name"), ""));
            } else {
                for msg in dns1035_label(&svc.name) {
                    errs.push(FieldError::invalid(
                        format!("{path}.service.name"),
                        svc.name.as_str(),
                        msg,
                    ));
                }
            }
            let port = svc.port.clone().unwrap_or_default();
            let name = port.name.as_deref().unwrap_or("");
            let number = port.number.unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (true, true) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
                (true, false) if !(1..=65535).contains(&number) => errs.push(FieldError::invalid(
                    format!("{path}.service.port.number"),
                    number,
                    "must be between 1 and 65535, inclusive",
                )),
                _ => {}
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

impl Rules<Ingress> for IngressRules {
    const SHORT_NAMES: Names = &["ing"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn validate(&self, ing: &Ingress) -> ErrorList {
        let mut errs = Vec::new();
        let spec = ing.spec.clone().unwrap_or_default();
        let rules = spec.rules.clone().unwrap_or_default();
        if spec.default_backend.is_none() && rules.is_empty() {
            errs.push(FieldError::invalid(
                "spec",
                to_json(&rules),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(b) = &spec.default_backend {
            validate_backend(b, "spec.defaultBackend", &mut errs);
        }
        for (i, rule) in rules.iter().enumerate() {
            let rp = format!("spec.rules[{i}]");
            if let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) {
                let check = host.strip_prefix("*.").unwrap_or(host);
                for msg in dns1123_subdomain(check) {
                    errs.push(FieldError::invalid(format!("{rp}.host"), host, msg));
                }
            }
            let Some(http) = &rule.http else { continue };
            if http.paths.is_empty() {
                errs.push(FieldError::required(format!("{rp}.http.paths"), ""));
            }
            for (j, p) in http.paths.iter().enumerate() {
                let pp = format!("{rp}.http.paths[{j}]");
                let path = p.path.as_deref().unwrap_or("");
                match p.path_type.as_str() {
                    "" => errs.push(FieldError::required(
                        format!("{pp}.pathType"),
                        "pathType must be specified",
                    )),
                    "Exact" | "Prefix" => {
                        if !path.starts_with('/') {
                            errs.push(FieldError::invalid(
                                format!("{pp}.path"),
                                path,
                                "must be an absolute path",
                            ));
                        }
                    }
                    "ImplementationSpecific" => {
                        if !path.is_empty() && !path.starts_with('/') {
                            errs.push(FieldError::invalid(
                                format!("{pp}.path"),
                                path,
                                "must be an absolute path",
                            ));
                        }
                    }
                    other => errs.push(FieldError::not_supported(
                        format!("{pp}.pathType"),
                        other,
                        &["Exact", "ImplementationSpecific", "Prefix"],
                    )),
                }
                validate_backend(&p.backend, &format!("{pp}.backend"), &mut errs);
            }
        }
        if let Some(class) = &spec.ingress_class_name {
            for msg in dns1123_subdomain(class) {
                errs.push(FieldError::invalid(
                    "spec.ingressClassName",
                    class.as_str(),
                    msg,
                ));
            }
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Class",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            Column::text(
                "Hosts",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            Column::text(
                "Address",
                "Address is a list containing ingress points for the load-balancer",
            ),
            Column::text("Ports", "Ports of TLS configurations that open"),
            Column::AGE,
        ])
    }

    fn cells(&self, ing: &Ingress, raw: &Value) -> Vec<Value> {
        let spec = ing.spec.clone().unwrap_or_default();
        let rules = spec.rules.unwrap_or_default();
        let hosts: Vec<&str> = rules
            .iter()
            .take(3)
            .filter_map(|r| r.host.as_deref().filter(|h| !h.is_empty()))
            .collect();
        let hosts = if hosts.is_empty() {
            "*".to_string()
        } else if rules.len() > 3 {
            format!("{} + {} more...", hosts.join(","), rules.len() - 3)
        } else {
            hosts.join(",")
        };
        let address: BTreeSet<String> = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.ip.filter(|s| !s.is_empty()).or(i.hostname))
            .filter(|s| !s.is_empty())
            .collect();
        let mut address = address.into_iter().collect::<Vec<_>>().join(",");
        // Upstream clips the address to 16 bytes outside `-o wide`; tables always carry the short form.
        if address.len() > 16 {
            address = format!("{}...", &address[..13]);
        }
        let ports = if spec.tls.is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        vec![
            name_cell(raw),
            spec.ingress_class_name
                .unwrap_or_else(|| "<none>".into())
                .into(),
            hosts.into(),
            address.into(),
            ports.into(),
            age_cell(raw),
        ]
    }
}

/// IngressClass: controller required and immutable; upstream's `printIngressClass`.
pub struct IngressClassRules;

impl Rules<IngressClass> for IngressClassRules {
    fn validate(&self, ic: &IngressClass) -> ErrorList {
        let controller = ic.spec.as_ref().and_then(|s| s.controller.as_deref());
        let mut errs = Vec::new();
        match controller {
            None | Some("") => errs.push(FieldError::required("spec.controller", "")),
            Some(c) if c.len() > 250 => errs.push(FieldError::too_long("spec.controller", 250)),
            Some(_) => {}
        }
        errs
    }

    fn validate_update(&self, new: &IngressClass, old: &IngressClass) -> ErrorList {
        let mut errs = self.validate(new);
        let c = |ic: &IngressClass| to_json(&ic.spec.as_ref().and_then(|s| s.controller.clone()));
        errs.extend(immutable(Some(&c(new)), Some(&c(old)), "spec.controller"));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Controller",
                "Controller that is responsible for handling this class",
            ),
            Column::text(
                "Parameters",
                "A reference to a resource with additional parameters",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, ic: &IngressClass, raw: &Value) -> Vec<Value> {
        let spec = ic.spec.clone().unwrap_or_default();
        let parameters = spec.parameters.map_or_else(
            || "<none>".to_string(),
            |p| match p.api_group {
                Some(g) => format!("{}.{g}/{}", p.kind, p.name),
                None => format!("{}/{}", p.kind, p.name),
            },
        );
        vec![
            name_cell(raw),
            spec.controller.unwrap_or_default().into(),
            parameters.into(),
            age_cell(raw),
        ]
    }
}

/// NetworkPolicy: upstream's `SetDefaults_NetworkPolicy`, selector checks and `printNetworkPolicy`.
pub struct NetworkPolicyRules;

impl Rules<NetworkPolicy> for NetworkPolicyRules {
    const SHORT_NAMES: Names = &["netpol"];

    fn default(&self, np: &mut NetworkPolicy) {
        let spec = np.spec.get_or_insert_with(NetworkPolicySpec::default);
        if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".into());
            }
            spec.policy_types = Some(types);
        }
        let ingress_ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten());
        let egress_ports = spec
            .egress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten());
        for p in ingress_ports.chain(egress_ports) {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    fn validate(&self, np: &NetworkPolicy) -> ErrorList {
        let mut errs = Vec::new();
        let spec = np.spec.clone().unwrap_or_default();
        if let Some(sel) = &spec.pod_selector {
            errs.extend(label_selector(sel, "spec.podSelector"));
        }
        for (i, t) in spec.policy_types.iter().flatten().enumerate() {
            if !matches!(t.as_str(), "Ingress" | "Egress") {
                errs.push(FieldError::not_supported(
                    format!("spec.policyTypes[{i}]"),
                    t.as_str(),
                    &["Ingress", "Egress"],
                ));
            }
        }
        if spec.policy_types.as_ref().is_some_and(|t| t.len() > 2) {
            errs.push(FieldError::invalid(
                "spec.policyTypes",
                to_json(&spec.policy_types),
                "may not specify more than two policyTypes",
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Pod-Selector",
                "podSelector selects the pods to which this NetworkPolicy object applies.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, np: &NetworkPolicy, raw: &Value) -> Vec<Value> {
        let sel = np.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
        let sel = sel.cloned().unwrap_or_default();
        vec![
            name_cell(raw),
            format_selector(Some(&sel)).into(),
            age_cell(raw),
        ]
    }
}

/// IPAddress: parentRef required and immutable; upstream's `printIPAddress` (no Age column).
pub struct IPAddressRules;

impl Rules<IPAddress> for IPAddressRules {
    const SHORT_NAMES: Names = &["ip"];

    fn validate(&self, ip: &IPAddress) -> ErrorList {
        let mut errs = Vec::new();
        let name = ip.metadata.name.as_deref().unwrap_or("");
        if !name.is_empty() && name.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
        let parent = ip.spec.as_ref().map(|s| &s.parent_ref);
        match parent {
            None => errs.push(FieldError::required("spec.parentRef", "")),
            Some(p) => {
                if p.name.is_empty() {
                    errs.push(FieldError::required("spec.parentRef.name", ""));
                }
                if p.resource.is_empty() {
                    errs.push(FieldError::required("spec.parentRef.resource", ""));
                }
            }
        }
        errs
    }

    fn validate_update(&self, new: &IPAddress, old: &IPAddress) -> ErrorList {
        let mut errs = self.validate(new);
        let p = |ip: &IPAddress| to_json(&ip.spec.as_ref().map(|s| s.parent_ref.clone()));
        errs.extend(immutable(Some(&p(new)), Some(&p(old)), "spec.parentRef"));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "ParentRef",
                "ParentRef references the resource that an IPAddress is attached to. An IPAddress must reference a parent object.",
            ),
        ])
    }

    fn cells(&self, ip: &IPAddress, raw: &Value) -> Vec<Value> {
        let parent = ip.spec.as_ref().map(|s| &s.parent_ref).map_or_else(
            || "<none>".to_string(),
            |p| {
                let group = p.group.as_deref().unwrap_or("");
                let mut s = if group.is_empty() {
                    p.resource.to_lowercase()
                } else {
                    format!("{}.{group}", p.resource).to_lowercase()
                };
                if let Some(ns) = p.namespace.as_deref().filter(|n| !n.is_empty()) {
                    s = format!("{s}/{ns}");
                }
                format!("{s}/{}", p.name)
            },
        );
        vec![name_cell(raw), parent.into()]
    }
}

/// ServiceCIDR: one or two CIDRs, fixed once set; upstream's `printServiceCIDR`.
pub struct ServiceCIDRRules;

impl Rules<ServiceCIDR> for ServiceCIDRRules {
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn validate(&self, sc: &ServiceCIDR) -> ErrorList {
        let mut errs = Vec::new();
        let cidrs = sc
            .spec
            .as_ref()
            .and_then(|s| s.cidrs.clone())
            .unwrap_or_default();
        if cidrs.is_empty() {
            errs.push(FieldError::required(
                "spec.cidrs",
                "at least one CIDR required",
            ));
        } else if cidrs.len() > 2 {
            errs.push(FieldError::invalid(
                "spec.cidrs",
                to_json(&cidrs),
                "may only hold up to 2 values",
            ));
        }
        for (i, c) in cidrs.iter().enumerate() {
            if c.parse::<ipnet::IpNet>().is_err() {
                errs.push(FieldError::invalid(
                    format!("spec.cidrs[{i}]"),
                    c.as_str(),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &ServiceCIDR, old: &ServiceCIDR) -> ErrorList {
        let mut errs = self.validate(new);
        let c = |s: &ServiceCIDR| to_json(&s.spec.as_ref().and_then(|s| s.cidrs.clone()));
        errs.extend(immutable(Some(&c(new)), Some(&c(old)), "spec.cidrs"));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "CIDRs",
                "CIDRs defines the IP blocks in CIDR notation (e.g. \"192.168.0.0/24\" or \"2001:db8::/64\") from which to assign service cluster IPs.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, sc: &ServiceCIDR, raw: &Value) -> Vec<Value> {
        let cidrs = sc
            .spec
            .as_ref()
            .and_then(|s| s.cidrs.clone())
            .unwrap_or_default();
        vec![name_cell(raw), json!(cidrs.join(",")), age_cell(raw)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("networking.k8s.io", "Thing", rules)
    }

    use super::super::test_support::messages;

    #[test]
    fn ingress_paths_need_a_path_type_and_rows_list_hosts() {
        let s = strategy::<Ingress, _>(IngressRules);
        let mut ing = json!({
            "metadata": {"name": "web"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}}]}
        });
        let obj = s.decode(ing.clone()).unwrap().object;
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "nginx");
        assert_eq!(cells[2], "a.example.com");
        assert_eq!(cells[4], "80");
        ing["spec"]["rules"][0]["http"]["paths"][0]
            .as_object_mut()
            .unwrap()
            .remove("pathType");
        let obj = s.decode(ing).unwrap().object;
        assert_eq!(
            messages(&s.validate(&obj)),
            vec![
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
            ]
        );
    }

    #[test]
    fn network_policies_default_to_ingress_and_tcp() {
        let s = strategy::<NetworkPolicy, _>(NetworkPolicyRules);
        let mut obj = s
            .decode(json!({
                "metadata": {"name": "deny"},
                "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "egress": [{"ports": [{"port": 53}]}]}
            }))
            .unwrap()
            .object;
        s.default(&mut obj);
        assert_eq!(obj["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(obj["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(s.cells(&obj)[1], "app=db");
    }

    #[test]
    fn ip_addresses_print_their_parent() {
        let s = strategy::<IPAddress, _>(IPAddressRules);
        let obj = json!({"metadata": {"name": "10.0.0.1"}, "spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "kubernetes"}}});
        assert_eq!(s.cells(&obj)[1], "services/default/kubernetes");
        assert!(s.validate(&obj).is_empty());
    }
}
