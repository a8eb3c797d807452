//! The patch engines of PATCH requests: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch, on `serde_json::Value`, with upstream's error → status mapping.

mod strategic;

pub use crate::registry::kinds::schema_for_kind;
pub use crate::registry::schema::SchemaRef;

use super::status::ApiError;
use crate::golang::unmarshal;
use http::StatusCode;
use serde_json::Value;

/// The most operations one JSON patch may hold, as upstream's `maxJSONPatchOperations`.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch formats a PATCH request can carry, named by its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7386 merge patch.
    Merge,
    /// `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch.
    StrategicMerge,
    /// `application/apply-patch+yaml`: server-side apply, done by the registry's field manager
    /// (`registry::managed_fields`), not by this module.
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header value; parameters (`; charset=utf-8`) are ignored
    /// as upstream does.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        match media_type {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied; each variant says the status upstream answers with.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not valid JSON, or not the JSON type its patch type is, in Go's words
    /// (`unexpected end of JSON input`) → 400 BadRequest.
    #[error("error decoding patch: {0}")]
    Malformed(String),
    /// The same for a strategic merge patch, which upstream reports without the prefix.
    #[error("{0}")]
    MalformedStrategic(String),
    /// A merge patch of `null` (jsonpatch's `ErrBadJSONPatch`) → 400 BadRequest.
    #[error("Invalid JSON Patch")]
    NullMergePatch,
    /// More than [`MAX_JSON_PATCH_OPERATIONS`] operations → 413 RequestEntityTooLarge.
    #[error(
        "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}"
    )]
    TooManyOperations(usize),
    /// A JSON patch operation failed: a `test` that did not match, a path that does not exist
    /// → 422 Invalid (upstream: `NewGenericServerResponse(422, …)` in `applyJSPatch`).
    #[error("{0}")]
    JsonPatchFailed(#[source] json_patch::PatchError),
    /// `$deleteFromPrimitiveList` used wrongly (upstream `ErrBadPatchFormatForPrimitiveList`)
    /// → 400 BadRequest.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` is not a list, or the patch sets a key it does not retain (upstream
    /// `ErrBadPatchFormatForRetainKeys`) → 400 BadRequest.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// `$setElementOrder` used wrongly (upstream `ErrBadPatchFormatForSetElementOrderList`)
    /// → 400 BadRequest.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// A merging list whose elements are lists (upstream `ErrNoListOfLists`) → 422 Invalid.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A list element lacks its merge key (upstream `ErrNoMergeKey`, a plain error)
    /// → 500 InternalError.
    #[error("map: {item} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The element, as JSON.
        item: String,
        /// The merge key it should have.
        key: String,
    },
    /// A `$patch` directive other than `replace` or `delete` (upstream `ErrBadPatchType`)
    /// → 500 InternalError.
    #[error("unknown patch type: {directive} in map: {item}")]
    UnknownDirective {
        /// The directive's value.
        directive: String,
        /// The map holding it, as JSON.
        item: String,
    },
    /// `$patch: merge` as a list element, which upstream does not implement → 500 InternalError.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// The patch's list does not follow the order of its `$setElementOrder` list
    /// → 500 InternalError (a plain error upstream).
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch {
        /// The patch list, as JSON.
        patch: String,
        /// The `$setElementOrder` list, as JSON.
        order: String,
    },
    /// Values of unexpected types where the merge needs maps or lists of one type
    /// (upstream `ErrBadArgType` and friends, plain errors) → 500 InternalError.
    #[error("{0}")]
    WrongType(String),
    /// Strategic merge patch on a type without patch metadata, i.e. a custom resource; upstream
    /// rejects the Content-Type for them → 415 UnsupportedMediaType.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    StrategicMergeUnsupported,
    /// Server-side apply where only the patch engines are at hand (the scale subresource)
    /// → 415 UnsupportedMediaType.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
    )]
    ApplyUnsupported,
}

/// Result of the patch engines.
pub type Result<T, E = PatchError> = std::result::Result<T, E>;

