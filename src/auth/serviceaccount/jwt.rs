//! Compact JWS, as service-account tokens use it: `base64url(header).base64url(claims).signature`,
//! signed with the key's algorithm and verified against every configured key.

use super::keys::{PublicKey, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Signs `claims` with `key`; the header names the algorithm and the key id, as upstream's.
pub fn sign(key: &SigningKey, claims: &Value) -> Result<String, String> {
    let header = json!({"alg": key.public.algorithm.name(), "kid": key.public.kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A token split into its parts, its claims readable before the signature is checked (to see
/// whose token it is, as upstream reads the issuer first).
pub struct Parsed<'a> {
    signing_input: &'a str,
    algorithm: String,
    signature: Vec<u8>,
    /// The claims, not yet verified.
    pub claims: Value,
}

/// The parts of `token`, or `None` when it is not a JWS at all.
pub fn parse(token: &str) -> Option<Parsed<'_>> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, claims) = signing_input.split_once('.')?;
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok();
    let header: Value = serde_json::from_slice(&decode(header)?).ok()?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).ok()?;
    Some(Parsed {
        signing_input,
        algorithm: header.get("alg")?.as_str()?.to_string(),
        signature: decode(signature)?,
        claims,
    })
}

impl Parsed<'_> {
    /// Whether one of `keys` signed the token with the algorithm its header names.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), String> {
        let verified = keys
            .iter()
            .filter(|k| k.algorithm.name() == self.algorithm)
            .any(|k| k.verify(self.signing_input.as_bytes(), &self.signature));
        if verified {
            Ok(())
        } else {
            Err("invalid signature".into())
        }
    }
}
