//! Registry errors and field validation errors, worded as upstream's `apierrors` and `field.Error`.

use crate::storage::StorageError;
use serde_json::Value;
use std::fmt;

/// What is wrong with one field, as upstream's `field.ErrorType`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorKind {
    /// A referenced object does not exist.
    NotFound,
    /// A required field is missing.
    Required,
    /// A value appears twice where it must be unique.
    Duplicate,
    /// A value is malformed or out of range.
    Invalid,
    /// A value of the wrong type (a custom resource's schema): worded as `Invalid`, with its own
    /// cause reason.
    TypeInvalid,
    /// A value is not one of the allowed ones.
    NotSupported(Vec<String>),
    /// The field may not be set, or not changed.
    Forbidden,
    /// A value is longer than allowed.
    TooLong(usize),
    /// A list or map has more items than allowed (the maximum).
    TooMany(usize),
}

/// One field validation error.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The error type.
    pub kind: FieldErrorKind,
    /// Field path, e.g. `spec.containers[0].name`.
    pub field: String,
    /// The offending value, if any.
    pub value: Option<Value>,
    /// Extra detail.
    pub detail: String,
    /// The value as Go's `%#v` writes a Go struct, where the value is one (it wins over
    /// `value`).
    pub go_value: Option<String>,
}

/// Several field errors, in the order they were found.
pub type ErrorList = Vec<FieldError>;

