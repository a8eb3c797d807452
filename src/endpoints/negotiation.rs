//! Response content negotiation from the Accept header, as upstream's
//! `apiserver/pkg/endpoints/handlers/negotiation` does it over goautoneg.
//!
//! The Accept clauses are sorted as goautoneg sorts them (a stable insertion sort that moves a
//! clause ahead of one with a lower q, or of a wildcard type or subtype); each clause is then
//! matched against the server's media types in their own order (JSON, YAML, protobuf), and the
//! first match whose parameters the endpoint allows wins. q=0 does not exclude a type, as in
//! goautoneg.

use super::status::ApiError;
use crate::protobuf::MEDIA_TYPE as PROTOBUF;

/// The serialisation of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

impl Format {
    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Yaml => "application/yaml",
            Format::Protobuf => PROTOBUF,
        }
    }
}

/// What object a response carries: the resource's own, or a `meta.k8s.io` transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The object (or list) itself.
    Object,
    /// `as=Table;g=meta.k8s.io;v=v1|v1beta1`.
    Table,
    /// `as=PartialObjectMetadata(List);g=meta.k8s.io;v=v1|v1beta1`.
    PartialMetadata,
}

/// A negotiated response form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Serialisation.
    pub format: Format,
    /// Transformation.
    pub view: View,
}

impl Output {
    /// Plain JSON, what an empty Accept gets.
    pub const JSON: Output = Output {
        format: Format::Json,
        view: View::Object,
    };

    /// The same format without a transformation (for Status and Scale bodies).
    pub fn plain(self) -> Output {
        Output {
            view: View::Object,
            ..self
        }
    }

    /// The Content-Type of a (non-watch) response: the media type, with the transformation's
    /// `as`, `v` and `g` when there is one.
    pub fn content_type(self) -> String {
        let media = self.format.media_type();
        match self.view {
            View::Object => media.to_string(),
            View::Table => format!("{media};as=Table;v=v1;g=meta.k8s.io"),
            View::PartialMetadata => format!("{media};as=PartialObjectMetadata;v=v1;g=meta.k8s.io"),
        }
    }
}

/// What an endpoint can serve.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    /// Protobuf is served (built-in kinds; not custom resources).
    pub protobuf: bool,
    /// `as=Table` / `as=PartialObjectMetadata` transformations are allowed (resource
    /// endpoints; not error bodies, which upstream negotiates with no conversions).
    pub conversions: bool,
}

/// One clause of an Accept header.
#[derive(Debug)]
struct Clause<'a> {
    ty: &'a str,
    sub: &'a str,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

impl Clause<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|&(_, v)| v)
    }
}

/// goautoneg's `Less`: not a strict order, but what its insertion sort applies.
fn less(a: &Clause<'_>, b: &Clause<'_>) -> bool {
    a.q > b.q || (a.ty != "*" && b.ty == "*") || (a.sub != "*" && b.sub == "*")
}

/// goautoneg's `ParseAccept`, sorted as Go's `sort.Sort` sorts short slices (insertion sort).
fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    for part in header.split(',') {
        let part = part.trim_matches(' ');
        let mut pieces = part.split(';');
        let range = pieces.next().unwrap_or("");
        let mut sp = range.split('/');
        let ty = sp.next().unwrap_or("").trim_matches(' ');
        let sub = match (sp.next(), sp.next()) {
            (None, _) if ty == "*" => "*",
            (Some(sub), None) => sub.trim_matches(' '),
            _ => continue,
        };
        let mut clause = Clause {
            ty,
            sub,
            q: 1.0,
            params: Vec::new(),
        };
        for param in pieces {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let k = k.trim_matches(' ');
            if k == "q" {
                // Go's ParseFloat error leaves 0.
                clause.q = v.parse().unwrap_or(0.0);
            } else {
                clause.params.push((k, v.trim_matches(' ')));
            }
        }
        clauses.push(clause);
    }
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    clauses
}

/// The formats of an endpoint, in upstream's order.
fn formats(offer: Offer) -> &'static [Format] {
    if offer.protobuf {
        &[Format::Json, Format::Yaml, Format::Protobuf]
    } else {
        &[Format::Json, Format::Yaml]
    }
}

/// upstream's `acceptMediaTypeOptions` with a RequestScope's (or, without conversions, the
/// default) endpoint restrictions: `None` when the clause's parameters rule the format out.
fn accept_options(clause: &Clause<'_>, format: Format, offer: Offer) -> Option<Output> {
    if let Some(stream) = clause.param("stream")
        && !stream.is_empty()
        && (format == Format::Yaml || stream != "watch")
    {
        return None;
    }
    if clause.param("sv").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let (kind, group, version) = (clause.param("as"), clause.param("g"), clause.param("v"));
    if kind.is_none() && group.is_none() && version.is_none() {
        return Some(Output {
            format,
            view: View::Object,
        });
    }
    if !offer.conversions
        || group != Some("meta.k8s.io")
        || !matches!(version, Some("v1" | "v1beta1"))
    {
        return None;
    }
    let view = match kind? {
        // Tables are only rendered as text (upstream's AllowsConversion).
        "Table" if format != Format::Protobuf => View::Table,
        "PartialObjectMetadata" | "PartialObjectMetadataList" => View::PartialMetadata,
        _ => return None,
    };
    Some(Output { format, view })
}

