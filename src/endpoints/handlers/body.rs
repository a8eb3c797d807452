//! Request bodies: read with upstream's size limit, decoded by their Content-Type.

use crate::endpoints::Body;
use crate::endpoints::status::ApiError;
use crate::protobuf;
use crate::registry::store::FieldValidation;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

/// Upstream's limit on request bodies (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The media type of a Content-Type header, without parameters.
pub(super) fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Reads a whole body, refusing one over [`MAX_BODY_BYTES`].
pub(crate) async fn read(mut body: Body) -> Result<Bytes, ApiError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY_BYTES {
                return Err(ApiError::too_large(MAX_BODY_BYTES));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The type upstream's JSON serializer first decodes a body into, to read its kind.
const TYPE_META: &str = r#"struct { APIVersion string "json:\"apiVersion,omitempty\""; Kind string "json:\"kind,omitempty\"" }"#;

/// The first bytes of a refused body as upstream's `summarizeData` shows them: an object as
/// text, anything else in hex, at most 30 bytes.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let (head, more) = (&body[..body.len().min(MAX)], body.len() > MAX);
    let text = match body.first() {
        None => return "<empty>".into(),
        Some(b'{') => String::from_utf8_lossy(head).into_owned(),
        Some(_) => head.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if more { format!("{text} ...") } else { text }
}

/// A JSON object body, or why not in the words of upstream's JSON serializer reading its kind
/// (`couldn't get version/kind; json parse error: …`, Go's encoding/json errors).
fn json_object(bytes: &[u8]) -> Result<Value, String> {
    let parse_error = |e: String| format!("couldn't get version/kind; json parse error: {e}");
    let value =
        crate::golang::unmarshal(bytes, TYPE_META, Value::is_object).map_err(parse_error)?;
    for field in ["apiVersion", "kind"] {
        if let Some(v) = value.get(field).filter(|v| !v.is_string() && !v.is_null()) {
            return Err(parse_error(format!(
                "json: cannot unmarshal {} into Go struct field .{field} of type string",
                crate::golang::json_type(v)
            )));
        }
    }
    Ok(value)
}

/// Decodes a JSON, YAML or protobuf object body. When `kind` is given, a body that is not
/// one is refused as upstream's create and update handlers refuse it ("the object provided
/// is unrecognized (must be of type ConfigMap): …").
pub(super) fn decode_object(
    bytes: &[u8],
    content_type: &str,
    kind: Option<&str>,
) -> Result<Value, ApiError> {
    let media = media_type(content_type);
    let value: Value = match media {
        "" | "application/json" => json_object(bytes).map_err(|e| {
            ApiError::bad_request(match kind {
                Some(kind) => format!(
                    "the object provided is unrecognized (must be of type {kind}): {e} ({})",
                    summarize(bytes)
                ),
                None => e,
            })
        })?,
        protobuf::MEDIA_TYPE => {
            protobuf::decode(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text =
                std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
        }
        _ => {
            return Err(ApiError::unsupported_media_type(
                media,
                &[
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf",
                ],
            ));
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// The duplicate key a YAML parse stopped at, worded as go-yaml's strict unmarshal error
/// (`line 3: key "replicas" already set in map`).
fn duplicate_key(e: &serde_saphyr::Error) -> Option<String> {
    let mut e = e;
    while let serde_saphyr::Error::WithSnippet { error, .. } = e {
        e = error;
    }
    match e {
        serde_saphyr::Error::DuplicateMappingKey {
            key: Some(key),
            location,
        } => Some(format!(
            "line {}: key {key:?} already set in map",
            location.line()
        )),
        _ => None,
    }
}

/// Decodes an apply configuration: YAML, of which JSON is a part. A repeated key fails it under
/// strict field validation, is a warning (returned) under `Warn`, and otherwise the last value
/// wins, as upstream; like go-yaml, only the first repeated key is named.
pub(super) fn decode_apply_config(
    bytes: &[u8],
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let mut warnings = Vec::new();
    let value: Value = match serde_saphyr::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let Some(duplicate) = duplicate_key(&e) else {
                return Err(ApiError::bad_request(format!("error decoding YAML: {e}")));
            };
            match validation {
                FieldValidation::Strict => {
                    return Err(ApiError::bad_request(format!(
                        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {duplicate}"
                    )));
                }
                FieldValidation::Warn => warnings.push(duplicate),
                FieldValidation::Ignore => {}
            }
            let last_wins = serde_saphyr::options! {
                duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
            };
            serde_saphyr::from_str_with_options(text, last_wins)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    }
    Ok((value, warnings))
}
