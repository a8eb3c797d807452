//! The service-account keys: the private key that signs (`--service-account-signing-key-file`)
//! and the public keys that verify (`--service-account-key-file`), read from PEM files as
//! upstream's `keyutil` reads them (public keys, RSA and EC private keys, certificates), each
//! with upstream's key id: the unpadded base64url SHA-256 of its PKIX (SubjectPublicKeyInfo) DER.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm,
};
use rustls::pki_types::pem::{PemObject, SectionKind};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Why a key file is unusable.
#[derive(Debug, thiserror::Error)]
#[error("--{flag} {}: {reason}", path.display())]
pub struct KeyError {
    /// The flag naming the file.
    pub flag: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What was wrong.
    pub reason: String,
}

/// A JWS algorithm kubeboot signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
}

impl Algorithm {
    /// The JWS name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
        }
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }
}

/// One public key that verifies tokens.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The algorithm its tokens are signed with.
    pub algorithm: Algorithm,
    /// Upstream's key id.
    pub kid: String,
    /// The key as ring verifies with it: PKCS#1 RSAPublicKey DER, or the uncompressed EC point.
    raw: Vec<u8>,
    /// The JWK members naming the key's material (`n`/`e` or `crv`/`x`/`y`).
    material: Vec<(&'static str, String)>,
}

impl PublicKey {
    /// Whether `signature` over `message` is this key's.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm.verification(), &self.raw)
            .verify(message, signature)
            .is_ok()
    }

    /// The key as a JWK of `/openid/v1/jwks`.
    pub fn jwk(&self) -> Value {
        let mut jwk = serde_json::Map::new();
        jwk.insert("use".into(), json!("sig"));
        let kty = if self.algorithm == Algorithm::Rs256 {
            "RSA"
        } else {
            "EC"
        };
        jwk.insert("kty".into(), json!(kty));
        jwk.insert("kid".into(), json!(self.kid));
        if let Some((_, crv)) = self.material.iter().find(|(k, _)| *k == "crv") {
            jwk.insert("crv".into(), json!(crv));
        }
        jwk.insert("alg".into(), json!(self.algorithm.name()));
        for (k, v) in self.material.iter().filter(|(k, _)| *k != "crv") {
            jwk.insert((*k).into(), json!(v));
        }
        Value::Object(jwk)
    }

    fn rsa(rsa_public_key_der: &[u8], n: &[u8], e: &[u8]) -> Self {
        let spki = spki(RSA_ALGORITHM, rsa_public_key_der);
        Self {
            algorithm: Algorithm::Rs256,
            kid: key_id(&spki),
            raw: rsa_public_key_der.to_vec(),
            material: vec![("n", b64(strip_zeros(n))), ("e", b64(strip_zeros(e)))],
        }
    }

    fn ec(algorithm: Algorithm, point: &[u8]) -> Result<Self, String> {
        let (curve, crv, len) = match algorithm {
            Algorithm::Es256 => (P256_ALGORITHM, "P-256", 32),
            Algorithm::Es384 => (P384_ALGORITHM, "P-384", 48),
            Algorithm::Rs256 => unreachable!("an RSA key is not an EC point"),
        };
        if point.len() != 1 + 2 * len || point[0] != 4 {
            return Err("EC public key is not an uncompressed point".into());
        }
        Ok(Self {
            algorithm,
            kid: key_id(&spki(curve, point)),
            raw: point.to_vec(),
            material: vec![
                ("crv", crv.into()),
                ("x", b64(&point[1..=len])),
                ("y", b64(&point[1 + len..])),
            ],
        })
    }
}

/// The key that signs tokens, with its public half.
pub struct SigningKey {
    signer: Signer,
    /// The public half, whose kid the tokens' headers name.
    pub public: PublicKey,
}

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

impl SigningKey {
    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|e| e.to_string())?;
                Ok(sig)
            }
            Signer::Ecdsa(key) => key
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| e.to_string()),
        }
    }

    /// Reads the private key of `--service-account-signing-key-file`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let flag = "service-account-signing-key-file";
        let err = |reason: String| KeyError {
            flag,
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        for (kind, der) in sections(&text).map_err(err)? {
            if let Some(key) = private_key(kind, &der).map_err(err)? {
                return Ok(key);
            }
        }
        Err(err("no private key found".into()))
    }
}

