//! OpenAPI: `/openapi/v2` (Swagger 2.0) and `/openapi/v3` (a root listing one OpenAPI 3.0
//! document per group-version), generated from the served kinds and k8s-openapi's schemas,
//! and from the schemas of the CustomResourceDefinitions published with
//! [`OpenApi::set_custom_resource`].
//!
//! The documents follow kube-openapi's handlers (`pkg/handler`, `pkg/handler3`): ETags are the
//! upper-case hex SHA-512 of the bytes, the v3 root links each group-version with `?hash=`,
//! a hashed URL is cached as immutable and a stale hash is redirected to the current one.

mod custom;
mod definitions;
mod paths;
mod v2proto;

use super::status::ApiError;
use super::{Request, Response, full};
use crate::registry::ResourceInfo;
use bytes::Bytes;
use definitions::{Definitions, Format, LIST_META, OBJECT_META};
use http::{HeaderValue, StatusCode, header};
use paths::{GroupVersionPaths, ResourceDefinitions};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

/// The media type of gnostic's protobuf OpenAPI v2 document, and the Content-Type it is served
/// with whichever spelling was asked for: Go's `mime.ParseMediaType` rejects the `@` of
/// [`V2_PROTOBUF_DEPRECATED`], and client-go parses every response's Content-Type.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The spelling client-go (kubectl 1.27 among them) puts in Accept; upstream deprecated it.
const V2_PROTOBUF_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// One rendered document, its ETag and its media type.
#[derive(Debug, Clone)]
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

/// The schema of one served version of a CustomResourceDefinition.
#[derive(Debug, Clone)]
pub struct CustomResourceSchema {
    /// Group, version, kind, plural, scope, verbs and subresources (status, scale) as
    /// discovery has them.
    pub info: ResourceInfo,
    /// `spec.names.listKind`.
    pub list_kind: String,
    /// The version's `openAPIV3Schema` as JSON; None publishes an object of any fields.
    pub schema: Option<Value>,
    /// The version's `selectableFields` JSON paths (`.spec.color`).
    pub selectable_fields: Vec<String>,
}

/// The documents of the built-in kinds, rendered once, and what composing the CRDs' documents
/// with them takes.
struct Builtin {
    definitions: Definitions,
    /// `v2` as a value, the base CRDs are merged into.
    v2_value: Value,
    v2: Document,
    /// `v2` as gnostic's `openapi.v2.Document`.
    v2_protobuf: Document,
    /// The v3 root's `paths`.
    v3_root: Map<String, Value>,
    /// Keyed by the path under /openapi/v3/: `api/v1`, `apis/apps/v1`.
    v3: BTreeMap<String, Document>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("v2", &self.v2)
            .field("v3", &self.v3)
            .finish_non_exhaustive()
    }
}

/// The documents of one set of published CRDs, composed with the built-in ones.
#[derive(Debug)]
struct Documents {
    v3_root: Document,
    /// The CRDs' group-versions (built-in ones are in [`Builtin::v3`]), by path under
    /// /openapi/v3/.
    v3: BTreeMap<String, Document>,
    /// The CRDs' v2 paths and definitions (with the meta definitions they need that the
    /// built-in document lacks), merged into the built-in v2 on the first v2 request.
    v2_paths: Map<String, Value>,
    v2_definitions: Map<String, Value>,
    /// v2 JSON and protobuf.
    v2: OnceLock<(Document, Document)>,
}

impl Documents {
    /// The v2 documents, JSON and protobuf; merged on first use, as the protobuf encoding of
    /// the whole document takes a while.
    fn v2(&self, builtin: &Builtin) -> &(Document, Document) {
        self.v2.get_or_init(|| {
            if self.v2_paths.is_empty() && self.v2_definitions.is_empty() {
                return (builtin.v2.clone(), builtin.v2_protobuf.clone());
            }
            let mut value = builtin.v2_value.clone();
            for (key, additions) in [
                ("paths", &self.v2_paths),
                ("definitions", &self.v2_definitions),
            ] {
                let Some(Value::Object(map)) = value.get_mut(key) else {
                    continue;
                };
                // Built-ins win conflicts, as upstream's merge keeps the static spec's paths.
                for (name, item) in additions {
                    map.entry(name.clone()).or_insert_with(|| item.clone());
                }
            }
            let json = Document::new(&value);
            let protobuf = Document::v2_protobuf(&value, &json);
            (json, protobuf)
        })
    }
}

/// The published CRDs and the documents rendered from them.
#[derive(Debug, Default)]
struct Custom {
    /// Served versions by CRD name.
    crds: BTreeMap<String, Vec<CustomResourceSchema>>,
    /// None when `crds` changed since the last rendering.
    rendered: Option<Arc<Documents>>,
}

