//! OpenAPI: `/openapi/v2` (Swagger 2.0) and `/openapi/v3` (a root listing one OpenAPI 3.0
//! document per group-version), generated from the served kinds and k8s-openapi's schemas.
//!
//! The documents follow kube-openapi's handlers (`pkg/handler`, `pkg/handler3`): ETags are the
//! upper-case hex SHA-512 of the bytes, the v3 root links each group-version with `?hash=`,
//! a hashed URL is cached as immutable and a stale hash is redirected to the current one.

mod definitions;
mod paths;
mod v2proto;

use super::status::ApiError;
use super::{Request, Response, full};
use crate::registry::ResourceInfo;
use bytes::Bytes;
use definitions::{Definitions, Format};
use http::{HeaderValue, StatusCode, header};
use paths::GroupVersionPaths;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The media type of gnostic's protobuf OpenAPI v2 document, and the Content-Type it is served
/// with whichever spelling was asked for: Go's `mime.ParseMediaType` rejects the `@` of
/// [`V2_PROTOBUF_DEPRECATED`], and client-go parses every response's Content-Type.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The spelling client-go (kubectl 1.27 among them) puts in Accept; upstream deprecated it.
const V2_PROTOBUF_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// One rendered document, its ETag and its media type.
#[derive(Debug)]
struct Document {
    bytes: Bytes,
    /// Upper-case hex SHA-512 of `bytes`, unquoted, as in upstream's `?hash=`.
    hash: String,
    content_type: &'static str,
}

impl Document {
    fn new(value: &Value) -> Self {
        let bytes = serde_json::to_vec(value).expect("JSON values always serialize");
        let digest = ring::digest::digest(&ring::digest::SHA512, &bytes);
        let hash = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Document {
            bytes: bytes.into(),
            hash,
            content_type: "application/json",
        }
    }

    /// The protobuf form of the v2 document `value`, whose JSON form is `json`. It carries the
    /// JSON's ETag, as upstream's does ("we can re-use the same etag as json because of the
    /// Vary header").
    fn v2_protobuf(value: &Value, json: &Document) -> Self {
        Document {
            bytes: v2proto::encode(value).into(),
            hash: json.hash.clone(),
            content_type: V2_PROTOBUF,
        }
    }
}

/// Every document, rendered.
#[derive(Debug)]
struct Documents {
    v2: Document,
    /// `v2` as gnostic's `openapi.v2.Document`.
    v2_protobuf: Document,
    v3_root: Document,
    /// Keyed by the path under /openapi/v3/: `api/v1`, `apis/apps/v1`.
    v3: BTreeMap<String, Document>,
}

/// The OpenAPI documents of a set of resources, rendered once and served from memory.
#[derive(Debug)]
pub struct OpenApi {
    resources: Vec<ResourceInfo>,
    // Rendering takes tens of milliseconds (schemars builds every schema as JSON values), more
    // than start-up can spare, so it happens on the first request instead; see `warm`.
    documents: OnceLock<Documents>,
}

impl OpenApi {
    /// The documents describing `resources`; rendered on first use (or by [`OpenApi::warm`]).
    pub fn build(resources: &[ResourceInfo]) -> Self {
        OpenApi {
            resources: resources.to_vec(),
            documents: OnceLock::new(),
        }
    }

    /// Renders the documents now, e.g. from a post-start hook, so no request pays for it.
    pub fn warm(&self) {
        self.documents();
    }

    fn documents(&self) -> &Documents {
        self.documents.get_or_init(|| render(&self.resources))
    }

    /// Serves /openapi/v2, /openapi/v3, /openapi/v3/<gv path>; None for other paths.
    pub fn serve(&self, req: &Request) -> Option<Response> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        let path = req.uri().path();
        match path {
            "/openapi/v2" => {
                let documents = self.documents();
                let document = match negotiate_v2(req) {
                    Some(V2Format::Json) => &documents.v2,
                    Some(V2Format::Protobuf) => &documents.v2_protobuf,
                    None => {
                        let offered = ["application/json", V2_PROTOBUF, V2_PROTOBUF_DEPRECATED];
                        return Some(ApiError::not_acceptable(&offered).into_response());
                    }
                };
                Some(respond(req, document, false))
            }
            "/openapi/v3" | "/openapi/v3/" => Some(respond(req, &self.documents().v3_root, false)),
            _ => {
                let gv = path.strip_prefix("/openapi/v3/")?;
                let document = self.documents().v3.get(gv)?;
                if !accepts_json(req) {
                    return Some(ApiError::not_acceptable(&["application/json"]).into_response());
                }
                let Some(hash) = query_hash(req) else {
                    return Some(respond(req, document, false));
                };
                if hash != document.hash {
                    return Some(redirect(&format!(
                        "/openapi/v3/{gv}?hash={}",
                        document.hash
                    )));
                }
                Some(respond(req, document, true))
            }
        }
    }
}

