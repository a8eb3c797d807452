//! certificates.k8s.io/v1 rules: CertificateSigningRequest validation (request and signerName
//! required, spec immutable), upstream's printer and the `spec.signerName` field selector.

use crate::auth::UserInfo;
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell, human_duration, name_cell};
use crate::registry::validation::NameRule;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::Value;

/// CertificateSigningRequest: request and signerName required; printer; `spec.signerName` field.
pub struct CertificateSigningRequestRules;

impl Rules<CertificateSigningRequest> for CertificateSigningRequestRules {
    const SHORT_NAMES: Names = &["csr"];
    // Upstream: "We don't care what you call your certificate requests" — kubelets name them
    // node-csr-<base64url of the request's hash>, capitals and underscores included.
    const NAME_RULE: NameRule = NameRule::PathSegment;
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Approval];
    const TRACKS_GENERATION: bool = false;

    /// Upstream's PrepareForCreate: the requester's identity replaces whatever the request
    /// said, and no request is created approved.
    fn prepare_for_create_by(&self, csr: &mut CertificateSigningRequest, user: &UserInfo) {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        csr.spec.username = some(&user.name);
        csr.spec.uid = some(&user.uid);
        csr.spec.groups = (!user.groups.is_empty()).then(|| user.groups.clone());
        csr.spec.extra = (!user.extra.is_empty()).then(|| {
            user.extra
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        csr.status = None;
    }

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
    use serde_json::json;

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("certificates.k8s.io", "Thing", rules)
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
