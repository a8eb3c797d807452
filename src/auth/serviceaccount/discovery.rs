//! Service-account issuer discovery, as upstream's `routes.OpenIDMetadataServer`: the OpenID
//! provider configuration at `/.well-known/openid-configuration` and the verifying keys at
//! `/openid/v1/jwks`, so that other systems can verify the cluster's tokens. Served only when the
//! issuer is an https URL, as upstream.

use super::ServiceAccounts;
use crate::endpoints::{Handler, Verbatim, full, handler_fn};
use bytes::Bytes;
use serde_json::{Value, json};

/// Where the provider configuration is served.
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
/// Where the keys are served.
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// Upstream's cache lifetime of both documents.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The two documents and their handlers, or `None` when the issuer is not an https URL.
pub fn handlers(tokens: &ServiceAccounts) -> Option<[(&'static str, Handler); 2]> {
    let issuer = tokens.config().issuers.first()?;
    if !issuer.starts_with("https://") {
        tracing::info!(%issuer, "service account issuer is not an https URL: issuer discovery is not served");
        return None;
    }
    let jwks_uri = tokens
        .config()
        .jwks_uri
        .clone()
        .unwrap_or_else(|| format!("{}{JWKS_PATH}", tokens.config().external_address));
    let mut algorithms: Vec<&str> = tokens
        .public_keys()
        .iter()
        .map(|k| k.algorithm.name())
        .collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    let configuration = json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
    });
    let mut keys: Vec<Value> = Vec::new();
    for key in tokens.public_keys() {
        let jwk = key.jwk();
        if !keys.contains(&jwk) {
            keys.push(jwk);
        }
    }
    let jwks = json!({ "keys": keys });
    Some([
        (
            OPENID_CONFIGURATION_PATH,
            document(configuration, "application/json"),
        ),
        (JWKS_PATH, document(jwks, "application/jwk-set+json")),
    ])
}

fn document(body: Value, content_type: &'static str) -> Handler {
    let body = Bytes::from(body.to_string());
    handler_fn(move |_req| {
        let body = body.clone();
        async move {
            let mut resp = http::Response::builder()
                .status(http::StatusCode::OK)
                .header(http::header::CONTENT_TYPE, content_type)
                .header(http::header::CACHE_CONTROL, CACHE_CONTROL)
                .body(full(body))
                .expect("static headers are valid");
            resp.extensions_mut().insert(Verbatim);
            resp
        }
    })
}