/// Renders v2, the v3 root and every v3 group-version document.
fn render(resources: &[ResourceInfo]) -> Documents {
    let definitions = Definitions::builtin();
    let mut by_gv: BTreeMap<(&str, &str), Vec<&ResourceInfo>> = BTreeMap::new();
    for info in resources {
        by_gv
            .entry((&*info.group, &*info.version))
            .or_default()
            .push(info);
    }
    let mut v2_paths = Map::new();
    let mut v2_roots = Vec::new();
    let mut v2_lists = BTreeSet::new();
    let mut v3 = BTreeMap::new();
    let mut root_paths = Map::new();
    for ((group, version), infos) in &by_gv {
        let gv_paths = GroupVersionPaths::new(group, version, infos, &definitions);
        let lists: BTreeSet<String> = infos
            .iter()
            .filter_map(|i| definitions.definition_of(&i.group, &i.version, &i.kind))
            .map(str::to_string)
            .collect();
        let roots = gv_paths.referenced();
        // `…List` roots are rendered from `lists`, not looked up: the closure skips them.
        let names = definitions.closure(roots.iter().map(String::as_str), &lists);
        let mut paths = Map::new();
        gv_paths.render(Format::V3, &mut paths);
        let document = Document::new(&json!({
            "openapi": "3.0.0",
            "info": info(),
            "paths": paths,
            "components": {
                "schemas": definitions.render(&names, &lists, Format::V3),
                "securitySchemes": security_scheme(),
            },
        }));
        let key = paths::prefix(group, version)
            .trim_start_matches('/')
            .to_string();
        root_paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", document.hash)}),
        );
        v3.insert(key, document);
        gv_paths.render(Format::V2, &mut v2_paths);
        v2_roots.extend(roots);
        v2_lists.extend(lists);
    }
    let v2_names = definitions.closure(v2_roots.iter().map(String::as_str), &v2_lists);
    let v2_value = json!({
        "swagger": "2.0",
        "info": info(),
        "paths": v2_paths,
        "definitions": definitions.render(&v2_names, &v2_lists, Format::V2),
        "securityDefinitions": security_scheme(),
        "security": [{"BearerToken": []}],
    });
    let v2 = Document::new(&v2_value);
    let v2_protobuf = Document::v2_protobuf(&v2_value, &v2);
    Documents {
        v2,
        v2_protobuf,
        v3_root: Document::new(&json!({ "paths": root_paths })),
        v3,
    }
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": crate::version::GIT_VERSION})
}

fn security_scheme() -> Value {
    json!({"BearerToken": {
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    }})
}

/// Whether the Accept header admits JSON; kube-openapi's handlers negotiate the same way
/// (any clause matching `application/json` by type and subtype, `*` matching anything).
fn accepts_json(req: &Request) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|clause| {
        let media = clause.split(';').next().unwrap_or("").trim();
        let (ty, sub) = media.split_once('/').unwrap_or((media, ""));
        (ty == "*" || ty.eq_ignore_ascii_case("application"))
            && (sub == "*" || sub.eq_ignore_ascii_case("json"))
    })
}

/// The two forms of /openapi/v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V2Format {
    Json,
    Protobuf,
}

/// Picks the v2 form as kube-openapi's handler does: the Accept clauses in order of
/// preference (quality, then specificity), the first one matching JSON or either protobuf
/// spelling wins; no Accept header means JSON.
fn negotiate_v2(req: &Request) -> Option<V2Format> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut clauses: Vec<(f32, u8, &str, &str)> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim();
            let (ty, sub) = media.split_once('/').unwrap_or((media, ""));
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let specificity = u8::from(ty != "*") + u8::from(sub != "*");
            (q > 0.0).then_some((q, specificity, ty, sub))
        })
        .collect();
    // Stable, so equally preferred clauses keep the client's order.
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    let offered = [
        ("json", V2Format::Json),
        (&V2_PROTOBUF["application/".len()..], V2Format::Protobuf),
        (
            &V2_PROTOBUF_DEPRECATED["application/".len()..],
            V2Format::Protobuf,
        ),
    ];
    clauses.iter().find_map(|(_, _, ty, sub)| {
        if *ty != "*" && !ty.eq_ignore_ascii_case("application") {
            return None;
        }
        offered
            .iter()
            .find(|(offer, _)| *sub == "*" || sub.eq_ignore_ascii_case(offer))
            .map(|(_, format)| *format)
    })
}

fn query_hash(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Whether `If-None-Match` names this ETag (or `*`), compared weakly as `http.ServeContent` does.
fn not_modified(req: &Request, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// A document response with its ETag; `immutable` for URLs carrying the current hash.
fn respond(req: &Request, document: &Document, immutable: bool) -> Response {
    let etag = format!("\"{}\"", document.hash);
    let mut builder = http::Response::builder()
        .header(header::ETAG, &etag)
        .header(header::VARY, "Accept");
    builder = if immutable {
        // Upstream: "public, immutable" and an Expires one year ahead, only for hashed URLs.
        let expires = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
        builder
            .header(header::CACHE_CONTROL, "public, immutable")
            .header(header::EXPIRES, http_date(expires))
    } else {
        // What upstream's WithCacheControl filter gives every response that sets none.
        builder.header(header::CACHE_CONTROL, "no-cache, private")
    };
    if not_modified(req, &etag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(full(Bytes::new()))
            .expect("valid headers");
    }
    let body = if req.method() == http::Method::HEAD {
        Bytes::new()
    } else {
        document.bytes.clone()
    };
    builder
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, document.content_type)
        .header(header::CONTENT_LENGTH, document.bytes.len())
        .body(full(body))
        .expect("valid headers")
}

fn redirect(location: &str) -> Response {
    let mut response = http::Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(full(format!(
            "<a href=\"{location}\">Moved Permanently</a>.\n\n"
        )))
        .expect("valid headers");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An RFC 1123 date in GMT (`Mon, 02 Jan 2006 15:04:05 GMT`), as Go's `time.RFC1123` prints
/// the Expires header upstream.
fn http_date(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
    )
}

#[cfg(test)]
mod tests;
