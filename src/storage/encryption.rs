//! Encryption at rest (`--encryption-provider-config`), as upstream's storage value transformers:
//! an `apiserver.config.k8s.io/v1` EncryptionConfiguration names, per resource, providers in
//! order. The first one's first key encrypts what is written; every key of every provider can
//! decrypt, told apart by the prefix it writes (`k8s:enc:aescbc:v1:<key name>:`, `…:aesgcm:…`,
//! `…:secretbox:…`; `identity` writes none), so keys rotate by adding the new key first and
//! rewriting the objects. The bytes are upstream's: AES-CBC is the IV then PKCS#7-padded
//! ciphertext, AES-GCM the nonce then the sealed text authenticated with the storage key,
//! secretbox the nonce then NaCl's box; a cluster's encrypted Secrets read the same in both.

use super::{
    ErrorCode, EventKind, KeyValue, ListOptions, ListResult, ProgressRequests, Result, Storage,
    StorageError, WatchStream,
};
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockCipher, BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What reading or checking an encryption configuration can fail with, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionConfigError {
    /// The file cannot be read or parsed.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path, e.g. `resources[0].providers[1].aescbc.keys[0].secret`.
        field: String,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfig {
    resources: Vec<String>,
    providers: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderConfig {
    aescbc: Option<KeysConfig>,
    aesgcm: Option<KeysConfig>,
    secretbox: Option<KeysConfig>,
    identity: Option<serde_json::Value>,
    kms: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysConfig {
    keys: Vec<KeyConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyConfig {
    name: String,
    secret: String,
}

/// One key of a provider, as it reads and writes.
enum Cipher {
    Identity,
    AesCbc(Vec<u8>),
    AesGcm(Vec<u8>),
    Secretbox(Vec<u8>),
}

/// A key and the prefix of what it writes.
struct Keyed {
    prefix: Vec<u8>,
    cipher: Cipher,
}

/// The prefix every encrypting provider's output starts with.
pub const ENCRYPTED: &[u8] = b"k8s:enc:";

/// The providers of one rule: the first key writes, any key reads.
pub struct Transformer {
    keys: Vec<Keyed>,
}

fn cbc_seal<C>(key: &[u8], data: &[u8]) -> Vec<u8>
where
    C: BlockEncryptMut + BlockCipher + KeyInit,
{
    let iv: [u8; 16] = crate::random::bytes();
    let sealed = cbc::Encryptor::<C>::new_from_slices(key, &iv)
        .expect("key size checked when the configuration was read")
        .encrypt_padded_vec_mut::<Pkcs7>(data);
    [iv.as_slice(), &sealed].concat()
}

fn cbc_open<C>(key: &[u8], data: &[u8]) -> std::result::Result<Vec<u8>, &'static str>
where
    C: BlockDecryptMut + BlockCipher + KeyInit,
{
    if data.len() < 16 {
        return Err("the stored data was shorter than the required size");
    }
    let (iv, sealed) = data.split_at(16);
    if sealed.len() % 16 != 0 {
        return Err("the stored data is not a multiple of the block size");
    }
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .expect("key size checked when the configuration was read")
        .decrypt_padded_vec_mut::<Pkcs7>(sealed)
        .map_err(|_| "invalid PKCS7 data (empty or not padded)")
}

/// AES-GCM with a 192-bit key, which Go's AES takes too.
type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// Seals (or, with `seal` false, opens) `payload` with AES-GCM of `C` under `key`.
fn gcm_with<C>(
    key: &[u8],
    seal: bool,
    nonce: &[u8],
    payload: aes_gcm::aead::Payload<'_, '_>,
) -> std::result::Result<Vec<u8>, aes_gcm::Error>
where
    C: aes_gcm::aead::Aead + aes_gcm::KeyInit,
{
    let cipher = C::new_from_slice(key).expect("key size checked when the configuration was read");
    let nonce = aes_gcm::aead::generic_array::GenericArray::from_slice(nonce);
    if seal {
        cipher.encrypt(nonce, payload)
    } else {
        cipher.decrypt(nonce, payload)
    }
}

/// AES-GCM of the key's size.
fn gcm(
    key: &[u8],
    seal: bool,
    nonce: &[u8],
    payload: aes_gcm::aead::Payload<'_, '_>,
) -> std::result::Result<Vec<u8>, aes_gcm::Error> {
    match key.len() {
        16 => gcm_with::<aes_gcm::Aes128Gcm>(key, seal, nonce, payload),
        24 => gcm_with::<Aes192Gcm>(key, seal, nonce, payload),
        _ => gcm_with::<aes_gcm::Aes256Gcm>(key, seal, nonce, payload),
    }
}

impl Cipher {
    /// `data` encrypted for the storage key `key` (the data GCM authenticates).
    fn seal(&self, key: &str, data: &[u8]) -> Vec<u8> {
        match self {
            Cipher::Identity => data.to_vec(),
            Cipher::AesCbc(k) => match k.len() {
                16 => cbc_seal::<aes::Aes128>(k, data),
                24 => cbc_seal::<aes::Aes192>(k, data),
                _ => cbc_seal::<aes::Aes256>(k, data),
            },
            Cipher::AesGcm(k) => {
                let nonce: [u8; 12] = crate::random::bytes();
                let payload = aes_gcm::aead::Payload {
                    msg: data,
                    aad: key.as_bytes(),
                };
                let sealed = gcm(k, true, &nonce, payload).expect("AES-GCM seals any length");
                [nonce.as_slice(), &sealed].concat()
            }
            Cipher::Secretbox(k) => {
                use crypto_secretbox::aead::Aead;
                let nonce: [u8; 24] = crate::random::bytes();
                let sealed = crypto_secretbox::XSalsa20Poly1305::new_from_slice(k)
                    .expect("32 bytes")
                    .encrypt(nonce.as_slice().into(), data)
                    .expect("secretbox seals any length");
                [nonce.as_slice(), &sealed].concat()
            }
        }
    }

    /// `data` (after the prefix) decrypted, as written for the storage key `key`.
    fn open(&self, key: &str, data: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
        match self {
            Cipher::Identity if data.starts_with(ENCRYPTED) => {
                Err("identity transformer tried to read encrypted data")
            }
            Cipher::Identity => Ok(data.to_vec()),
            Cipher::AesCbc(k) => match k.len() {
                16 => cbc_open::<aes::Aes128>(k, data),
                24 => cbc_open::<aes::Aes192>(k, data),
                _ => cbc_open::<aes::Aes256>(k, data),
            },
            Cipher::AesGcm(k) => {
                if data.len() < 12 {
                    return Err("the stored data was shorter than the required size");
                }
                let (nonce, sealed) = data.split_at(12);
                let payload = aes_gcm::aead::Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                };
                gcm(k, false, nonce, payload).map_err(|_| "cipher: message authentication failed")
            }
            Cipher::Secretbox(k) => {
                use crypto_secretbox::aead::Aead;
                if data.len() < 24 {
                    return Err("the stored data was shorter than the required size");
                }
                let (nonce, sealed) = data.split_at(24);
                crypto_secretbox::XSalsa20Poly1305::new_from_slice(k)
                    .expect("32 bytes")
                    .decrypt(nonce.into(), sealed)
                    .map_err(|_| "output array was not large enough for encryption")
            }
        }
    }
}

impl Transformer {
    /// `value` as stored under `key`: encrypted by the first key, behind its prefix.
    pub fn seal(&self, key: &str, value: &[u8]) -> Bytes {
        let first = &self.keys[0];
        let sealed = first.cipher.seal(key, value);
        Bytes::from([first.prefix.as_slice(), &sealed].concat())
    }

    /// What `stored` under `key` holds, decrypted by the key its prefix names.
    pub fn open(&self, key: &str, stored: &[u8]) -> Result<Bytes> {
        let mut last = "no matching prefix found";
        for k in &self.keys {
            let Some(rest) = stored.strip_prefix(k.prefix.as_slice()) else {
                continue;
            };
            match k.cipher.open(key, rest) {
                Ok(plain) => return Ok(Bytes::from(plain)),
                // identity reads whatever has no other prefix; an encrypting key that
                // matched its prefix and failed is the answer.
                Err(why) if k.prefix.is_empty() => last = why,
                Err(why) => {
                    return Err(StorageError::new(
                        ErrorCode::Internal,
                        key,
                        0,
                        format!("failed to decrypt the stored data: {why}"),
                    ));
                }
            }
        }
        Err(StorageError::new(
            ErrorCode::Internal,
            key,
            0,
            format!("failed to decrypt the stored data: {last}"),
        ))
    }
}

/// An EncryptionConfiguration: for each rule, the resources it covers and their transformer.
pub struct EncryptionConfig {
    rules: Vec<(Vec<String>, Arc<Transformer>)>,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys stay out of logs.
        let resources: Vec<&Vec<String>> = self.rules.iter().map(|(r, _)| r).collect();
        f.debug_struct("EncryptionConfig")
            .field("resources", &resources)
            .finish()
    }
}

/// Whether the configured resource name `pattern` covers `resource` of `group` (`secrets`,
/// `deployments.apps`, `*.apps`, `*.` for the core group, `*.*` for everything).
fn covers(pattern: &str, group: &str, resource: &str) -> bool {
    let (r, g) = pattern.split_once('.').unwrap_or((pattern, ""));
    (r == "*" || r == resource) && (g == "*" || g == group)
}

impl EncryptionConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> std::result::Result<Self, EncryptionConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| EncryptionConfigError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let file: ConfigFile =
            serde_saphyr::from_str(&text).map_err(|e| EncryptionConfigError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Self::from_file(file)
    }

    fn from_file(file: ConfigFile) -> std::result::Result<Self, EncryptionConfigError> {
        let invalid =
            |field: String, reason: String| EncryptionConfigError::Invalid { field, reason };
        if file.api_version != "apiserver.config.k8s.io/v1"
            || file.kind != "EncryptionConfiguration"
        {
            return Err(invalid(
                "apiVersion/kind".into(),
                format!(
                    "got {}/{}, expected apiserver.config.k8s.io/v1 EncryptionConfiguration",
                    file.api_version, file.kind
                ),
            ));
        }
        let mut rules = Vec::new();
        for (i, rule) in file.resources.into_iter().enumerate() {
            let at = format!("resources[{i}]");
            if rule.resources.is_empty() {
                return Err(invalid(format!("{at}.resources"), "Required value".into()));
            }
            if rule.providers.is_empty() {
                return Err(invalid(format!("{at}.providers"), "Required value".into()));
            }
            let mut keys = Vec::new();
            for (j, provider) in rule.providers.into_iter().enumerate() {
                keys.extend(provider_keys(provider, &format!("{at}.providers[{j}]"))?);
            }
            rules.push((rule.resources, Arc::new(Transformer { keys })));
        }
        Ok(Self { rules })
    }

    /// The transformer of the first rule covering `resource` of `group`, if any.
    pub fn transformer(&self, group: &str, resource: &str) -> Option<Arc<Transformer>> {
        self.rules
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| covers(p, group, resource)))
            .map(|(_, t)| t.clone())
    }
}

