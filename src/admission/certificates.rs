//! The CertificateSigningRequest plugins, as upstream's: CertificateApproval (approving needs
//! the `approve` verb on the request's signer), CertificateSigning (issuing a certificate needs
//! `sign` on it) — both asked of the authorizer as `signers` of certificates.k8s.io, by name or
//! by the signer's `<domain>/*` — and CertificateSubjectRestriction (no `system:masters` client
//! certificate through the kube-apiserver-client signer).

use super::{Attributes, Operation, Result, Validating};
use crate::auth::Authorizer;
use crate::auth::authorizer::{Attributes as AuthzAttributes, Decision};
use base64::Engine;
use serde_json::Value;
use std::sync::Arc;

/// Which of the three plugins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Approval,
    Signing,
    SubjectRestriction,
}

/// One of the CertificateSigningRequest plugins.
pub struct Certificates {
    check: Check,
    authorizer: Arc<Authorizer>,
}

impl Certificates {
    /// CertificateApproval.
    pub fn approval(authorizer: Arc<Authorizer>) -> Self {
        Self {
            check: Check::Approval,
            authorizer,
        }
    }

    /// CertificateSigning.
    pub fn signing(authorizer: Arc<Authorizer>) -> Self {
        Self {
            check: Check::Signing,
            authorizer,
        }
    }

    /// CertificateSubjectRestriction.
    pub fn subject_restriction(authorizer: Arc<Authorizer>) -> Self {
        Self {
            check: Check::SubjectRestriction,
            authorizer,
        }
    }

    /// Whether `a`'s user may `verb` the signer `signer` (by name, else by `<domain>/*`), as
    /// upstream's `IsAuthorizedForSignerName`.
    async fn may(&self, a: &Attributes<'_>, verb: &str, signer: &str) -> bool {
        let domain_wildcard = signer.split_once('/').map(|(d, _)| format!("{d}/*"));
        for name in std::iter::once(signer.to_string()).chain(domain_wildcard) {
            let attributes = AuthzAttributes {
                user: a.user,
                verb,
                resource_request: true,
                path: "",
                namespace: "",
                api_group: "certificates.k8s.io",
                api_version: "*",
                resource: "signers",
                subresource: "",
                name: &name,
                field_selector: "",
            };
            if self.authorizer.authorize(&attributes).await.decision == Decision::Allow {
                return true;
            }
        }
        false
    }
}

/// The Organizations of the base64 PEM certificate request `request`.
fn organizations(request: &str) -> std::result::Result<Vec<String>, String> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request)
        .map_err(|e| e.to_string())?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| e.to_string())?;
    let (_, csr) = <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(&pem.contents)
        .map_err(|e| e.to_string())?;
    Ok(csr
        .certification_request_info
        .subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect())
}

#[async_trait::async_trait]
impl Validating for Certificates {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        if a.resource.group != "certificates.k8s.io"
            || a.resource.resource != "certificatesigningrequests"
        {
            return Ok(());
        }
        let Some(csr) = object else { return Ok(()) };
        let signer = csr["spec"]["signerName"].as_str().unwrap_or("");
        match self.check {
            Check::Approval
                if a.subresource == "approval" && !self.may(a, "approve", signer).await =>
            {
                return Err(a.forbidden(format!(
                    "user not permitted to approve requests with signerName {signer:?}"
                )));
            }
            Check::Signing if a.subresource == "status" => {
                let old = a.old_object.unwrap_or(csr);
                if old["status"]["certificate"] == csr["status"]["certificate"] {
                    return Ok(());
                }
                let signer = old["spec"]["signerName"].as_str().unwrap_or("");
                if !self.may(a, "sign", signer).await {
                    return Err(a.forbidden(format!(
                        "user not permitted to sign requests with signerName {signer:?}"
                    )));
                }
            }
            Check::SubjectRestriction
                if a.subresource.is_empty()
                    && a.operation == Operation::Create
                    && signer == "kubernetes.io/kube-apiserver-client" =>
            {
                let request = csr["spec"]["request"].as_str().unwrap_or("");
                let orgs = organizations(request)
                    .map_err(|e| a.forbidden(format!("failed to parse CSR: {e}")))?;
                if orgs.iter().any(|o| o == "system:masters") {
                    return Err(a.forbidden(format!(
                        "use of {signer} signer with system:masters group is not allowed"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
