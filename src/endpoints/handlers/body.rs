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

/// Decodes a JSON, YAML or protobuf object body.
pub(super) fn decode_object(bytes: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let media = media_type(content_type);
    let value: Value = match media {
        "" | "application/json" => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
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
