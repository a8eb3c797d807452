//! Bootstrap tokens (`--enable-bootstrap-token-auth`), as upstream's
//! `plugin/pkg/auth/authenticator/token/bootstrap`: a token `<id>.<secret>` is the Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` that holds that
//! secret, allows authentication and has not expired; its user is `system:bootstrap:<id>`, in
//! `system:bootstrappers` and the groups of its `auth-extra-groups`.

use super::UserInfo;
use crate::registry::Store;
use crate::registry::store::meta_str;
use base64::Engine;
use serde_json::Value;

/// The group every bootstrap token's user is in.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";

/// `<id>.<secret>` of upstream's `BootstrapTokenPattern`: six and sixteen of `[a-z0-9]`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// Equality that takes as long whatever the first difference, so the secret cannot be guessed
/// byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether `group` is one upstream allows in `auth-extra-groups`.
fn valid_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
        && rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The user of bootstrap `token`, or `None` when it is not a valid one (as upstream, a bad
/// bootstrap token is just not recognised; the union then refuses it).
pub async fn authenticate(secrets: &Store, token: &str) -> Option<UserInfo> {
    let (id, secret_part) = parse(token)?;
    let secret = secrets
        .get(Some("kube-system"), &format!("bootstrap-token-{id}"))
        .await
        .ok()?;
    if meta_str(&secret, "deletionTimestamp").is_some()
        || secret.get("type").and_then(Value::as_str) != Some("bootstrap.kubernetes.io/token")
    {
        return None;
    }
    let held = data(&secret, "token-secret")?;
    if !same(held.as_bytes(), secret_part.as_bytes())
        || data(&secret, "token-id").is_some_and(|t| t != id)
    {
        return None;
    }
    if let Some(expiration) = data(&secret, "expiration") {
        let at = time::OffsetDateTime::parse(
            &expiration,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        if at <= time::OffsetDateTime::now_utc() {
            return None;
        }
    }
    if data(&secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    let mut groups = vec![BOOTSTRAPPERS.to_string()];
    if let Some(extra) = data(&secret, "auth-extra-groups") {
        for group in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if !valid_group(group) {
                return None;
            }
            groups.push(group.to_string());
        }
    }
    groups.sort();
    groups.dedup();
    Some(UserInfo {
        name: format!("system:bootstrap:{id}"),
        groups,
        ..UserInfo::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_groups_are_upstreams_shapes() {
        assert_eq!(
            parse("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef",
            "abcde.0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789abcde",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(valid_group(
            "system:bootstrappers:kubeadm:default-node-token"
        ));
        assert!(!valid_group("system:masters"));
        assert!(!valid_group("system:bootstrappers:"));
        assert!(!valid_group("system:bootstrappers:trailing-"));
    }
}