impl PatchError {
    /// The HTTP status upstream answers this failure with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            PatchError::Malformed(_)
            | PatchError::MalformedStrategic(_)
            | PatchError::NullMergePatch
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat => StatusCode::BAD_REQUEST,
            PatchError::TooManyOperations(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PatchError::JsonPatchFailed(_) | PatchError::ListOfLists => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            PatchError::MissingMergeKey { .. }
            | PatchError::UnknownDirective { .. }
            | PatchError::MergeDirectiveInList
            | PatchError::SetElementOrderMismatch { .. }
            | PatchError::WrongType(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PatchError::StrategicMergeUnsupported | PatchError::ApplyUnsupported => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
        }
    }

    /// The `metav1.StatusReason` upstream gives this failure.
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            _ => "InternalError",
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(err: PatchError) -> Self {
        let message = match err.status_code() {
            StatusCode::INTERNAL_SERVER_ERROR => return ApiError::internal(&err),
            // Upstream answers 422 with NewGenericServerResponse, which drops the library's
            // message for this fixed one; clients match on it.
            StatusCode::UNPROCESSABLE_ENTITY => {
                "the server rejected our request due to an error in our request".to_string()
            }
            StatusCode::PAYLOAD_TOO_LARGE => format!("Request entity too large: {err}"),
            _ => err.to_string(),
        };
        ApiError {
            code: err.status_code(),
            reason: err.reason().into(),
            message,
            details: Some(Default::default()),
            retry_after: None,
        }
    }
}

/// Applies `patch` of type `kind` to `original` and returns the patched object.
///
/// `schema` is the type of `original` (see [`schema_for_kind`]); strategic merge patch needs
/// it and fails with [`PatchError::StrategicMergeUnsupported`] without, as upstream does for
/// custom resources. The other patch types ignore it.
pub fn apply_patch(
    kind: PatchType,
    original: &Value,
    patch: &[u8],
    schema: Option<&SchemaRef>,
) -> Result<Value> {
    match kind {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => apply_merge_patch(original, patch),
        PatchType::StrategicMerge => {
            let schema = schema.ok_or(PatchError::StrategicMergeUnsupported)?;
            let patch = match unmarshal(patch, "map[string]interface {}", |v| {
                v.is_null() || v.is_object()
            }) {
                Ok(Value::Object(patch)) => patch,
                // Upstream decodes `null` to a nil map: nothing to merge.
                Ok(_) => return Ok(original.clone()),
                Err(e) => return Err(PatchError::MalformedStrategic(e)),
            };
            strategic::strategic_merge_patch(original.clone(), patch, schema.ty())
        }
        PatchType::Apply => Err(PatchError::ApplyUnsupported),
    }
}

fn apply_json_patch(original: &Value, patch: &[u8]) -> Result<Value> {
    let value = unmarshal(patch, "[]handlers.jsonPatchOp", |v| {
        v.is_null() || v.is_array()
    })
    .map_err(PatchError::Malformed)?;
    if value.is_null() {
        return Ok(original.clone());
    }
    let patch: json_patch::Patch =
        serde_json::from_value(value).map_err(|e| PatchError::Malformed(e.to_string()))?;
    if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(patch.0.len()));
    }
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).map_err(PatchError::JsonPatchFailed)?;
    Ok(patched)
}