/// The PEM sections of `text`.
fn sections(text: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(text)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// The signing key of a PEM section holding a private key; `None` for other sections.
fn private_key(kind: SectionKind, der: &[u8]) -> Result<Option<SigningKey>, String> {
    let key = match kind {
        SectionKind::RsaPrivateKey => {
            rsa_signer(RsaKeyPair::from_der(der).map_err(|e| e.to_string())?)
        }
        SectionKind::PrivateKey => {
            let rng = SystemRandom::new();
            if let Ok(rsa) = RsaKeyPair::from_pkcs8(der) {
                rsa_signer(rsa)
            } else if let Ok(ec) =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            {
                ec_signer(ec, Algorithm::Es256)?
            } else if let Ok(ec) =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
            {
                ec_signer(ec, Algorithm::Es384)?
            } else {
                return Err("PKCS#8 key is neither RSA nor ECDSA P-256/P-384".into());
            }
        }
        SectionKind::EcPrivateKey => {
            return Err(
                "SEC1 \"EC PRIVATE KEY\" keys are not supported: convert with `openssl pkcs8 -topk8 -nocrypt`"
                    .into(),
            );
        }
        _ => return Ok(None),
    };
    Ok(Some(key))
}

fn rsa_signer(key: RsaKeyPair) -> SigningKey {
    let components = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
    let public = PublicKey::rsa(key.public().as_ref(), &components.n, &components.e);
    SigningKey {
        signer: Signer::Rsa(key),
        public,
    }
}

fn ec_signer(key: EcdsaKeyPair, algorithm: Algorithm) -> Result<SigningKey, String> {
    let public = PublicKey::ec(algorithm, key.public_key().as_ref())?;
    Ok(SigningKey {
        signer: Signer::Ecdsa(key),
        public,
    })
}

/// Reads every public key in the `--service-account-key-file` files: public keys,
/// certificates' keys and private keys' public halves, as upstream's `keyutil.PublicKeysFromFile`.
pub fn load_public_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, KeyError> {
    let mut keys = Vec::new();
    for path in paths {
        let err = |reason: String| KeyError {
            flag: "service-account-key-file",
            path: path.clone(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let before = keys.len();
        for (kind, der) in sections(&text).map_err(err)? {
            match kind {
                SectionKind::PublicKey => keys.push(spki_key(&der).map_err(err)?),
                SectionKind::Certificate => {
                    let (_, cert) = x509_parser::parse_x509_certificate(&der)
                        .map_err(|e| err(e.to_string()))?;
                    keys.push(spki_key(cert.public_key().raw).map_err(err)?);
                }
                _ => {
                    if let Some(private) = private_key(kind, &der).map_err(err)? {
                        keys.push(private.public);
                    }
                }
            }
        }
        if keys.len() == before {
            return Err(err(
                "data does not contain any valid RSA or ECDSA public keys".into(),
            ));
        }
    }
    Ok(keys)
}

/// The key of a SubjectPublicKeyInfo DER.
fn spki_key(der: &[u8]) -> Result<PublicKey, String> {
    let (_, info) = SubjectPublicKeyInfo::from_der(der).map_err(|e| e.to_string())?;
    let raw = info.subject_public_key.data.as_ref();
    match info.parsed().map_err(|e| e.to_string())? {
        ParsedKey::RSA(rsa) => Ok(PublicKey::rsa(raw, rsa.modulus, rsa.exponent)),
        ParsedKey::EC(_) => {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => PublicKey::ec(Algorithm::Es256, raw),
                Some("1.3.132.0.34") => PublicKey::ec(Algorithm::Es384, raw),
                other => Err(format!("unsupported EC curve {other:?}")),
            }
        }
        _ => Err("not an RSA or ECDSA public key".into()),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Upstream's `keyIDFromPublicKey`.
fn key_id(spki_der: &[u8]) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref())
}

/// DER of `AlgorithmIdentifier { rsaEncryption, NULL }`.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// DER of `AlgorithmIdentifier { id-ecPublicKey, prime256v1 }`.
const P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
/// DER of `AlgorithmIdentifier { id-ecPublicKey, secp384r1 }`.
const P384_ALGORITHM: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];

/// DER of a SubjectPublicKeyInfo: the algorithm, then the key as a BIT STRING.
fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
    let mut body = algorithm.to_vec();
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_public_file_verifies_under_the_same_kid() {
        let (private_pem, public_pem) = crate::pki::certs::new_service_account_key().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (key_file, pub_file) = (dir.path().join("sa.key"), dir.path().join("sa.pub"));
        std::fs::write(&key_file, private_pem).unwrap();
        std::fs::write(&pub_file, public_pem).unwrap();
        let signing = SigningKey::load(&key_file).unwrap();
        let public = load_public_keys(&[pub_file, key_file]).unwrap();
        assert_eq!(public.len(), 2);
        assert!(public.iter().all(|k| k.kid == signing.public.kid));
        let sig = signing.sign(b"message").unwrap();
        assert!(public[0].verify(b"message", &sig));
        assert!(!public[0].verify(b"other", &sig));
        let jwk = public[0].jwk();
        assert_eq!(
            (&jwk["kty"], &jwk["alg"], &jwk["crv"], &jwk["use"]),
            (
                &json!("EC"),
                &json!("ES256"),
                &json!("P-256"),
                &json!("sig")
            )
        );
        assert_eq!(jwk["kid"], signing.public.kid);
    }

    #[test]
    fn an_unreadable_key_file_names_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing.pem");
        std::fs::write(&path, "no keys here").unwrap();
        let e = load_public_keys(std::slice::from_ref(&path)).unwrap_err();
        assert!(
            e.to_string().starts_with("--service-account-key-file "),
            "{e}"
        );
        assert!(SigningKey::load(&path).is_err());
    }
}
