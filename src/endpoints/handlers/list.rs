//! LIST of a collection (upstream's `ListResource`): objects, a Table or partial metadata; the
//! common case (JSON objects, no selectors) splices the stored bytes into the response.

use super::scope::{RequestScope, encode, list_body, list_meta, partial_metadata, respond, table};
use crate::endpoints::Response;
use crate::endpoints::negotiation::{Format, View};
use crate::endpoints::status::ApiError;
use crate::registry::spliced_list;
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
        let mut body = Vec::with_capacity(page.items.len() + 256);
        body.extend_from_slice(b"{\"apiVersion\":");
        serde_json::to_writer(&mut body, &ri.api_version()).expect("strings serialize");
        body.extend_from_slice(b",\"items\":");
        body.extend_from_slice(&page.items);
        body.extend_from_slice(b",\"kind\":");
        serde_json::to_writer(&mut body, &ri.list_kind()).expect("strings serialize");
        body.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut body, &metadata).expect("ListMeta serializes");
        body.push(b'}');
        return Ok(respond(body, output, StatusCode::OK, &[]));
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
