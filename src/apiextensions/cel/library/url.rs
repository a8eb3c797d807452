//! Upstream's URL library (`k8s.io/apiserver/pkg/cel/library/urls.go`): `url(s)`, `isURL(s)`
//! and the parts of a `kubernetes.URL`, parsed as Go's `url.ParseRequestURI` parses: an
//! absolute URL or an absolute path, no fragment split off.

use super::{CelResult, opaque, ret, string_of, values};
use ::cel::common::types::{STRING_TYPE, Type};
use ::cel::common::value::CowVal;
use ::cel::objects::{Key, Map, Opaque};
use ::cel::{Env, ExecutionError, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The CEL type of URLs.
fn url_type() -> Type {
    Type::new_opaque_type("kubernetes.URL")
}

/// A parsed URL, its parts as Go's `url.URL` holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Url {
    raw: String,
    scheme: String,
    /// Host and port, IPv6 addresses in brackets.
    host: String,
    path: String,
    query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.URL"
    }
}

impl Url {
    /// Parses `raw` as Go's `url.ParseRequestURI`, with its error words.
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
        let fail = |why: &str| format!("parse {raw:?}: {why}");
        if raw.chars().any(|c| c.is_ascii_control()) {
            return Err(fail("net/url: invalid control character in URL"));
        }
        let (scheme, rest) = match split_scheme(raw) {
            Ok(split) => split,
            Err(why) => return Err(fail(why)),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut url = Url {
            raw: raw.to_string(),
            scheme: scheme.to_ascii_lowercase(),
            host: String::new(),
            path: String::new(),
            query: query.to_string(),
        };
        if !rest.starts_with('/') {
            if scheme.is_empty() {
                return Err(fail("invalid URI for request"));
            }
            // An opaque URL (`mailto:x`): no host, no path.
            return Ok(url);
        }
        let path = match rest.strip_prefix("//").filter(|_| !scheme.is_empty()) {
            Some(authority_and_path) => {
                let end = authority_and_path
                    .find('/')
                    .unwrap_or(authority_and_path.len());
                let (authority, path) = authority_and_path.split_at(end);
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                check_host(host).map_err(|why| fail(&why))?;
                url.host = host.to_string();
                path
            }
            None => rest,
        };
        url.path = path.to_string();
        Ok(url)
    }

    /// The host without its port, an IPv6 address without brackets (Go's `Hostname`).
    fn hostname(&self) -> &str {
        let (host, _) = split_port(&self.host);
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The port, or empty (Go's `Port`).
    fn port(&self) -> &str {
        split_port(&self.host).1
    }
}

/// Splits `scheme:rest` as Go's `getScheme`: no scheme when a character before the first `:`
/// cannot be in one.
fn split_scheme(raw: &str) -> Result<(&str, &str), &'static str> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme"),
            ':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Splits a host's `:port`, respecting IPv6 brackets.
fn split_port(host: &str) -> (&str, &str) {
    let colon = match host.rfind(']') {
        Some(close) => host[close..].find(':').map(|i| close + i),
        None => host.rfind(':'),
    };
    match colon {
        Some(i) => (&host[..i], &host[i + 1..]),
        None => (host, ""),
    }
}

/// Go's host checks: a numeric port, and no characters a host cannot hold.
fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = split_port(host);
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid port {:?} after host", &host[name.len()..]));
    }
    if let Some(bad) = name.chars().find(|c| {
        matches!(
            c,
            ' ' | '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`'
        )
    }) {
        return Err(format!(
            "invalid character {:?} in host name",
            bad.to_string()
        ));
    }
    Ok(())
}

/// Registers the URL library's functions.
pub(super) fn register(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    let url = url_type;
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], to_url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", url(), vec![], scheme)?;
    env.add_member_overload("getHost", "url_get_host", url(), vec![], host)?;
    env.add_member_overload("getHostname", "url_get_hostname", url(), vec![], hostname)?;
    env.add_member_overload("getPort", "url_get_port", url(), vec![], port)?;
    env.add_member_overload(
        "getEscapedPath",
        "url_get_escaped_path",
        url(),
        vec![],
        escaped_path,
    )?;
    env.add_member_overload("getQuery", "url_get_query", url(), vec![], query)?;
    Ok(())
}

fn to_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let raw = string_of(&args[0], "url")?;
    let url = Url::parse(&raw).map_err(|e| {
        ExecutionError::function_error(
            "url",
            format!("URL parse error during conversion from string: {e}"),
        )
    })?;
    ret(Value::Opaque(Arc::new(url)))
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(
        Url::parse(&string_of(&args[0], "isURL")?).is_ok(),
    ))
}

fn part<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    f: fn(&Url) -> &str,
) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let url = opaque::<Url>(&args[0], function)?;
    ret(Value::String(Arc::new(f(url).to_string())))
}

fn scheme<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    part(args, "getScheme", |u| &u.scheme)
}

fn host<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    part(args, "getHost", |u| &u.host)
}

fn hostname<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    part(args, "getHostname", Url::hostname)
}

fn port<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    part(args, "getPort", Url::port)
}

fn escaped_path<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    part(args, "getEscapedPath", |u| &u.path)
}

/// The query as Go's `url.Query`: each key's values in order, `+` and escapes decoded.
fn query<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let url = opaque::<Url>(&args[0], "getQuery")?;
    let mut query: HashMap<Key, Vec<Value>> = HashMap::new();
    // Go skips pairs holding a `;` since 1.17.
    for pair in url
        .query
        .split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = |s: &str| {
            form_urlencoded::parse(format!("{s}=").as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default()
        };
        query
            .entry(Key::from(decoded(k)))
            .or_default()
            .push(Value::String(Arc::new(decoded(v))));
    }
    let map = query
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    ret(Value::Map(Map { map: Arc::new(map) }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;

    #[test]
    fn urls_are_parsed_as_go_parses_request_uris() {
        for (expr, want) in [
            (
                "url('https://user@example.com:8443/a/b?x=1').getScheme()",
                "https",
            ),
            (
                "url('https://example.com:8443/a/b').getHost()",
                "example.com:8443",
            ),
            (
                "url('https://example.com:8443/a/b').getHostname()",
                "example.com",
            ),
            ("url('https://example.com:8443/a/b').getPort()", "8443"),
            ("url('https://[::1]:80/').getHostname()", "::1"),
            ("url('https://[::1]/').getHost()", "[::1]"),
            ("url('/a%20b/c').getEscapedPath()", "/a%20b/c"),
            ("url('https://example.com').getEscapedPath()", ""),
            (
                "url('https://e.com/?a=1&a=2&b=x+y').getQuery()['a']",
                "[1, 2]",
            ),
            (
                "url('https://e.com/?a=1&a=2&b=x+y').getQuery()['b'][0]",
                "x y",
            ),
            (
                "isURL('https://example.com') && isURL('/path') && !isURL('relative/path')",
                "true",
            ),
            (
                "!isURL('https://example.com:port/') && !isURL(':nope')",
                "true",
            ),
            ("url('HTTPS://E.com/') == url('HTTPS://E.com/')", "true"),
        ] {
            assert_eq!(eval(expr), Ok(want.to_string()), "{expr}");
        }
        assert!(
            eval("url('relative')")
                .unwrap_err()
                .contains("URL parse error during conversion from string: parse \"relative\": invalid URI for request")
        );
    }
}
