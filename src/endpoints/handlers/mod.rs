//! REST handlers for resources, one module per verb as upstream's `endpoints/handlers`: the
//! request is parsed once into a [`scope::RequestScope`], its [`Verb`] picks the handler, and
//! every write passes admission through one place ([`admit`]).

mod admit;
pub(crate) mod body;
mod connect;
mod create;
mod creater;
mod delete;
mod deletecollection;
mod get;
mod list;
mod patch;
mod query;
mod scale;
mod scope;
mod update;
mod watch;

use super::negotiation;
use super::request_info::{RequestInfo, Verb};
use super::status::ApiError;
use super::{Body, Handler, Request, Response, call};
use crate::admission::{Chain, Warnings};
use crate::auth::UserInfo;
use crate::registry::rest::{Creater, SubresourceCreater};
use crate::registry::{Store, StoreSet};
pub use connect::{ConnectRequest, Connecter, PROXY_METHODS, STREAM_METHODS};
use http::header;
use query::Query;
use scope::{RequestScope, error_response, offer, with_warnings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Serves the resources of a set of stores, by group/version/resource, and the resources and
/// subresources whose REST storage is their own.
pub struct ResourceHandler {
    stores: StoreSet,
    admission: Chain,
    min_request_timeout: Duration,
    /// Create-only resources, by group/version/resource.
    creaters: BTreeMap<(String, String, String), Arc<dyn Creater>>,
    /// Subresources served by their own storage, by group/resource/subresource.
    subresources: BTreeMap<(String, String, String), Arc<dyn SubresourceCreater>>,
    connecters: BTreeMap<(String, String, String), Arc<dyn Connecter>>,
}

fn header_str(req: &Request, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl ResourceHandler {
    /// A handler serving `stores`, whose writes pass `admission`.
    pub fn new(stores: StoreSet, admission: Chain, min_request_timeout: Duration) -> Self {
        Self {
            stores,
            admission,
            min_request_timeout,
            creaters: BTreeMap::new(),
            subresources: BTreeMap::new(),
            connecters: BTreeMap::new(),
        }
    }

    /// The same handler serving the create-only resource `creater` too.
    pub fn with_creater(mut self, creater: Arc<dyn Creater>) -> Self {
        let i = creater.info();
        let key = (
            i.group.to_string(),
            i.version.to_string(),
            i.resource.to_string(),
        );
        self.creaters.insert(key, creater);
        self
    }

    /// The same handler serving POSTs to subresource `name` of `group`/`resource` with
    /// `creater` (the resource's kind declares the subresource).
    pub fn with_subresource(
        mut self,
        group: &str,
        resource: &str,
        name: &str,
        creater: Arc<dyn SubresourceCreater>,
    ) -> Self {
        let key = (group.to_string(), resource.to_string(), name.to_string());
        self.subresources.insert(key, creater);
        self
    }

    /// Serves a resource request a store of this handler owns; passes every other request
    /// (non-resource paths, resources of other links) to `next`.
    /// Serves subresource `name` of `group`/`resource` with `connecter`.
    pub fn with_connecter(
        mut self,
        group: &str,
        resource: &str,
        name: &str,
        connecter: Arc<dyn Connecter>,
    ) -> Self {
        let key = (group.to_string(), resource.to_string(), name.to_string());
        self.connecters.insert(key, connecter);
        self
    }

    pub async fn serve_or(self: Arc<Self>, req: Request, next: &Handler) -> Response {
        let info = req
            .extensions()
            .get::<RequestInfo>()
            .cloned()
            .unwrap_or_default();
        let store = match info.is_resource_request {
            true => self
                .stores
                .get(&info.api_group, &info.api_version, &info.resource),
            false => None,
        };
        if let Some(store) = store {
            return self.serve(req, &info, store).await;
        }
        let key = (
            info.api_group.clone(),
            info.api_version.clone(),
            info.resource.clone(),
        );
        match self.creaters.get(&key).filter(|_| info.is_resource_request) {
            Some(creater) => self.serve_creater(req, &info, creater.as_ref()).await,
            // Below a group this link serves, go-restful's NotFound Status: no other link owns
            // those paths (unserved groups and custom groups end in a plain 404 further on).
            None if info.api_prefix == "api" || self.serves_group(&info.api_group) => {
                ApiError::not_found_path().into_response()
            }
            None => call(next, req).await,
        }
    }

    /// Whether a built-in resource of API group `group` (not the core group) is served here;
    /// custom resources' groups are not go-restful's and end in a plain 404.
    fn serves_group(&self, group: &str) -> bool {
        !group.is_empty()
            && (self.stores.has_builtin_group(group)
                || self.creaters.keys().any(|(g, _, _)| g == group))
    }

    /// Serves a request for a create-only resource; failures become JSON Status responses.
    async fn serve_creater(
        &self,
        req: Request,
        info: &RequestInfo,
        creater: &dyn Creater,
    ) -> Response {
        let (parts, body) = req.into_parts();
        let user = parts
            .extensions
            .get::<UserInfo>()
            .cloned()
            .unwrap_or_default();
        let request = creater::CreaterRequest {
            request: info,
            query: Query::parse(parts.uri.query()),
            accept: parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            user: &user,
            admission: &self.admission,
            annotations: parts
                .extensions
                .get::<crate::audit::Annotations>()
                .cloned()
                .unwrap_or_default(),
        };
        match creater::serve(creater, request, body).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        }
    }

    /// Serves a request for `store`'s resource; failures become Status responses in the
    /// format the client accepts.
    async fn serve(&self, req: Request, info: &RequestInfo, store: Arc<Store>) -> Response {
        let accept = header_str(&req, header::ACCEPT).to_owned();
        let errors_offer = offer(&store, false);
        match self.dispatch(req, info, store).await {
            Ok(resp) => resp,
            Err(e) => error_response(e, &accept, errors_offer),
        }
    }

    async fn dispatch(
        &self,
        req: Request,
        info: &RequestInfo,
        store: Arc<Store>,
    ) -> Result<Response, ApiError> {
        let ri = store.info();
        let ns = (!info.namespace.is_empty()).then_some(info.namespace.as_str());
        // A namespaced resource is reachable without a namespace only for cluster-wide list/watch;
        // a cluster-scoped one never under a namespace.
        if (ri.namespaced && ns.is_none() && !matches!(info.verb, Verb::List | Verb::Watch))
            || (!ri.namespaced && ns.is_some() && ri.resource != "namespaces")
        {
            return Err(ApiError::not_found_path());
        }
        // A namespace's name is the path's namespace segment; the store takes no namespace.
        let ns = if ri.resource == "namespaces" {
            None
        } else {
            ns
        };
        if let Some(connecter) = self.connecters.get(&(
            info.api_group.clone(),
            info.resource.clone(),
            info.subresource.clone(),
        )) {
            if !connecter.methods().contains(req.method()) {
                return Err(ApiError::method_not_allowed(&ri.group, &ri.resource));
            }
            let path = connect::path_after(req.uri().path(), &info.name, &info.subresource);
            let warnings = Warnings::default();
            let user = req
                .extensions()
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_default();
            let query = req.uri().query().map(str::to_owned);
            let annotations = req
                .extensions()
                .get::<crate::audit::Annotations>()
                .cloned()
                .unwrap_or_default();
            let admitted = connect::admit(
                &self.admission,
                connect::Connect {
                    store: &store,
                    subresource: &info.subresource,
                    namespace: ns,
                    name: &info.name,
                    path: &path,
                    query: query.as_deref(),
                    user: &user,
                    annotations: &annotations,
                },
                &warnings,
            )
            .await;
            let accept = header_str(&req, header::ACCEPT).to_owned();
            let result = match admitted {
                Ok(()) => {
                    connecter
                        .connect(ConnectRequest {
                            store: &store,
                            namespace: ns,
                            name: &info.name,
                            path: &path,
                            request: req,
                        })
                        .await
                }
                Err(e) => Err(e),
            };
            let resp = result.unwrap_or_else(|e| error_response(e, &accept, offer(&store, false)));
            return Ok(with_warnings(resp, &warnings.take()));
        }
        let output = negotiation::negotiate(header_str(&req, header::ACCEPT), offer(&store, true))
            .ok_or_else(|| negotiation::not_acceptable(offer(&store, true), false))?;
        let sub = info.subresource.as_str();
        if !sub.is_empty() && !ri.subresources.iter().any(|s| s.name == sub) {
            return Err(ApiError::not_found_path());
        }

        let accept = header_str(&req, header::ACCEPT).to_owned();
        let (parts, body) = req.into_parts();
        let scope = RequestScope {
            namespace: ns,
            query: Query::parse(parts.uri.query()),
            output,
            user: parts
                .extensions
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_default(),
            content_type: header_value(&parts.headers, header::CONTENT_TYPE),
            user_agent: header_value(&parts.headers, header::USER_AGENT),
            admission: &self.admission,
            min_request_timeout: self.min_request_timeout,
            watch_termination: parts.extensions.get().cloned(),
            warnings: Warnings::default(),
            annotations: parts
                .extensions
                .get::<crate::audit::Annotations>()
                .cloned()
                .unwrap_or_default(),
            request: info,
            store,
        };
        let own_storage = self.subresources.get(&(
            info.api_group.clone(),
            info.resource.clone(),
            info.subresource.clone(),
        ));
        let result = match (&info.verb, own_storage) {
            (Verb::Create, Some(creater)) => {
                creater::create_subresource(&scope, creater.as_ref(), body).await
            }
            _ => route(&scope, body).await,
        };
        // Admission's warnings go with whatever answer the request gets, a refusal too.
        let resp =
            result.unwrap_or_else(|e| error_response(e, &accept, offer(&scope.store, false)));
        Ok(with_warnings(resp, &scope.warnings.take()))
    }
}

fn header_value(headers: &http::HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The handler of the request's verb and subresource; anything else is 405, as upstream.
async fn route(scope: &RequestScope<'_>, body: Body) -> Result<Response, ApiError> {
    let ri = scope.store.info();
    match (&scope.request.verb, scope.subresource()) {
        (Verb::Get, "" | "status" | "scale" | "ephemeralcontainers" | "resize") => {
            get::get(scope).await
        }
        (Verb::List, "") => list::list(scope).await,
        (Verb::Watch, "") => watch::watch(scope).await,
        (Verb::Create, "") if scope.name().is_empty() => create::create(scope, body).await,
        (
            Verb::Update,
            "" | "status" | "finalize" | "approval" | "scale" | "ephemeralcontainers" | "resize",
        ) => update::update(scope, body).await,
        (Verb::Patch, "" | "status" | "approval" | "scale" | "ephemeralcontainers" | "resize") => {
            patch::patch(scope, body).await
        }
        (Verb::Delete, "") => delete::delete(scope, body).await,
        (Verb::DeleteCollection, "") if ri.verbs.contains(&"deletecollection") => {
            deletecollection::delete_collection(scope, body).await
        }
        _ => Err(ApiError::method_not_allowed(&ri.group, &ri.resource)),
    }
}

#[cfg(test)]
mod tests;
