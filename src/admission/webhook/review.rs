//! AdmissionReview (admission.k8s.io/v1 and v1beta1): the request a webhook is sent, and what
//! its answer may say, checked as upstream's `VerifyAdmissionResponse`.

use crate::registry::RegistryError;
use base64::Engine;
use serde_json::{Value, json};

/// The AdmissionReview of `version` carrying `request`.
pub(super) fn review(version: &str, request: Value) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": format!("admission.k8s.io/{version}"),
        "request": request,
    })
}

/// What a webhook answered.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    /// `response.allowed`.
    pub allowed: bool,
    /// `response.status`, for a refusal.
    pub status: Option<Value>,
    /// The decoded JSONPatch of a mutating webhook.
    pub patch: Option<json_patch::Patch>,
    /// `response.warnings`.
    pub warnings: Vec<String>,
    /// `response.auditAnnotations`.
    pub audit_annotations: Vec<(String, String)>,
}

/// Reads the answer to the review of `version` with `uid`; the error says what is wrong with it
/// in upstream's words.
pub(super) fn verify(
    version: &str,
    uid: &str,
    mutating: bool,
    body: &[u8],
) -> Result<Verdict, String> {
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| format!("received invalid webhook response: {e}"))?;
    let invalid = |m: String| format!("received invalid webhook response: {m}");
    let Some(response) = review.get("response").filter(|r| r.is_object()) else {
        return Err(invalid("webhook response was absent".into()));
    };
    let got_uid = response.get("uid").and_then(Value::as_str).unwrap_or("");
    if version == "v1" {
        if got_uid != uid {
            return Err(invalid(format!(
                "expected response.uid={uid:?}, got {got_uid:?}"
            )));
        }
        let api_version = review
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
            let (group, v) = api_version.split_once('/').unwrap_or(("", api_version));
            return Err(invalid(format!(
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}{}{v}, Kind={kind}",
                group,
                if group.is_empty() { "" } else { "/" },
            )));
        }
    }
    let patch = response.get("patch").and_then(Value::as_str).unwrap_or("");
    let patch_type = response.get("patchType").and_then(Value::as_str);
    let patch = if mutating {
        if patch.is_empty() {
            None
        } else {
            match (version, patch_type) {
                ("v1", None) => {
                    return Err(invalid(
                        "webhook returned response.patch but not response.patchType".into(),
                    ));
                }
                (_, Some(t)) if t != "JSONPatch" => {
                    return Err(invalid(format!(
                        "webhook returned invalid response.patchType of {t:?}"
                    )));
                }
                _ => {}
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .map_err(|e| invalid(e.to_string()))?;
            Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| format!("received undecodable patch in webhook response: {e}"))?,
            )
        }
    } else {
        if !patch.is_empty() {
            return Err(invalid(
                "validating webhook may not return response.patch".into(),
            ));
        }
        if patch_type.is_some() {
            return Err(invalid(
                "validating webhook may not return response.patchType".into(),
            ));
        }
        None
    };
    Ok(Verdict {
        allowed: response
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status: response.get("status").cloned(),
        patch,
        warnings: response
            .get("warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect(),
        audit_annotations: response
            .get("auditAnnotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
    })
}

/// The refusal of webhook `name` with its `status`, as upstream's `ToStatusErr`: at least a
/// 400, and the message prefixed with who denied the request.
pub(super) fn rejection(name: &str, status: Option<&Value>) -> RegistryError {
    let field = |f: &str| {
        status
            .and_then(|s| s.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400) as u16;
    let denied = format!("admission webhook {name:?} denied the request");
    let (message, reason) = (field("message"), field("reason"));
    let message = if !message.is_empty() {
        format!("{denied}: {message}")
    } else if !reason.is_empty() {
        format!("{denied}: {reason}")
    } else {
        format!("{denied} without explanation")
    };
    RegistryError::Status {
        code,
        reason,
        message,
        details: status
            .and_then(|s| s.get("details"))
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .map(Box::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(response: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})).unwrap()
    }

    #[test]
    fn answers_are_checked_as_upstream() {
        let ok = verify(
            "v1",
            "u1",
            false,
            &answer(json!({"uid": "u1", "allowed": true})),
        )
        .unwrap();
        assert!(ok.allowed);
        assert_eq!(
            verify(
                "v1",
                "u1",
                false,
                &answer(json!({"uid": "u2", "allowed": true}))
            )
            .unwrap_err(),
            r#"received invalid webhook response: expected response.uid="u1", got "u2""#
        );
        let patched = json!({"uid": "u1", "allowed": true, "patch": "W10="});
        assert_eq!(
            verify("v1", "u1", true, &answer(patched.clone())).unwrap_err(),
            "received invalid webhook response: webhook returned response.patch but not response.patchType"
        );
        assert_eq!(
            verify("v1", "u1", false, &answer(patched)).unwrap_err(),
            "received invalid webhook response: validating webhook may not return response.patch"
        );
    }

    #[test]
    fn a_refusal_is_at_least_a_400_and_names_the_webhook() {
        let e = rejection(
            "deny.example.com",
            Some(&json!({"message": "no", "code": 200})),
        );
        let RegistryError::Status { code, message, .. } = e else {
            panic!()
        };
        assert_eq!(
            (code, message.as_str()),
            (
                400,
                "admission webhook \"deny.example.com\" denied the request: no"
            )
        );
        let e = rejection("w", None);
        assert_eq!(
            e.to_string(),
            "admission webhook \"w\" denied the request without explanation"
        );
    }
}
