//! Rules for the small cluster-plumbing kinds: PodDisruptionBudget (policy/v1), Lease
//! (coordination), EndpointSlice (discovery), PriorityClass (scheduling), RuntimeClass (node),
//! CertificateSigningRequest (certificates).

use super::workload::{
    intstr_string, label_selector, not_more_than_100_percent, positive_int_or_percent,
};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::Rules;
use crate::registry::table::{Column, age_cell, human_duration, name_cell};
use crate::registry::validation::{dns1123_label, immutable};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

/// Upstream's `HighestUserDefinablePriority`.
const HIGHEST_USER_PRIORITY: i32 = 1_000_000_000;

/// PodDisruptionBudget: minAvailable xor maxUnavailable; upstream's `printPodDisruptionBudget`.
pub struct PodDisruptionBudgetRules;

impl Rules<PodDisruptionBudget> for PodDisruptionBudgetRules {
    fn validate(&self, pdb: &PodDisruptionBudget) -> ErrorList {
        let mut errs = Vec::new();
        let spec = pdb.spec.clone().unwrap_or_default();
        if spec.min_available.is_some() && spec.max_unavailable.is_some() {
            errs.push(FieldError::invalid(
                "spec",
                serde_json::to_value(&spec).unwrap_or(Value::Null),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        for (name, v) in [
            ("minAvailable", &spec.min_available),
            ("maxUnavailable", &spec.max_unavailable),
        ] {
            if let Some(v) = v {
                let f = format!("spec.{name}");
                errs.extend(positive_int_or_percent(v, &f));
                errs.extend(not_more_than_100_percent(v, &f));
            }
        }
        if let Some(sel) = &spec.selector {
            errs.extend(label_selector(sel, "spec.selector"));
        }
        if let Some(p) = spec.unhealthy_pod_eviction_policy.as_deref()
            && !matches!(p, "IfHealthyBudget" | "AlwaysAllow")
        {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Min Available",
                "The minimum number of pods that must be available.",
            ),
            Column::text(
                "Max Unavailable",
                "The maximum number of pods that may be unavailable.",
            ),
            Column::integer(
                "Allowed Disruptions",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, pdb: &PodDisruptionBudget, raw: &Value) -> Vec<Value> {
        let spec = pdb.spec.clone().unwrap_or_default();
        let show =
            |v: Option<IntOrString>| v.as_ref().map_or_else(|| "N/A".to_string(), intstr_string);
        vec![
            name_cell(raw),
            show(spec.min_available).into(),
            show(spec.max_unavailable).into(),
            json!(pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed)),
            age_cell(raw),
        ]
    }
}

/// Lease: upstream's `printLease`.
pub struct LeaseRules;

impl Rules<Lease> for LeaseRules {
    fn validate(&self, l: &Lease) -> ErrorList {
        let mut errs = Vec::new();
        let spec = l.spec.clone().unwrap_or_default();
        if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                t,
                "must be greater than or equal to 0",
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Holder",
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, l: &Lease, raw: &Value) -> Vec<Value> {
        let holder = l.spec.as_ref().and_then(|s| s.holder_identity.clone());
        vec![
            name_cell(raw),
            holder.unwrap_or_default().into(),
            age_cell(raw),
        ]
    }
}

/// EndpointSlice: addressType required and immutable; port defaults; upstream's printer.
pub struct EndpointSliceRules;

/// Upstream's `listWithMoreString`: three items, then "+ N more...", `<unset>` when empty.
fn list_with_more(items: Vec<String>) -> String {
    let count = items.len();
    let shown = items.into_iter().take(3).collect::<Vec<_>>().join(",");
    if count > 3 {
        format!("{shown} + {} more...", count - 3)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

impl Rules<EndpointSlice> for EndpointSliceRules {
    fn default(&self, es: &mut EndpointSlice) {
        for p in es.ports.iter_mut().flatten() {
            p.name.get_or_insert_with(String::new);
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    fn validate(&self, es: &EndpointSlice) -> ErrorList {
        let mut errs = Vec::new();
        match es.address_type.as_str() {
            "" => errs.push(FieldError::required("addressType", "")),
            "IPv4" | "IPv6" | "FQDN" => {}
            other => errs.push(FieldError::not_supported(
                "addressType",
                other,
                &["FQDN", "IPv4", "IPv6"],
            )),
        }
        for (i, ep) in es.endpoints.iter().enumerate() {
            if ep.addresses.is_empty() {
                errs.push(FieldError::required(
                    format!("endpoints[{i}].addresses"),
                    "must contain at least 1 address",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &EndpointSlice, old: &EndpointSlice) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(immutable(
            Some(&json!(new.address_type)),
            Some(&json!(old.address_type)),
            "addressType",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "AddressType",
                "addressType specifies the type of address carried by this EndpointSlice.",
            ),
            Column::text(
                "Ports",
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            Column::text(
                "Endpoints",
                "endpoints is a list of unique endpoints in this slice.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, es: &EndpointSlice, raw: &Value) -> Vec<Value> {
        let ports = es
            .ports
            .iter()
            .flatten()
            .map(|p| match (p.port, p.name.as_deref()) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            })
            .collect();
        let addresses = es
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        vec![
            name_cell(raw),
            es.address_type.clone().into(),
            list_with_more(ports).into(),
            list_with_more(addresses).into(),
            age_cell(raw),
        ]
    }
}

/// PriorityClass: reserved names, value bound and immutability; upstream's printer.
pub struct PriorityClassRules;

impl Rules<PriorityClass> for PriorityClassRules {
    fn default(&self, pc: &mut PriorityClass) {
        pc.preemption_policy
            .get_or_insert_with(|| "PreemptLowerPriority".into());
    }

    fn validate(&self, pc: &PriorityClass) -> ErrorList {
        let mut errs = Vec::new();
        let name = pc.metadata.name.as_deref().unwrap_or("");
        let system = matches!(name, "system-cluster-critical" | "system-node-critical");
        if name.starts_with("system-") && !system {
            errs.push(FieldError::forbidden(
                "metadata.name",
                "priority class names with 'system-' prefix are reserved",
            ));
        }
        if !system && pc.value > HIGHEST_USER_PRIORITY {
            errs.push(FieldError::forbidden(
                "value",
                format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            ));
        }
        if let Some(p) = pc.preemption_policy.as_deref()
            && !matches!(p, "PreemptLowerPriority" | "Never")
        {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
        errs
    }

    fn validate_update(&self, new: &PriorityClass, old: &PriorityClass) -> ErrorList {
        let mut errs = self.validate(new);
        if new.value != old.value {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        errs.extend(immutable(
            Some(&json!(new.preemption_policy)),
            Some(&json!(old.preemption_policy)),
            "preemptionPolicy",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer(
                "Value",
                "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
            ),
            Column {
                type_: std::borrow::Cow::Borrowed("boolean"),
                ..Column::text(
                    "Global-Default",
                    "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
                )
            },
            Column::AGE,
            Column::text(
                "PreemptionPolicy",
                "preemptionPolicy is the Policy for preempting pods with lower priority.",
            ),
        ])
    }

    fn cells(&self, pc: &PriorityClass, raw: &Value) -> Vec<Value> {
        vec![
            name_cell(raw),
            json!(pc.value),
            json!(pc.global_default.unwrap_or(false)),
            age_cell(raw),
            pc.preemption_policy.clone().unwrap_or_default().into(),
        ]
    }
}

/// RuntimeClass: handler a DNS label, immutable; upstream's printer.
pub struct RuntimeClassRules;

impl Rules<RuntimeClass> for RuntimeClassRules {
    fn validate(&self, rc: &RuntimeClass) -> ErrorList {
        dns1123_label(&rc.handler)
            .into_iter()
            .map(|msg| FieldError::invalid("handler", rc.handler.as_str(), msg))
            .collect()
    }

    fn validate_update(&self, new: &RuntimeClass, old: &RuntimeClass) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(immutable(
            Some(&json!(new.handler)),
            Some(&json!(old.handler)),
            "handler",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Handler",
                "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, rc: &RuntimeClass, raw: &Value) -> Vec<Value> {
        vec![name_cell(raw), rc.handler.clone().into(), age_cell(raw)]
    }
}

/// CertificateSigningRequest: request and signerName required; printer; `spec.signerName` field.
pub struct CertificateSigningRequestRules;

impl Rules<CertificateSigningRequest> for CertificateSigningRequestRules {
    fn validate(&self, csr: &CertificateSigningRequest) -> ErrorList {
        let mut errs = Vec::new();
        if csr.spec.request.0.is_empty() {
            errs.push(FieldError::required("spec.request", ""));
        }
        if csr.spec.signer_name.is_empty() {
            errs.push(FieldError::required("spec.signerName", ""));
        }
        if let Some(s) = csr.spec.expiration_seconds.filter(|s| *s < 600) {
            errs.push(FieldError::invalid(
                "spec.expirationSeconds",
                s,
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
        errs
    }

    fn validate_update(
        &self,
        new: &CertificateSigningRequest,
        old: &CertificateSigningRequest,
    ) -> ErrorList {
        let mut errs = self.validate(new);
        if new.spec != old.spec {
            errs.push(FieldError::invalid(
                "spec",
                serde_json::to_value(&new.spec).unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::AGE,
            Column::text(
                "SignerName",
                "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`.",
            ),
            Column::text("Requestor", "Base64-encoded PKCS#10 CSR data"),
            Column::text(
                "RequestedDuration",
                "expirationSeconds is the requested duration of validity of the issued certificate.",
            ),
            Column::text(
                "Condition",
                "Conditions applied to the request, such as approval or denial.",
            ),
        ])
    }

    fn cells(&self, csr: &CertificateSigningRequest, raw: &Value) -> Vec<Value> {
        let status = csr.status.clone().unwrap_or_default();
        let has = |t: &str| status.conditions.iter().flatten().any(|c| c.type_ == t);
        let mut condition = if has("Denied") {
            "Denied".to_string()
        } else if has("Approved") {
            "Approved".to_string()
        } else {
            "Pending".to_string()
        };
        if has("Failed") {
            condition.push_str(",Failed");
        }
        if status.certificate.is_some_and(|c| !c.0.is_empty()) {
            condition.push_str(",Issued");
        }
        let signer = if csr.spec.signer_name.is_empty() {
            "<none>".to_string()
        } else {
            csr.spec.signer_name.clone()
        };
        let duration = csr
            .spec
            .expiration_seconds
            .map_or_else(|| "<none>".to_string(), |s| human_duration(i64::from(s)));
        vec![
            name_cell(raw),
            age_cell(raw),
            signer.into(),
            csr.spec.username.clone().unwrap_or_default().into(),
            duration.into(),
            condition.into(),
        ]
    }

    fn field(&self, csr: &CertificateSigningRequest, field: &str) -> Option<String> {
        match field {
            "spec.signerName" => Some(csr.spec.signer_name.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("x", "Thing", rules)
    }

    #[test]
    fn pdbs_take_min_available_or_max_unavailable_but_not_both() {
        let s = strategy::<PodDisruptionBudget, _>(PodDisruptionBudgetRules);
        let obj = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "x"}}}});
        let errs = s.validate(&obj);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .ends_with("minAvailable and maxUnavailable cannot be both set")
        );
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "1");
        assert_eq!(cells[2], "50%");
        assert_eq!(cells[3], 0);
    }

    #[test]
    fn endpoint_slices_need_an_address_type_and_print_ports_and_addresses() {
        let s = strategy::<EndpointSlice, _>(EndpointSliceRules);
        let obj = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
        assert!(s.validate(&obj).is_empty());
        let cells = s.cells(&obj);
        assert_eq!(cells[2], "80");
        assert_eq!(cells[3], "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");
        let mut new = obj.clone();
        new["addressType"] = json!("IPv6");
        assert_eq!(s.validate_update(&new, &obj).len(), 1);
        let mut empty = obj;
        empty["addressType"] = json!("");
        assert_eq!(
            s.validate(&empty)[0].to_string(),
            "addressType: Required value"
        );
    }

    #[test]
    fn priority_classes_reserve_system_names_and_keep_their_value() {
        let s = strategy::<PriorityClass, _>(PriorityClassRules);
        let mut obj = json!({"metadata": {"name": "system-mine"}, "value": 10});
        s.default(&mut obj);
        assert_eq!(obj["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(
            s.validate(&obj)[0].to_string(),
            "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"
        );
        let cells = s.cells(&obj);
        assert_eq!(cells[1], 10);
        assert_eq!(cells[2], false);
    }

    #[test]
    fn runtime_class_handlers_are_dns_labels() {
        let s = strategy::<RuntimeClass, _>(RuntimeClassRules);
        let obj = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        assert!(s.validate(&obj).is_empty());
        let bad = json!({"metadata": {"name": "gvisor"}, "handler": ""});
        assert!(
            s.validate(&bad)[0]
                .to_string()
                .starts_with("handler: Invalid value: \"\"")
        );
    }

    #[test]
    fn csrs_print_their_condition_and_select_on_signer_name() {
        let s = strategy::<CertificateSigningRequest, _>(CertificateSigningRequestRules);
        let obj = json!({"metadata": {"name": "c"}, "spec": {"request": "YWJj", "signerName": "kubernetes.io/kube-apiserver-client", "username": "alice", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}]}});
        let cells = s.cells(&obj);
        assert_eq!(cells[2], "kubernetes.io/kube-apiserver-client");
        assert_eq!(cells[3], "alice");
        assert_eq!(cells[4], "24h");
        assert_eq!(cells[5], "Approved");
        assert_eq!(
            s.field(&obj, "spec.signerName").as_deref(),
            Some("kubernetes.io/kube-apiserver-client")
        );
        assert_eq!(s.field(&json!({}), "spec.signerName").as_deref(), Some(""));
    }
}
