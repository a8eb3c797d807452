//! `ApiError`: every failure a client sees, rendered in one place as a `metav1.Status`.

use super::{Response, json};
use http::StatusCode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusDetails};

/// A failure with upstream's code, reason, message and details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: StatusCode,
    /// `metav1.StatusReason`, e.g. NotFound.
    pub reason: &'static str,
    /// Human-readable message, worded as upstream.
    pub message: String,
    /// Details; `None` omits the field as upstream does for Unauthorized.
    pub details: Option<StatusDetails>,
    /// Seconds to put in a Retry-After header.
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: Some(StatusDetails::default()),
            retry_after: None,
        }
    }

    /// 404 for a path no server of the chain owns.
    pub fn not_found_path() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 401 for a request whose credentials did not authenticate.
    pub fn unauthorized() -> Self {
        Self {
            details: None,
            ..Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
        }
    }

    /// 403 with upstream's authorizer message.
    pub fn forbidden(message: String, kind: Option<String>, name: Option<String>) -> Self {
        let details = StatusDetails {
            kind,
            name,
            ..Default::default()
        };
        Self {
            details: Some(details),
            ..Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
        }
    }

    /// 429 with Retry-After.
    pub fn too_many_requests(message: &str, retry_after: u32) -> Self {
        let details = StatusDetails {
            retry_after_seconds: Some(retry_after as i32),
            ..Default::default()
        };
        Self {
            details: Some(details),
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
        }
    }

    /// 504 for a request that outlived --request-timeout.
    pub fn timeout(message: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!("Timeout: {message}"),
        )
    }

    /// 500 for an unexpected failure.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// The `metav1.Status` object.
    pub fn status(&self) -> Status {
        Status {
            code: Some(self.code.as_u16() as i32),
            details: self.details.clone(),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: Some(self.reason.to_string()),
            status: Some("Failure".into()),
        }
    }

    /// The HTTP response carrying the Status.
    pub fn into_response(self) -> Response {
        let mut resp = json(self.code, &self.status());
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_renders_upstreams_status_body() {
        let v = serde_json::to_value(ApiError::not_found_path().status()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource",
                "reason": "NotFound", "details": {}, "code": 404
            })
        );
    }

    #[test]
    fn unauthorized_has_no_details() {
        let v = serde_json::to_value(ApiError::unauthorized().status()).unwrap();
        assert!(v.get("details").is_none());
        assert_eq!(v["code"], 401);
    }
}