/// The OpenAPI documents of the built-in resources, rendered once, and of the published
/// CustomResourceDefinitions, rendered again after they change; all served from memory.
#[derive(Debug)]
pub struct OpenApi {
    resources: Vec<ResourceInfo>,
    // Rendering takes tens of milliseconds (schemars builds every schema as JSON values), more
    // than start-up can spare, so it happens on the first request instead; see `warm`.
    builtin: OnceLock<Builtin>,
    custom: RwLock<Custom>,
}

impl OpenApi {
    /// The documents describing `resources`; rendered on first use (or by [`OpenApi::warm`]).
    pub fn build(resources: &[ResourceInfo]) -> Self {
        OpenApi {
            resources: resources.to_vec(),
            builtin: OnceLock::new(),
            custom: RwLock::default(),
        }
    }

    /// Renders the documents now, e.g. from a post-start hook, so no request pays for it.
    pub fn warm(&self) {
        self.builtin();
    }

    /// Publishes (replacing) the served versions of the CRD named `crd_name`; re-renders lazily.
    pub fn set_custom_resource(&self, crd_name: &str, versions: Vec<CustomResourceSchema>) {
        let mut custom = self.custom.write().unwrap_or_else(PoisonError::into_inner);
        if versions.is_empty() {
            custom.crds.remove(crd_name);
        } else {
            custom.crds.insert(crd_name.to_string(), versions);
        }
        custom.rendered = None;
    }

    /// Withdraws the CRD named `crd_name`.
    pub fn remove_custom_resource(&self, crd_name: &str) {
        let mut custom = self.custom.write().unwrap_or_else(PoisonError::into_inner);
        if custom.crds.remove(crd_name).is_some() {
            custom.rendered = None;
        }
    }

    fn builtin(&self) -> &Builtin {
        self.builtin.get_or_init(|| render_builtin(&self.resources))
    }

    /// The current documents, rendered again if the CRDs changed.
    fn documents(&self) -> Arc<Documents> {
        let builtin = self.builtin();
        let custom = self.custom.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(documents) = &custom.rendered {
            return documents.clone();
        }
        drop(custom);
        let mut custom = self.custom.write().unwrap_or_else(PoisonError::into_inner);
        let custom = &mut *custom;
        custom
            .rendered
            .get_or_insert_with(|| Arc::new(render_custom(builtin, &custom.crds)))
            .clone()
    }

    /// The OpenAPI v3 schema of the kind `group`/`version`/`kind` as its group-version's
    /// document publishes it, with the document's schemas its `$ref`s point into; None when no
    /// published resource has that kind.
    pub fn kind_schema(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<(Value, Map<String, Value>)> {
        let key = paths::prefix(group, version)
            .trim_start_matches('/')
            .to_string();
        let bytes = match self.builtin().v3.get(&key) {
            Some(document) => document.bytes.clone(),
            None => self.documents().v3.get(&key)?.bytes.clone(),
        };
        let mut document: Value = serde_json::from_slice(&bytes).ok()?;
        let Value::Object(schemas) = document["components"]["schemas"].take() else {
            return None;
        };
        let serves = |schema: &Value| {
            schema["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|gvks| {
                    gvks.iter().any(|gvk| {
                        gvk["group"] == group && gvk["version"] == version && gvk["kind"] == kind
                    })
                })
        };
        let schema = schemas.values().find(|s| serves(s))?.clone();
        Some((schema, schemas))
    }