fn apply_merge_patch(original: &Value, patch: &[u8]) -> Result<Value> {
    // Upstream decodes a merge patch into a map first: anything but an object is refused.
    let patch = unmarshal(patch, "map[string]interface {}", |v| {
        v.is_null() || v.is_object()
    })
    .map_err(PatchError::Malformed)?;
    if patch.is_null() {
        return Err(PatchError::NullMergePatch);
    }
    let mut patched = original.clone();
    json_patch::merge(&mut patched, &patch);
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_patch(original: Value, patch: Value) -> Result<Value> {
        apply_patch(
            PatchType::Json,
            &original,
            patch.to_string().as_bytes(),
            None,
        )
    }

    fn merge_patch(original: Value, patch: Value) -> Value {
        apply_patch(
            PatchType::Merge,
            &original,
            patch.to_string().as_bytes(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn content_types_map_to_patch_types_ignoring_parameters() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        for t in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::StrategicMerge,
            PatchType::Apply,
        ] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    // RFC 6902 appendix A examples.
    #[test]
    fn json_patch_adds_an_object_member_as_in_rfc_6902_a1() {
        let out = json_patch(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
        );
        assert_eq!(out.unwrap(), json!({"baz": "qux", "foo": "bar"}));
    }

    #[test]
    fn json_patch_adds_an_array_element_as_in_rfc_6902_a2() {
        let out = json_patch(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
        );
        assert_eq!(out.unwrap(), json!({"foo": ["bar", "qux", "baz"]}));
    }

    #[test]
    fn json_patch_removes_replaces_moves_and_copies_as_in_rfc_6902_a3_to_a7() {
        let out = json_patch(
            json!({"baz": "qux", "foo": {"bar": "baz", "waldo": "fred"}, "list": ["a", "b"]}),
            json!([
                {"op": "remove", "path": "/list/0"},
                {"op": "replace", "path": "/baz", "value": "boo"},
                {"op": "move", "from": "/foo/waldo", "path": "/qux"},
                {"op": "copy", "from": "/qux", "path": "/foo/copied"}
            ]),
        );
        assert_eq!(
            out.unwrap(),
            json!({"baz": "boo", "foo": {"bar": "baz", "copied": "fred"}, "qux": "fred", "list": ["b"]})
        );
    }

    #[test]
    fn json_patch_test_that_matches_lets_the_patch_apply_as_in_rfc_6902_a8() {
        let out = json_patch(
            json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ]),
        );
        assert_eq!(out.unwrap(), json!({"baz": "qux", "foo": ["a", 2, "c"]}));
    }

    #[test]
    fn json_patch_test_that_fails_is_a_422_as_in_rfc_6902_a9() {
        let err = json_patch(
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::JsonPatchFailed(_)));
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.reason(), "Invalid");
        let api: ApiError = err.into();
        assert_eq!(
            api.message,
            "the server rejected our request due to an error in our request"
        );
    }

    #[test]
    fn json_patch_on_a_missing_path_is_a_422_as_in_rfc_6902_a12() {
        let err = json_patch(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        let err = json_patch(
            json!({"foo": "bar"}),
            json!([{"op": "remove", "path": "/nothere"}]),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn json_patch_escapes_tilde_and_slash_in_pointers_as_in_rfc_6902_a14() {
        let out = json_patch(
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": 10}, {"op": "remove", "path": "/~1"}]),
        );
        assert_eq!(out.unwrap(), json!({"~1": 10}));
    }

    #[test]
    fn malformed_json_patch_is_a_400() {
        let err = apply_patch(PatchType::Json, &json!({}), b"{not json", None).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let err =
            apply_patch(PatchType::Json, &json!({}), br#"[{"op":"frob"}]"#, None).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_patch_with_more_than_ten_thousand_operations_is_a_413() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        let err = json_patch(json!({}), Value::Array(ops)).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.reason(), "RequestEntityTooLarge");
    }

    // RFC 7386 section 3 and appendix A examples.
    #[test]
    fn merge_patch_replaces_values_and_null_deletes_as_in_rfc_7386_section_3() {
        let out = merge_patch(
            json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
                   "tags": ["example", "sample"], "content": "This will be unchanged"}),
            json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
                   "author": {"familyName": null}, "tags": ["example"]}),
        );
        assert_eq!(
            out,
            json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
                   "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
        );
    }

    #[test]
    fn merge_patch_examples_of_rfc_7386_appendix_a_hold() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (original, patch, want) in cases {
            assert_eq!(merge_patch(original, patch.clone()), want, "patch {patch}");
        }
    }

    #[test]
    fn merge_patch_that_is_not_json_or_is_a_scalar_is_a_400() {
        let err = apply_patch(PatchType::Merge, &json!({}), b"{", None).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        let err = apply_patch(PatchType::Merge, &json!({}), b"null", None).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn strategic_merge_without_a_schema_is_unsupported_media_type_as_for_custom_resources() {
        let err = apply_patch(PatchType::StrategicMerge, &json!({}), b"{}", None).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(err.reason(), "UnsupportedMediaType");
        let api: ApiError = err.into();
        assert_eq!(api.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn apply_patches_are_reported_unsupported() {
        let err = apply_patch(PatchType::Apply, &json!({}), b"{}", None).unwrap_err();
        assert!(matches!(err, PatchError::ApplyUnsupported));
        assert_eq!(err.status_code(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
