//! `ApiError`: every failure a client sees, rendered in one place as a `metav1.Status`.

use super::{Response, json};
use http::StatusCode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusDetails};
use std::borrow::Cow;

/// Go's `http.NotFound`: what upstream answers, in plain text, for a path no handler of the chain
/// and no API group owns (`/foo`, `/apis/nope`, `/healthz/nope`).
pub fn page_not_found() -> Response {
    http::Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(super::full(&b"404 page not found\n"[..]))
        .expect("static headers are valid")
}

/// A failure with upstream's code, reason, message and details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: StatusCode,
    /// `metav1.StatusReason`, e.g. NotFound.
    pub reason: Cow<'static, str>,
    /// Human-readable message, worded as upstream.
    pub message: String,
    /// Details; `None` omits the field as upstream does for Unauthorized.
    pub details: Option<Box<StatusDetails>>,
    /// Seconds to put in a Retry-After header.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with `code`, `reason` and `message` and empty details.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: Cow::Borrowed(reason),
            message: message.into(),
            details: Some(Box::new(StatusDetails::default())),
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
    pub fn forbidden(details: StatusDetails, message: String) -> Self {
        Self {
            details: Some(Box::new(details)),
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
            details: Some(Box::new(details)),
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
            details: self.details.as_deref().cloned(),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            // A plain error's Status has no reason, and omits it.
            reason: (!self.reason.is_empty()).then(|| self.reason.to_string()),
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

mod registry_errors {
    use super::ApiError;
    use crate::registry::errors::RegistryError;
    use http::StatusCode;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn details(group: &str, kind: &str, name: &str) -> Option<StatusDetails> {
        Some(StatusDetails {
            group: (!group.is_empty()).then(|| group.to_string()),
            kind: (!kind.is_empty()).then(|| kind.to_string()),
            name: (!name.is_empty()).then(|| name.to_string()),
            ..Default::default()
        })
    }

    impl From<RegistryError> for ApiError {
        /// The one place registry failures become `metav1.Status` responses.
        fn from(e: RegistryError) -> Self {
            let message = e.to_string();
            let (code, reason, details) = match &e {
                RegistryError::NotFound { resource, name } => (
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    details(&resource.group, &resource.resource, name),
                ),
                RegistryError::AlreadyExists { resource, name } => (
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    details(&resource.group, &resource.resource, name),
                ),
                RegistryError::Conflict { resource, name, .. } => (
                    StatusCode::CONFLICT,
                    "Conflict",
                    details(&resource.group, &resource.resource, name),
                ),
                RegistryError::Invalid {
                    group,
                    kind,
                    name,
                    errors,
                    ..
                } => {
                    let mut d = details(group, kind, name).unwrap_or_default();
                    d.causes = Some(
                        errors
                            .iter()
                            .map(|fe| StatusCause {
                                reason: Some(fe.reason().into()),
                                message: Some(fe.body()),
                                field: Some(fe.field.clone()),
                            })
                            .collect(),
                    );
                    (StatusCode::UNPROCESSABLE_ENTITY, "Invalid", Some(d))
                }
                RegistryError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest", None),
                RegistryError::Forbidden {
                    resource,
                    name,
                    cause,
                    ..
                } => {
                    let mut d =
                        details(&resource.group, &resource.resource, name).unwrap_or_default();
                    if let Some((reason, message, field)) = cause.as_deref() {
                        d.causes = Some(vec![StatusCause {
                            reason: Some(reason.clone()),
                            message: Some(message.clone()),
                            field: Some(field.clone()),
                        }]);
                    }
                    (StatusCode::FORBIDDEN, "Forbidden", Some(d))
                }
                RegistryError::Expired(_) => (StatusCode::GONE, "Expired", None),
                RegistryError::TooLargeResourceVersion { .. } => {
                    let d = StatusDetails {
                        causes: Some(vec![StatusCause {
                            reason: Some("ResourceVersionTooLarge".into()),
                            message: Some("Too large resource version".into()),
                            field: None,
                        }]),
                        retry_after_seconds: Some(1),
                        ..Default::default()
                    };
                    (StatusCode::GATEWAY_TIMEOUT, "Timeout", Some(d))
                }
                RegistryError::MethodNotSupported { resource, .. } => (
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    details(&resource.group, &resource.resource, ""),
                ),
                RegistryError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", None)
                }
                RegistryError::ApplyConflict(conflicts) => {
                    let d = StatusDetails {
                        causes: Some(
                            conflicts
                                .iter()
                                .map(|c| StatusCause {
                                    reason: Some("FieldManagerConflict".into()),
                                    message: Some(format!("conflict with {}", c.manager)),
                                    field: Some(c.field.clone()),
                                })
                                .collect(),
                        ),
                        ..Default::default()
                    };
                    (StatusCode::CONFLICT, "Conflict", Some(d))
                }
                RegistryError::Unknown(_) => (StatusCode::INTERNAL_SERVER_ERROR, "", None),
                RegistryError::TooManyRequests {
                    retry_after_seconds,
                    causes,
                    ..
                } => {
                    let retry = *retry_after_seconds;
                    let d = StatusDetails {
                        retry_after_seconds: (retry > 0).then_some(retry as i32),
                        causes: Some(
                            causes
                                .iter()
                                .map(|(reason, message)| StatusCause {
                                    reason: Some(reason.clone()),
                                    message: Some(message.clone()),
                                    field: None,
                                })
                                .collect(),
                        ),
                        ..Default::default()
                    };
                    return ApiError {
                        code: StatusCode::TOO_MANY_REQUESTS,
                        reason: "TooManyRequests".into(),
                        message,
                        details: Some(Box::new(d)),
                        retry_after: (retry > 0).then_some(retry),
                    };
                }
                RegistryError::Status {
                    code,
                    reason,
                    message,
                    details,
                } => {
                    return ApiError {
                        code: StatusCode::from_u16(*code)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        reason: reason.clone().into(),
                        message: message.clone(),
                        details: details.clone(),
                        retry_after: None,
                    };
                }
                RegistryError::Internal(m) => {
                    let d = StatusDetails {
                        causes: Some(vec![StatusCause {
                            message: Some(m.clone()),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    };
                    return ApiError {
                        code: StatusCode::INTERNAL_SERVER_ERROR,
                        reason: "InternalError".into(),
                        message: format!("Internal error occurred: {m}"),
                        details: Some(Box::new(d)),
                        retry_after: None,
                    };
                }
            };
            ApiError {
                code,
                reason: reason.into(),
                message,
                details: details.map(Box::new),
                retry_after: None,
            }
        }
    }
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            details: None,
            ..Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
        }
    }

    /// 503 for a backend that cannot be reached (a proxy's pod, service or node).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(group: &str, resource: &str) -> Self {
        let details = StatusDetails {
            group: (!group.is_empty()).then(|| group.into()),
            kind: Some(resource.into()),
            ..Default::default()
        };
        Self {
            details: Some(Box::new(details)),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        }
    }

    /// 415 for a body in a format the endpoint does not take.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        let _ = content_type;
        Self {
            details: None,
            ..Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {}",
                    accepted.join(", ")
                ),
            )
        }
    }

    /// go-restful's own 415, answered before any handler runs when a route's `Consumes` do not
    /// list the body's type (a PATCH that is none of the four patch types).
    pub fn route_unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "415: Unsupported Media Type",
        )
    }

    /// 406 when no acceptable response format is offered.
    pub fn not_acceptable(offered: &[&str]) -> Self {
        Self {
            details: Some(Box::new(StatusDetails::default())),
            ..Self::new(
                StatusCode::NOT_ACCEPTABLE,
                "NotAcceptable",
                format!(
                    "only the following media types are accepted: {}",
                    offered.join(", ")
                ),
            )
        }
    }

    /// 413 for a body over the size limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }
}
