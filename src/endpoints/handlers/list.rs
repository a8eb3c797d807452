//! LIST of a collection (upstream's `ListResource`): objects, a Table or partial metadata; the
//! common case (JSON objects, no field selectors) streams the stored bytes spliced into it.

use super::scope::{RequestScope, encode, list_body, list_meta, partial_metadata, table};
use crate::endpoints::negotiation::{Format, View};
use crate::endpoints::status::ApiError;
use crate::endpoints::{BoxError, Finite, Response, chunked};
use crate::registry::spliced_list;
use bytes::Bytes;
use http::StatusCode;

/// Serves a LIST.
pub(super) async fn list(scope: &RequestScope<'_>) -> Result<Response, ApiError> {
    let (store, ns, output) = (&scope.store, scope.namespace, scope.output);
    let params = scope.query.list_params()?;
    let ri = store.info();
    if output.view == View::Object
        && output.format == Format::Json
        && let Some(page) = store.list_spliced(ns, &params).await?
    {
        let metadata = list_meta(&page.resource_version, page.continue_token, page.remaining);
        // The members in serde_json's (sorted) order, as the decoded path writes them.
        let mut head = b"{\"apiVersion\":".to_vec();
        serde_json::to_writer(&mut head, &ri.api_version()).expect("strings serialize");
        head.extend_from_slice(b",\"items\":");
        let mut tail = b",\"kind\":".to_vec();
        serde_json::to_writer(&mut tail, &ri.list_kind()).expect("strings serialize");
        tail.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut tail, &metadata).expect("ListMeta serializes");
        tail.push(b'}');
        let items = page
            .items
            .map(|chunk| chunk.map_err(|e| Box::new(e) as BoxError));
        let chunks = std::iter::once(Ok(Bytes::from(head)))
            .chain(items)
            .chain(std::iter::once(Ok(Bytes::from(tail))));
        return Ok(respond_chunked(chunks, output));
    }
    let page = store.list(ns, &params).await?;
    let metadata = list_meta(&page.resource_version, page.continue_token, page.remaining);
    let value = match output.view {
        View::Table => {
            let mut t = table(
                store,
                &page.items,
                scope.query.get("includeObject"),
                &page.resource_version,
            );
            t["metadata"] = serde_json::to_value(metadata).expect("ListMeta serializes");
            t
        }
        View::PartialMetadata => list_body(
            "meta.k8s.io/v1".into(),
            "PartialObjectMetadataList".into(),
            metadata,
            page.items.iter().map(partial_metadata).collect(),
        ),
        View::Object => {
            let mut items = page.items;
            let omit_type_meta = store.strategy().typed_list_items();
            for item in &mut items {
                spliced_list::to_list_item(item, omit_type_meta);
            }
            list_body(ri.api_version(), ri.list_kind(), metadata, items)
        }
    };
    Ok(encode(&value, output, StatusCode::OK, &[]))
}

/// A 200 whose body is `chunks`, each made when the connection can take it.
fn respond_chunked(
    chunks: impl Iterator<Item = Result<Bytes, BoxError>> + Send + 'static,
    output: crate::endpoints::negotiation::Output,
) -> Response {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, output.content_type())
        .extension(Finite)
        .body(chunked(chunks))
        .expect("valid response")
}