    /// Serves /openapi/v2, /openapi/v3, /openapi/v3/<gv path>; None for other paths.
    pub fn serve(&self, req: &Request) -> Option<Response> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        let path = req.uri().path();
        match path {
            "/openapi/v2" => {
                let format = negotiate_v2(req);
                let Some(format) = format else {
                    let offered = ["application/json", V2_PROTOBUF, V2_PROTOBUF_DEPRECATED];
                    return Some(ApiError::not_acceptable(&offered).into_response());
                };
                let documents = self.documents();
                let (json, protobuf) = documents.v2(self.builtin());
                let document = match format {
                    V2Format::Json => json,
                    V2Format::Protobuf => protobuf,
                };
                Some(respond(req, document, false))
            }
            "/openapi/v3" | "/openapi/v3/" => Some(respond(req, &self.documents().v3_root, false)),
            _ => {
                let gv = path.strip_prefix("/openapi/v3/")?;
                let custom;
                let document = match self.builtin().v3.get(gv) {
                    Some(document) => document,
                    None => {
                        custom = self.documents();
                        custom.v3.get(gv)?
                    }
                };
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

/// The v3 root's entry for the document at `key`.
fn root_entry(key: &str, document: &Document) -> Value {
    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", document.hash)})
}

/// Renders v2, the v3 root and every v3 group-version document of the built-in resources.
fn render_builtin(resources: &[ResourceInfo]) -> Builtin {
    let definitions = Definitions::builtin();
    let mut by_gv: BTreeMap<(&str, &str), Vec<(&ResourceInfo, ResourceDefinitions)>> =
        BTreeMap::new();
    for info in resources {
        let entry = by_gv.entry((&*info.group, &*info.version)).or_default();
        if let Some(resource) = ResourceDefinitions::builtin(info, &definitions) {
            entry.push((info, resource));
        }
    }
    let mut v2_paths = Map::new();
    let mut v2_roots = Vec::new();
    let mut v2_lists = BTreeSet::new();
    let mut v3 = BTreeMap::new();
    let mut root_paths = Map::new();
    for ((group, version), resources) in &by_gv {
        let gv_paths = GroupVersionPaths::new(group, version, resources, true);
        let lists: BTreeSet<String> = resources.iter().map(|(_, r)| r.object.clone()).collect();
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
        root_paths.insert(key.clone(), root_entry(&key, &document));
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
    Builtin {
        definitions,
        v2_value,
        v2,
        v2_protobuf,
        v3_root: root_paths,
        v3,
    }
}

/// Renders the documents of `crds` and the v3 root listing them with the built-in ones: one
/// v3 document per CRD group-version, carrying the built-in definitions it refers to (as
/// upstream's are self-contained), and the v2 additions.
fn render_custom(
    builtin: &Builtin,
    crds: &BTreeMap<String, Vec<CustomResourceSchema>>,
) -> Documents {
    let mut by_gv: BTreeMap<(&str, &str), Vec<&CustomResourceSchema>> = BTreeMap::new();
    for schema in crds.values().flatten() {
        by_gv
            .entry((&*schema.info.group, &*schema.info.version))
            .or_default()
            .push(schema);
    }
    let mut root_paths = builtin.v3_root.clone();
    let mut v3 = BTreeMap::new();
    let mut v2_paths = Map::new();
    let mut v2_definitions = Map::new();
    let mut v2_meta = BTreeSet::new();
    let no_lists = BTreeSet::new();
    for ((group, version), schemas) in &by_gv {
        let resources: Vec<(&ResourceInfo, ResourceDefinitions)> = schemas
            .iter()
            .map(|s| {
                (
                    &s.info,
                    custom::resource_definitions(s, &builtin.definitions),
                )
            })
            .collect();
        let gv_paths = GroupVersionPaths::new(group, version, &resources, false);
        let referenced = gv_paths.referenced();
        // The custom definitions are not built-in ones: the closure skips them.
        let meta = builtin.definitions.closure(
            referenced
                .iter()
                .map(String::as_str)
                .chain([OBJECT_META, LIST_META]),
            &no_lists,
        );
        let key = paths::prefix(group, version)
            .trim_start_matches('/')
            .to_string();
        // A CRD in a built-in group-version (which upstream allows only in *.k8s.io groups
        // with an approval annotation) is left out of v3: the built-in document stays as is.
        if !builtin.v3.contains_key(&key) {
            let mut components = builtin.definitions.render(&meta, &no_lists, Format::V3);
            for schema in schemas {
                components.extend(custom::definitions(schema, Format::V3));
            }
            let mut paths = Map::new();
            gv_paths.render(Format::V3, &mut paths);
            let document = Document::new(&json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
                "paths": paths,
                "components": {"schemas": components},
            }));
            root_paths.insert(key.clone(), root_entry(&key, &document));
            v3.insert(key, document);
        }
        gv_paths.render(Format::V2, &mut v2_paths);
        for schema in schemas {
            v2_definitions.extend(custom::definitions(schema, Format::V2));
        }
        v2_meta.extend(meta);
    }
    let builtin_v2_definitions = builtin.v2_value["definitions"].as_object();
    v2_meta.retain(|name| !builtin_v2_definitions.is_some_and(|d| d.contains_key(name)));
    v2_definitions.extend(builtin.definitions.render(&v2_meta, &no_lists, Format::V2));
    Documents {
        v3_root: Document::new(&json!({ "paths": root_paths })),
        v3,
        v2_paths,
        v2_definitions,
        v2: OnceLock::new(),
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
    let mut response = builder
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, document.content_type)
        .header(header::CONTENT_LENGTH, document.bytes.len())
        .body(full(body))
        .expect("valid headers");
    // Upstream serves its cached document bytes whatever the client, never re-indented: the
    // ETag names these bytes.
    response.extensions_mut().insert(crate::endpoints::Verbatim);
    response
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

#[cfg(test)]
mod custom_tests;