/// Negotiates the Accept header against what the endpoint offers; `None` is 406.
pub fn negotiate(accept: &str, offer: Offer) -> Option<Output> {
    // Go's HTTP server trims the header value; hyper's parser leaves nothing else either.
    let accept = accept.trim();
    if accept.is_empty() {
        return Some(Output::JSON);
    }
    let formats = formats(offer);
    parse_accept(accept).iter().find_map(|clause| {
        formats.iter().find_map(|&format| {
            let (ty, sub) = format
                .media_type()
                .split_once('/')
                .expect("media types have a subtype");
            let matches = (clause.ty == ty && (clause.sub == sub || clause.sub == "*"))
                || (clause.ty == "*" && clause.sub == "*");
            matches
                .then(|| accept_options(clause, format, offer))
                .flatten()
        })
    })
}

/// The 406 of a failed negotiation, listing the endpoint's media types (with `;stream=watch`
/// and only streamable ones for watches), as upstream's `NewNotAcceptableError`.
pub fn not_acceptable(offer: Offer, watch: bool) -> ApiError {
    let types: Vec<String> = formats(offer)
        .iter()
        .filter(|&&f| !watch || f != Format::Yaml)
        .map(|f| {
            if watch {
                format!("{};stream=watch", f.media_type())
            } else {
                f.media_type().to_string()
            }
        })
        .collect();
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    ApiError::not_acceptable(&types)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILT_IN: Offer = Offer {
        protobuf: true,
        conversions: true,
    };
    const CUSTOM: Offer = Offer {
        protobuf: false,
        conversions: true,
    };
    const ERRORS: Offer = Offer {
        protobuf: true,
        conversions: false,
    };

    fn out(format: Format, view: View) -> Option<Output> {
        Some(Output { format, view })
    }

    #[test]
    fn client_go_protobuf_clients_get_protobuf_and_custom_resources_json() {
        let accept = "application/vnd.kubernetes.protobuf, application/json";
        assert_eq!(
            negotiate(accept, BUILT_IN),
            out(Format::Protobuf, View::Object)
        );
        assert_eq!(negotiate(accept, CUSTOM), out(Format::Json, View::Object));
        assert_eq!(negotiate(PROTOBUF, CUSTOM), None);
        assert_eq!(
            negotiate(
                "application/json, application/vnd.kubernetes.protobuf",
                BUILT_IN
            ),
            out(Format::Json, View::Object)
        );
    }

    #[test]
    fn empty_and_wildcard_accepts_get_json_and_unknown_types_nothing() {
        assert_eq!(negotiate("", BUILT_IN), Some(Output::JSON));
        assert_eq!(negotiate("*/*", BUILT_IN), Some(Output::JSON));
        assert_eq!(negotiate("*", BUILT_IN), Some(Output::JSON));
        assert_eq!(negotiate("application/*", BUILT_IN), Some(Output::JSON));
        assert_eq!(negotiate("text/html", BUILT_IN), None);
        assert_eq!(negotiate("application", BUILT_IN), None);
        assert_eq!(
            negotiate("application/yaml", BUILT_IN),
            out(Format::Yaml, View::Object)
        );
    }

    #[test]
    fn q_values_and_specificity_order_the_clauses_as_goautoneg() {
        assert_eq!(
            negotiate(
                "application/json;q=0.5, application/vnd.kubernetes.protobuf",
                BUILT_IN
            ),
            out(Format::Protobuf, View::Object)
        );
        // A concrete type moves ahead of a wildcard whatever its q (goautoneg's Less).
        assert_eq!(
            negotiate("*/*, application/yaml;q=0.1", BUILT_IN),
            out(Format::Yaml, View::Object)
        );
        // Equal q: the client's order.
        assert_eq!(
            negotiate("application/yaml, application/json", BUILT_IN),
            out(Format::Yaml, View::Object)
        );
        // q=0 does not exclude (goautoneg keeps the clause).
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf;q=0", BUILT_IN),
            out(Format::Protobuf, View::Object)
        );
    }

    #[test]
    fn tables_are_text_only_and_partial_metadata_any_format() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl, BUILT_IN), out(Format::Json, View::Table));
        assert_eq!(
            negotiate(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json",
                BUILT_IN
            ),
            out(Format::Json, View::Object)
        );
        assert_eq!(
            negotiate(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
                BUILT_IN
            ),
            out(Format::Protobuf, View::PartialMetadata)
        );
        assert_eq!(
            negotiate(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io",
                BUILT_IN
            ),
            None
        );
        assert_eq!(
            negotiate("application/json;as=Widget;v=v1;g=meta.k8s.io", BUILT_IN),
            None
        );
        // Error bodies allow no conversion: the plain clause after it wins.
        assert_eq!(negotiate(kubectl, ERRORS), Some(Output::JSON));
    }

    #[test]
    fn stream_watch_is_allowed_for_json_and_protobuf_only() {
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf;stream=watch", BUILT_IN),
            out(Format::Protobuf, View::Object)
        );
        assert_eq!(negotiate("application/yaml;stream=watch", BUILT_IN), None);
        assert_eq!(negotiate("application/json;stream=other", BUILT_IN), None);
        assert_eq!(negotiate("application/json;sv=v1", BUILT_IN), None);
    }

    #[test]
    fn not_acceptable_lists_the_endpoints_types() {
        assert_eq!(
            not_acceptable(BUILT_IN, false).message,
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        assert_eq!(
            not_acceptable(CUSTOM, true).message,
            "only the following media types are accepted: application/json;stream=watch"
        );
    }

    #[test]
    fn content_types_carry_the_transformation() {
        assert_eq!(
            Output {
                format: Format::Protobuf,
                view: View::PartialMetadata
            }
            .content_type(),
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
        );
        assert_eq!(Output::JSON.content_type(), "application/json");
    }
}
