//! WATCH (upstream's `ListResource` with watch=true and `serveWatch`): a stream of events in
//! the negotiated format, ended after the request's timeout or, when the server ends watches as
//! it shuts down, then.

use super::scope::{RequestScope, offer, partial_metadata, table};
use crate::endpoints::negotiation::{self, Format, View};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, BoxError, Response};
use crate::protobuf;
use crate::registry::store::{Event, WatchParams, new_uid};
use bytes::Bytes;
use futures::StreamExt;
use http::{StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use serde_json::Value;

/// One line of a JSON watch stream, borrowing the shared object; the fields are in the sorted
/// order a `serde_json` map writes them.
#[derive(serde::Serialize)]
struct WatchLine<'a> {
    object: &'a Value,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// Serves a WATCH.
pub(super) async fn watch(scope: &RequestScope<'_>) -> Result<Response, ApiError> {
    let (store, output) = (&scope.store, scope.output);
    let params = WatchParams {
        list: scope.query.list_params()?,
        bookmarks: scope.query.flag("allowWatchBookmarks"),
        send_initial_events: scope.query.get("sendInitialEvents").map(|v| v == "true"),
    };
    // Upstream spreads watch lifetimes over [min, 2·min) so clients do not reconnect in waves.
    let timeout = scope.query.timeout()?.unwrap_or_else(|| {
        scope
            .min_request_timeout
            .mul_f64(1.0 + (new_uid().as_bytes()[0] as f64 / 256.0))
    });
    // Watches need a streaming serialiser: YAML has none (upstream's
    // NegotiateOutputMediaTypeStream).
    if output.format == Format::Yaml {
        return Err(negotiation::not_acceptable(offer(store, true), true));
    }
    let events = store.watch(scope.namespace, params).await?;
    let store = store.clone();
    let include = scope.query.get("includeObject").map(str::to_string);
    // The request's timeout, or the server's shutdown when it ends watches.
    let deadline = tokio::time::sleep(timeout);
    let deadline = match &scope.watch_termination {
        Some(termination) => {
            let ending = termination.ending();
            futures::future::Either::Left(async move {
                tokio::select! {
                    _ = deadline => {}
                    _ = ending => {}
                }
            })
        }
        None => futures::future::Either::Right(deadline),
    };
    // Counted while the stream lives; its events as they are sent.
    let info = store.info();
    let kind = crate::metrics::KindLabels {
        group: info.group.to_string(),
        version: info.version.to_string(),
        kind: info.kind.to_string(),
    };
    let m = crate::metrics::metrics();
    let watching = crate::metrics::GaugeGuard::hold(m.watchers.get_or_create(&kind).clone());
    let (sent, sizes) = (
        m.watch_events.get_or_create(&kind).clone(),
        m.watch_event_sizes.get_or_create(&kind).clone(),
    );
    let lines = events.take_until(deadline).map(move |ev: Event| {
        let _watching = &watching;
        let converted = match output.view {
            View::Table if ev.kind != "ERROR" && ev.kind != "BOOKMARK" => Some(table(
                &store,
                std::slice::from_ref(&*ev.object),
                include.as_deref(),
                "",
            )),
            View::PartialMetadata if ev.kind != "ERROR" => Some(partial_metadata(&ev.object)),
            _ => None,
        };
        let encode = |object: &Value| -> Result<Bytes, BoxError> {
            if output.format == Format::Protobuf {
                // Upstream ends the watch when an event cannot be encoded; so does the error.
                let mut frame = Vec::new();
                protobuf::encode_watch_frame(&mut frame, ev.kind, object)?;
                Ok(Bytes::from(frame))
            } else {
                let mut line = serde_json::to_vec(&WatchLine {
                    object,
                    kind: ev.kind,
                })
                .unwrap_or_default();
                line.push(b'\n');
                Ok(Bytes::from(line))
            }
        };
        let frame = match (&converted, &ev.frames) {
            (Some(object), _) => encode(object)?,
            // The object as stored: every watcher of this change in this encoding sends the
            // same bytes, so the first one encodes them for all.
            (None, Some(frames)) => {
                let encoding = match output.format {
                    Format::Protobuf => "protobuf",
                    _ => "json",
                };
                frames.get_or_encode(ev.kind, encoding, || encode(&ev.object))?
            }
            (None, None) => encode(&ev.object)?,
        };
        sent.inc();
        sizes.observe(frame.len() as f64);
        Ok::<_, BoxError>(hyper::body::Frame::data(frame))
    });
    // Upstream adds `;stream=watch` to every media type but JSON's.
    let content_type = match (output.format, output.view) {
        (Format::Protobuf, _) => "application/vnd.kubernetes.protobuf;stream=watch",
        (_, View::Table) => "application/json;as=Table;v=v1;g=meta.k8s.io",
        _ => "application/json",
    };
    let body: Body = BodyExt::boxed_unsync(StreamBody::new(lines));
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .expect("valid response"))
}