/// The keys of one provider, checked as upstream's validation does.
fn provider_keys(
    p: ProviderConfig,
    at: &str,
) -> std::result::Result<Vec<Keyed>, EncryptionConfigError> {
    let invalid = |field: String, reason: String| EncryptionConfigError::Invalid { field, reason };
    let given = [
        p.aescbc.is_some(),
        p.aesgcm.is_some(),
        p.secretbox.is_some(),
        p.identity.is_some(),
        p.kms.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(invalid(
            at.into(),
            "more than one provider specified in a single element, should split into different list elements"
                .into(),
        ));
    }
    if p.kms.is_some() {
        return Err(invalid(
            format!("{at}.kms"),
            "KMS providers are not implemented by kubeboot".into(),
        ));
    }
    if p.identity.is_some() {
        return Ok(vec![Keyed {
            prefix: Vec::new(),
            cipher: Cipher::Identity,
        }]);
    }
    let (name, keys, sizes): (&str, KeysConfig, &[usize]) = if let Some(k) = p.aescbc {
        ("aescbc", k, &[16, 24, 32])
    } else if let Some(k) = p.aesgcm {
        ("aesgcm", k, &[16, 24, 32])
    } else {
        ("secretbox", p.secretbox.expect("one provider"), &[32])
    };
    if keys.keys.is_empty() {
        return Err(invalid(
            format!("{at}.{name}.keys"),
            "Required value".into(),
        ));
    }
    let mut out = Vec::new();
    for (k, key) in keys.keys.into_iter().enumerate() {
        let field = format!("{at}.{name}.keys[{k}]");
        if key.name.is_empty() {
            return Err(invalid(format!("{field}.name"), "Required value".into()));
        }
        if key.name.contains(':') {
            return Err(invalid(
                format!("{field}.name"),
                "should not contain ':'".into(),
            ));
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(key.secret.trim())
            .map_err(|e| {
                invalid(
                    format!("{field}.secret"),
                    format!("secrets must be base64 encoded: {e}"),
                )
            })?;
        if !sizes.contains(&secret.len()) {
            return Err(invalid(
                format!("{field}.secret"),
                format!(
                    "secret is not of the expected length, got {}, expected one of {sizes:?}",
                    secret.len()
                ),
            ));
        }
        let cipher = match name {
            "aescbc" => Cipher::AesCbc(secret),
            "aesgcm" => Cipher::AesGcm(secret),
            _ => Cipher::Secretbox(secret),
        };
        out.push(Keyed {
            prefix: format!("k8s:enc:{name}:v1:{}:", key.name).into_bytes(),
            cipher,
        });
    }
    Ok(out)
}

/// A resource's storage with its values encrypted on the way down and decrypted on the way up;
/// keys, revisions and everything else pass through.
pub struct EncryptedStorage {
    inner: Arc<dyn Storage>,
    transformer: Arc<Transformer>,
}

impl EncryptedStorage {
    /// `inner` with `transformer` applied to every value.
    pub fn new(inner: Arc<dyn Storage>, transformer: Arc<Transformer>) -> Self {
        Self { inner, transformer }
    }

    /// Decrypts the values of a backend's watch events.
    fn open_events(&self, events: WatchStream) -> WatchStream {
        let transformer = self.transformer.clone();
        events
            .map(move |event| {
                let mut event = event?;
                if event.kind == EventKind::Progress {
                    return Ok(event);
                }
                event.value = transformer.open(&event.key, &event.value)?;
                if let Some(prev) = &event.prev_value {
                    event.prev_value = Some(transformer.open(&event.key, prev)?);
                }
                Ok(event)
            })
            .boxed()
    }

    fn open_kv(&self, kv: KeyValue) -> Result<KeyValue> {
        Ok(KeyValue {
            value: self.transformer.open(&kv.key, &kv.value)?,
            ..kv
        })
    }
}

#[async_trait]
impl Storage for EncryptedStorage {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let sealed = self.transformer.seal(key, &value);
        self.inner.create(key, sealed).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        match self.inner.get(key).await? {
            Some(kv) => Ok(Some(self.open_kv(kv)?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let mut list = self.inner.list(prefix, options).await?;
        list.items = list
            .items
            .into_iter()
            .map(|kv| self.open_kv(kv))
            .collect::<Result<_>>()?;
        Ok(list)
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
    ) -> Result<KeyValue> {
        let sealed = self.transformer.seal(key, &value);
        let kv = self
            .inner
            .guaranteed_update(key, expected_mod_revision, sealed)
            .await?;
        Ok(KeyValue { value, ..kv })
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<KeyValue> {
        let kv = self.inner.delete(key, expected_mod_revision).await?;
        self.open_kv(kv)
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.inner.count(prefix).await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.inner.current_revision().await
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        let events = self.inner.watch(prefix, from_revision).await?;
        Ok(self.open_events(events))
    }

    fn reports_progress(&self) -> bool {
        self.inner.reports_progress()
    }

    async fn compacted_revision(&self) -> Result<Option<i64>> {
        self.inner.compacted_revision().await
    }

    async fn watch_with_progress(
        &self,
        prefix: &str,
        from_revision: i64,
        requests: ProgressRequests,
    ) -> Result<WatchStream> {
        let events = self
            .inner
            .watch_with_progress(prefix, from_revision, requests)
            .await?;
        Ok(self.open_events(events))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn size(&self) -> Result<Option<(String, i64)>> {
        self.inner.size().await
    }

    fn expires_keys(&self) -> bool {
        self.inner.expires_keys()
    }

    async fn create_expiring(&self, key: &str, value: Bytes, ttl: Duration) -> Result<i64> {
        let sealed = self.transformer.seal(key, &value);
        self.inner.create_expiring(key, sealed, ttl).await
    }

    async fn update_expiring(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
        ttl: Duration,
    ) -> Result<KeyValue> {
        let sealed = self.transformer.seal(key, &value);
        let kv = self
            .inner
            .update_expiring(key, expected_mod_revision, sealed, ttl)
            .await?;
        Ok(KeyValue { value, ..kv })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(providers: &str) -> std::result::Result<EncryptionConfig, EncryptionConfigError> {
        let text = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets, '*.apps']\n  providers:\n{providers}"
        );
        EncryptionConfig::from_file(serde_saphyr::from_str(&text).unwrap())
    }

    const K32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyIGI="; // 32 bytes
    const K16: &str = "MTIzNDU2Nzg5MDEyMzQ1Ng=="; // 16 bytes
    const K24: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0"; // 24 bytes

    #[test]
    fn every_provider_round_trips_behind_its_prefix_and_the_first_key_writes() {
        for (provider, prefix) in [
            (
                format!("  - aescbc: {{keys: [{{name: k1, secret: '{K32}'}}]}}\n"),
                "k8s:enc:aescbc:v1:k1:",
            ),
            (
                format!("  - aescbc: {{keys: [{{name: k1, secret: '{K16}'}}]}}\n"),
                "k8s:enc:aescbc:v1:k1:",
            ),
            (
                format!("  - aesgcm: {{keys: [{{name: g, secret: '{K24}'}}]}}\n"),
                "k8s:enc:aesgcm:v1:g:",
            ),
            (
                format!("  - aesgcm: {{keys: [{{name: g, secret: '{K32}'}}]}}\n"),
                "k8s:enc:aesgcm:v1:g:",
            ),
            (
                format!("  - secretbox: {{keys: [{{name: s, secret: '{K32}'}}]}}\n"),
                "k8s:enc:secretbox:v1:s:",
            ),
            ("  - identity: {}\n".to_string(), ""),
        ] {
            let c = config(&provider).unwrap();
            let t = c.transformer("", "secrets").unwrap();
            let sealed = t.seal("/registry/secrets/ns/a", b"{\"data\":1}");
            assert!(sealed.starts_with(prefix.as_bytes()), "{provider}");
            if !prefix.is_empty() {
                assert!(!sealed.windows(8).any(|w| w == b"\"data\":1"), "{provider}");
            }
            let opened = t.open("/registry/secrets/ns/a", &sealed).unwrap();
            assert_eq!(&opened[..], b"{\"data\":1}", "{provider}");
        }
    }

    #[test]
    fn keys_rotate_identity_reads_plain_data_and_gcm_is_bound_to_its_key() {
        let old = config(&format!(
            "  - aescbc: {{keys: [{{name: old, secret: '{K16}'}}]}}\n"
        ))
        .unwrap()
        .transformer("apps", "deployments")
        .unwrap();
        let rotated = config(&format!(
            "  - aesgcm: {{keys: [{{name: new, secret: '{K32}'}}]}}\n  - aescbc: {{keys: [{{name: old, secret: '{K16}'}}]}}\n  - identity: {{}}\n"
        ))
        .unwrap()
        .transformer("apps", "deployments")
        .unwrap();
        let key = "/registry/deployments/ns/d";
        let by_old = old.seal(key, b"v1");
        assert_eq!(&rotated.open(key, &by_old).unwrap()[..], b"v1");
        assert_eq!(
            &rotated.open(key, b"{\"plain\":true}").unwrap()[..],
            b"{\"plain\":true}"
        );
        let by_new = rotated.seal(key, b"v2");
        assert!(by_new.starts_with(b"k8s:enc:aesgcm:v1:new:"));
        let moved = rotated.open("/registry/deployments/ns/other", &by_new);
        assert!(moved.is_err(), "GCM authenticates the storage key");
        let unknown = old.open(key, &by_new).unwrap_err();
        assert!(
            unknown
                .message
                .contains("identity transformer tried to read encrypted data")
                || unknown.message.contains("no matching prefix"),
            "{unknown}"
        );
    }

    #[test]
    fn rules_cover_resources_as_upstream_names_them() {
        assert!(covers("secrets", "", "secrets"));
        assert!(!covers("secrets", "apps", "secrets"));
        assert!(covers("deployments.apps", "apps", "deployments"));
        assert!(covers("*.apps", "apps", "replicasets"));
        assert!(covers("*.", "", "configmaps"));
        assert!(!covers("*.", "apps", "deployments"));
        assert!(covers("*.*", "example.com", "widgets"));
        assert!(covers("widgets.example.com", "example.com", "widgets"));
        let c = config("  - identity: {}\n").unwrap();
        assert!(c.transformer("", "configmaps").is_none());
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let e = config("  - aescbc: {keys: [{name: k, secret: 'c2hvcnQ='}]}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "resources[0].providers[0].aescbc.keys[0].secret: secret is not of the expected length, got 5, expected one of [16, 24, 32]"
        );
        let e = config(&format!(
            "  - secretbox: {{keys: [{{name: s, secret: '{K16}'}}]}}\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("expected one of [32]"), "{e}");
        let e = config("  - kms: {name: k}\n").unwrap_err();
        assert!(
            e.to_string().starts_with("resources[0].providers[0].kms"),
            "{e}"
        );
        let e = config(&format!(
            "  - aescbc: {{keys: [{{name: 'a:b', secret: '{K16}'}}]}}\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("keys[0].name"), "{e}");
        let e = config("  - {identity: {}, aescbc: {keys: []}}\n").unwrap_err();
        assert!(e.to_string().contains("more than one provider"), "{e}");
    }
}
