//! Request bodies: read with upstream's size limit, decoded by their Content-Type.

use crate::endpoints::Body;
use crate::endpoints::status::ApiError;
use crate::protobuf;
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

/// Decodes an apply configuration: YAML, of which JSON is a part.
pub(super) fn decode_apply_config(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    }
    Ok(value)
}