impl FieldError {
    fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
            go_value: None,
        }
    }
    /// The same error, its value shown as already rendered by Go's `%#v`.
    pub fn with_go_value(self, rendered: String) -> Self {
        Self {
            go_value: Some(rendered),
            ..self
        }
    }
    /// A malformed value that upstream holds as a Go struct, already rendered (`%#v`).
    pub fn invalid_struct(
        field: impl Into<String>,
        rendered: String,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            go_value: Some(rendered),
            ..Self::new(FieldErrorKind::Invalid, field, None, detail)
        }
    }
    /// A missing required field.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }
    /// An invalid value.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(FieldErrorKind::Invalid, field, Some(value.into()), detail)
    }
    /// A value of the wrong type.
    pub fn type_invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(
            FieldErrorKind::TypeInvalid,
            field,
            Some(value.into()),
            detail,
        )
    }
    /// A value outside an enumeration.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        allowed: &[&str],
    ) -> Self {
        let allowed = allowed.iter().map(|s| s.to_string()).collect();
        Self::new(
            FieldErrorKind::NotSupported(allowed),
            field,
            Some(value.into()),
            "",
        )
    }
    /// A forbidden field or change.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }
    /// A duplicate value.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorKind::Duplicate, field, Some(value.into()), "")
    }
    /// A value that is too long.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self::new(FieldErrorKind::TooLong(max), field, None, "")
    }
    /// A list or map with more than `max` items, as upstream's `field.TooMany`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(FieldErrorKind::TooMany(max), field, Some(actual.into()), "")
    }
    /// A reference to something that does not exist.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(FieldErrorKind::NotFound, field, Some(value.into()), "")
    }

    /// The `metav1.CauseType` of this error.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::NotSupported(_) => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong(_) => "FieldValueTooLong",
            FieldErrorKind::TooMany(_) => "FieldValueTooMany",
        }
    }

    /// The message without the field path, as upstream's `ErrorBody()`.
    pub fn body(&self) -> String {
        let value = match &self.go_value {
            Some(rendered) => rendered.clone(),
            None => self.value.as_ref().map(render_value).unwrap_or_default(),
        };
        let mut s = match &self.kind {
            FieldErrorKind::NotFound => format!("Not found: {value}"),
            FieldErrorKind::Required => "Required value".to_string(),
            FieldErrorKind::Duplicate => format!("Duplicate value: {value}"),
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => {
                format!("Invalid value: {value}")
            }
            FieldErrorKind::NotSupported(allowed) => {
                let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "Unsupported value: {value}: supported values: {}",
                    quoted.join(", ")
                )
            }
            FieldErrorKind::Forbidden => "Forbidden".to_string(),
            FieldErrorKind::TooLong(max) => format!("Too long: may not be more than {max} bytes"),
            FieldErrorKind::TooMany(max) => {
                let items = if *max == 1 { "item" } else { "items" };
                format!("Too many: {value}: must have at most {max} {items}")
            }
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// Renders a value as upstream's `field.Error` does: strings quoted (`%q`), numbers and booleans
/// bare, and the string maps and lists of typed objects (labels, selectors, args) as Go's `%#v`
/// writes a `map[string]string` or `[]string`, keys sorted.
fn render_value(v: &Value) -> String {
    fn quoted<'a>(items: impl Iterator<Item = &'a Value>) -> Option<Vec<String>> {
        items
            .map(|v| v.as_str().map(|s| format!("{s:?}")))
            .collect()
    }
    match v {
        Value::String(s) => format!("{s:?}"),
        // Go puts the string "null" in place of a nil value, then quotes it.
        Value::Null => r#""null""#.into(),
        Value::Object(map) if !map.is_empty() => match quoted(map.values()) {
            Some(values) => {
                let pairs: Vec<String> = map
                    .keys()
                    .zip(values)
                    .map(|(k, v)| format!("{k:?}:{v}"))
                    .collect();
                format!("map[string]string{{{}}}", pairs.join(", "))
            }
            None => v.to_string(),
        },
        Value::Array(items) if !items.is_empty() => match quoted(items.iter()) {
            Some(items) => format!("[]string{{{}}}", items.join(", ")),
            None => v.to_string(),
        },
        other => other.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Formats an error list as upstream's `ErrorList.ToAggregate().Error()`.
pub fn aggregate(errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let s = e.to_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

/// A resource's identity for error messages: `configmaps` or `deployments.apps`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupResource {
    /// API group, "" for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// Upstream's `NewForbidden` message: the name is quoted when there is one.
fn forbidden_message(resource: &GroupResource, name: &str, message: &str) -> String {
    if name.is_empty() {
        format!("{resource} is forbidden: {message}")
    } else {
        format!("{resource} {name:?} is forbidden: {message}")
    }
}

/// Registry failures; the REST layer maps each to one `metav1.Status`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The object does not exist (404).
    #[error("{resource} {name:?} not found")]
    NotFound {
        /// Resource.
        resource: GroupResource,
        /// Object name.
        name: String,
    },
    /// Create of an existing object (409 AlreadyExists).
    #[error("{resource} {name:?} already exists")]
    AlreadyExists {
        /// Resource.
        resource: GroupResource,
        /// Object name.
        name: String,
    },
    /// A stale resourceVersion or failed precondition (409 Conflict).
    #[error("Operation cannot be fulfilled on {resource} {name:?}: {message}")]
    Conflict {
        /// Resource.
        resource: GroupResource,
        /// Object name.
        name: String,
        /// Why.
        message: String,
    },
    /// Validation failed (422 Invalid).
    #[error("{qualified_kind} {name:?} is invalid: {}", aggregate(errors))]
    Invalid {
        /// API group.
        group: String,
        /// Kind, group-qualified for messages (`Deployment.apps`).
        qualified_kind: String,
        /// Kind alone, for details.
        kind: String,
        /// Object name.
        name: String,
        /// The field errors.
        errors: ErrorList,
    },
    /// Malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is not allowed in the object's state (403), e.g. a terminating namespace.
    #[error("{}", forbidden_message(resource, name, message))]
    Forbidden {
        /// Resource.
        resource: GroupResource,
        /// Object name.
        name: String,
        /// Why.
        message: String,
        /// A cause for details, e.g. ("NamespaceTerminating", message, "metadata.namespace").
        cause: Option<Box<(String, String, String)>>,
    },
    /// A continue token or resourceVersion too old to serve (410 Expired).
    #[error("{0}")]
    Expired(String),
    /// The resource version asked for is newer than the store (504 Timeout, as upstream).
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// Requested revision.
        requested: i64,
        /// Current revision.
        current: i64,
    },
    /// The operation is not supported for this resource (405).
    #[error("{message}")]
    MethodNotSupported {
        /// Resource.
        resource: GroupResource,
        /// Why.
        message: String,
    },
    /// The backend is unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// A server-side apply would change fields other managers own (409 Conflict, with one
    /// FieldManagerConflict cause per field).
    #[error("{}", super::managed_fields::conflict_message(.0))]
    ApplyConflict(Vec<super::managed_fields::Conflict>),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
    /// Refused for now, to be retried (429), e.g. an eviction a disruption budget forbids.
    #[error("{message}")]
    TooManyRequests {
        /// Why.
        message: String,
        /// When to retry, in seconds; 0 says nothing.
        retry_after_seconds: u32,
        /// Causes as (type, message), e.g. ("DisruptionBudget", …).
        causes: Vec<(String, String)>,
    },
    /// A failure upstream returns as a plain error, not an API status: a 500 with this message
    /// and no reason (e.g. an invalid pod Binding).
    #[error("{0}")]
    Unknown(String),
    /// A refusal worded by someone else and passed on as given: an admission webhook's Status.
    #[error("{message}")]
    Status {
        /// The HTTP status, at least 400.
        code: u16,
        /// `metav1.StatusReason`, possibly empty.
        reason: String,
        /// The message.
        message: String,
        /// The details, as given.
        details: Option<Box<k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails>>,
    },
}

impl RegistryError {
    /// Maps a storage error about object `name` of `resource`.
    pub fn from_storage(e: StorageError, resource: &GroupResource, name: &str) -> Self {
        use crate::storage::ErrorCode;
        match e.code {
            ErrorCode::NotFound => Self::NotFound { resource: resource.clone(), name: name.into() },
            ErrorCode::AlreadyExists => Self::AlreadyExists { resource: resource.clone(), name: name.into() },
            ErrorCode::Conflict => Self::Conflict {
                resource: resource.clone(),
                name: name.into(),
                message: "the object has been modified; please apply your changes to the latest version and try again".into(),
            },
            ErrorCode::Compacted => Self::Expired(format!("too old resource version: {}", e.message)),
            ErrorCode::InvalidArgument => Self::BadRequest(e.message),
            ErrorCode::Unavailable | ErrorCode::WatchLagged => Self::Unavailable(e.to_string()),
            ErrorCode::Internal => Self::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_render_as_upstream() {
        assert_eq!(
            FieldError::required("metadata.name", "name or generateName is required").to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0")
                .to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            FieldError::not_supported("spec.type", "Bogus", &["ClusterIP", "NodePort"]).to_string(),
            r#"spec.type: Unsupported value: "Bogus": supported values: "ClusterIP", "NodePort""#
        );
    }

    #[test]
    fn values_render_as_gos_field_error_renders_them() {
        let body = |v: Value| FieldError::invalid("f", v, "").body();
        assert_eq!(
            body(serde_json::json!({"b": "c", "app": "other"})),
            r#"Invalid value: map[string]string{"app":"other", "b":"c"}"#
        );
        assert_eq!(
            body(serde_json::json!(["a", "b"])),
            r#"Invalid value: []string{"a", "b"}"#
        );
        assert_eq!(body(Value::Null), r#"Invalid value: "null""#);
        assert_eq!(body(serde_json::json!(true)), "Invalid value: true");
        assert_eq!(
            FieldError::type_invalid("spec.a", "string", "wrong").reason(),
            "FieldValueTypeInvalid"
        );
    }

    #[test]
    fn several_errors_aggregate_in_brackets() {
        let errs = vec![FieldError::required("a", ""), FieldError::required("b", "")];
        assert_eq!(aggregate(&errs), "[a: Required value, b: Required value]");
    }
}
