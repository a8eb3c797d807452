//! List (upstream's `Store.List`): selectors, pagination, resourceVersion semantics, and the
//! spliced fast path that copies stored JSON into the response.

use super::metadata::{labels_of, meta_str, parse_rv};
use super::{Result, Store};
use crate::registry::errors::RegistryError;
use crate::registry::selectors::{FieldSelector, LabelSelector};
use crate::registry::spliced_list;
use crate::storage::{self, ErrorCode, RevisionMatch};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

/// List parameters after parsing the query.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0: unlimited).
    pub limit: i64,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion` ("" unset, "0" any, else a revision).
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// One page of a list: decoded objects, or (a [`SplicedPage`]) their JSON array.
#[derive(Debug)]
pub struct ListPage<Items = Vec<Value>> {
    /// Objects, with resourceVersion set.
    pub items: Items,
    /// The revision the list was read at.
    pub resource_version: String,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// Items remaining after this page, when known and no selector filtered them.
    pub remaining: Option<i64>,
}

/// One page of a list whose items are spliced into one JSON array as it is sent.
pub type SplicedPage = ListPage<SplicedItems>;

/// Bytes of items spliced into one chunk: big enough that a chunk costs little to send, small
/// enough that a list of any size holds only one at a time besides the stored values.
const SPLICE_CHUNK: usize = 64 << 10;

/// The JSON array of a page's items, made a chunk at a time as the connection takes them, so
/// a large list never exists whole in memory and its encoding overlaps its sending. An item
/// that cannot be spliced is decoded; if that fails the chunk is an error and the response
/// ends unfinished, as upstream's streaming list encoder does.
pub struct SplicedItems {
    store: Arc<Store>,
    items: std::vec::IntoIter<storage::KeyValue>,
    omit_type_meta: bool,
    opened: bool,
    closed: bool,
}

impl SplicedItems {
    /// Appends the list item of `kv` to `out`.
    fn append(&self, out: &mut Vec<u8>, kv: &storage::KeyValue) -> Result<()> {
        let (value, revision, omit) = (&kv.value, kv.mod_revision, self.omit_type_meta);
        if let Some(layout) = kv.layout.layout(value)
            && layout.append_item(out, value, revision, omit)
        {
            return Ok(());
        }
        if !spliced_list::append_item(out, value, revision, omit) {
            let mut obj = self.store.decode_kv(kv)?;
            spliced_list::to_list_item(&mut obj, omit);
            serde_json::to_writer(out, &obj).expect("JSON values serialize");
        }
        Ok(())
    }
}

impl Iterator for SplicedItems {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Result<Bytes>> {
        if self.closed {
            return None;
        }
        let mut chunk = Vec::with_capacity(SPLICE_CHUNK + SPLICE_CHUNK / 4);
        if !std::mem::replace(&mut self.opened, true) {
            chunk.push(b'[');
        } else {
            chunk.push(b',');
        }
        let mut first = true;
        while chunk.len() < SPLICE_CHUNK {
            let Some(kv) = self.items.next() else {
                if chunk.last() == Some(&b',') {
                    chunk.pop();
                }
                chunk.push(b']');
                self.closed = true;
                break;
            };
            if !std::mem::take(&mut first) {
                chunk.push(b',');
            }
            if let Err(e) = self.append(&mut chunk, &kv) {
                self.closed = true;
                return Some(Err(e));
            }
        }
        Some(Ok(Bytes::from(chunk)))
    }
}

impl std::fmt::Debug for SplicedItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplicedItems")
            .field("left", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    fn field_lookup<'a>(&'a self, obj: &'a Value) -> impl Fn(&str) -> Option<String> + 'a {
        move |field| match field {
            "metadata.name" => Some(meta_str(obj, "name").unwrap_or("").to_string()),
            "metadata.namespace" => Some(meta_str(obj, "namespace").unwrap_or("").to_string()),
            other => self.strategy.field(obj, other),
        }
    }

    /// Upstream's words for a field selector on `field`: from the kind's own field label
    /// conversion where it has one (custom resources always do), else the scheme's default.
    fn unknown_field_label(&self, field: &str) -> String {
        /// The built-in kinds upstream registers a field label conversion function for.
        const CONVERTED: &[(&str, &str)] = &[
            ("", "Pod"),
            ("", "Node"),
            ("", "ReplicationController"),
            ("", "Event"),
            ("", "Namespace"),
            ("", "Secret"),
            ("", "Service"),
            ("batch", "Job"),
            ("certificates.k8s.io", "CertificateSigningRequest"),
            ("events.k8s.io", "Event"),
        ];
        let info = self.info();
        if !info.is_builtin() || CONVERTED.contains(&(&*info.group, &*info.kind)) {
            format!("field label not supported: {field}")
        } else {
            format!(
                "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            )
        }
    }

    /// Rejects field selectors naming fields this kind does not support (400, as upstream).
    pub fn check_field_selector(&self, fields: &FieldSelector) -> Result<()> {
        for f in fields.fields() {
            if f == "metadata.name" || f == "metadata.namespace" {
                continue;
            }
            // A field is supported when the strategy answers for it on an empty object.
            if self.strategy.field(&json!({"metadata": {}}), f).is_none() {
                return Err(RegistryError::BadRequest(self.unknown_field_label(f)));
            }
        }
        Ok(())
    }

    pub(super) fn matches(&self, obj: &Value, params: &ListParams) -> bool {
        params.labels.matches(&labels_of(obj)) && params.fields.matches(self.field_lookup(obj))
    }

    pub(super) fn storage_list_options(&self, params: &ListParams) -> Result<storage::ListOptions> {
        let rv = params.resource_version.as_deref().unwrap_or("");
        let (revision, revision_match) = match (rv, params.resource_version_match.as_deref()) {
            ("", None | Some("")) => (None, RevisionMatch::Exact),
            ("", Some(m)) => {
                return Err(RegistryError::BadRequest(format!(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided (got {m:?})"
                )));
            }
            ("0", None | Some("") | Some("NotOlderThan")) => (None, RevisionMatch::NotOlderThan),
            (rv, None | Some("")) => (Some(parse_rv(rv)?), RevisionMatch::NotOlderThan),
            (rv, Some("NotOlderThan")) => (Some(parse_rv(rv)?), RevisionMatch::NotOlderThan),
            (rv, Some("Exact")) => (Some(parse_rv(rv)?), RevisionMatch::Exact),
            (_, Some(m)) => {
                return Err(RegistryError::BadRequest(format!(
                    "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        };
        if params.continue_token.is_some() && !rv.is_empty() {
            return Err(RegistryError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        Ok(storage::ListOptions {
            revision,
            revision_match,
            limit: 0,
            continue_token: params.continue_token.clone(),
        })
    }

    /// Reads one page of `prefix` from storage, with upstream's errors for stale revisions
    /// and continue tokens.
    pub(super) async fn read_page(
        &self,
        prefix: &str,
        opts: storage::ListOptions,
        params: &ListParams,
    ) -> Result<storage::ListResult> {
        self.storage.list(prefix, opts).await.map_err(|e| match e.code {
            ErrorCode::Compacted if params.continue_token.is_none() => RegistryError::Expired(format!(
                "too old resource version: {} ({})",
                params.resource_version.as_deref().unwrap_or(""),
                e.revision
            )),
            ErrorCode::Compacted => RegistryError::Expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
            ),
            ErrorCode::InvalidArgument if params.continue_token.is_some() => {
                RegistryError::BadRequest(format!("invalid continue token: {}", e.message))
            }
            _ => self.storage_err(e, ""),
        })
    }

    /// Lists as [`Store::list`] does, with the items as a JSON array spliced from the stored
    /// bytes as the response is sent; `None` when that cannot give the same items: field
    /// selectors must see decoded objects, and a kind that converts on read must convert each
    /// object.
    pub async fn list_spliced(
        self: &Arc<Self>,
        ns: Option<&str>,
        params: &ListParams,
    ) -> Result<Option<SplicedPage>> {
        if !params.fields.is_empty() || self.strategy.storage_conversion().is_some() {
            return Ok(None);
        }
        let page = if params.labels.is_empty() {
            self.read_selected(ns, params, Ok).await?
        } else {
            let select = |kvs| self.select_by_labels(kvs, &params.labels);
            self.read_selected(ns, params, select).await?
        };
        Ok(Some(SplicedPage {
            items: SplicedItems {
                store: self.clone(),
                items: page.items.into_iter(),
                omit_type_meta: self.strategy.typed_list_items(),
                opened: false,
                closed: false,
            },
            resource_version: page.resource_version,
            continue_token: page.continue_token,
            remaining: page.remaining,
        }))
    }

    /// The stored objects whose labels match: only the labels are read, unless the bytes
    /// hold more than plain JSON labels (protobuf, say) and the object must be decoded.
    fn select_by_labels(
        &self,
        items: Vec<storage::KeyValue>,
        selector: &LabelSelector,
    ) -> Result<Vec<storage::KeyValue>> {
        let mut selected = Vec::new();
        for kv in items {
            let labels = match spliced_list::stored_labels(&kv.value) {
                Some(labels) => labels,
                None => labels_of(&self.decode_kv(&kv)?),
            };
            if selector.matches(&labels) {
                selected.push(kv);
            }
        }
        Ok(selected)
    }

    /// Lists objects in `ns` (all namespaces when `None`) with selectors and pagination.
    pub async fn list(&self, ns: Option<&str>, params: &ListParams) -> Result<ListPage> {
        self.check_field_selector(&params.fields)?;
        // A metadata.name=… selector pins one key; list the namespace and filter like upstream.
        self.read_selected(ns, params, |kvs| {
            let mut objs = self.decode_kvs(&kvs)?;
            objs.retain(|obj| self.matches(obj, params));
            Ok(objs)
        })
        .await
    }

    /// Reads `ns` page by page at one revision until `select` has kept `params.limit` items
    /// (all of them without a limit), as upstream's store fills a page of a selection. The
    /// count of items left is known only when nothing was filtered.
    async fn read_selected<T>(
        &self,
        ns: Option<&str>,
        params: &ListParams,
        mut select: impl FnMut(Vec<storage::KeyValue>) -> Result<Vec<T>>,
    ) -> Result<ListPage<Vec<T>>> {
        let prefix = self.prefix(ns);
        let mut opts = self.storage_list_options(params)?;
        let filtering = !params.labels.is_empty() || !params.fields.is_empty();
        let limit = params.limit.max(0);
        let mut items = Vec::new();
        loop {
            opts.limit = if limit > 0 {
                (limit - items.len() as i64).max(1)
            } else {
                0
            };
            let page = self.read_page(&prefix, opts.clone(), params).await?;
            items.extend(select(page.items)?);
            let full = limit > 0 && items.len() as i64 >= limit;
            match page.continue_token {
                Some(token) if !full && limit > 0 => {
                    // Selectors filtered part of the page: keep reading at the same revision.
                    opts.continue_token = Some(token);
                    opts.revision = None;
                    opts.revision_match = RevisionMatch::Exact;
                }
                continue_token => {
                    let remaining = continue_token.as_ref().and(page.remaining);
                    return Ok(ListPage {
                        items,
                        resource_version: page.revision.to_string(),
                        continue_token,
                        remaining: if filtering { None } else { remaining },
                    });
                }
            }
        }
    }
}
