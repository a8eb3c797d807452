//! Authorization: may the authenticated user do what the request info says.

use super::request_info;
use crate::auth::authorizer::{Attributes, forbidden};
use crate::auth::{Authorizer, UserInfo};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Handler, Request, Response, call};
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Adds [`Authorization`].
#[derive(Clone)]
pub struct AuthorizationLayer {
    authz: Arc<Authorizer>,
}

impl AuthorizationLayer {
    /// Authorizes with `authz`.
    pub fn new(authz: Arc<Authorizer>) -> Self {
        Self { authz }
    }
}

/// The innermost filter: it wraps the server chain's handler itself, whose call is a `'static`
/// future, so the authorizers can be awaited before it.
impl Layer<Handler> for AuthorizationLayer {
    type Service = Authorization;

    fn layer(&self, inner: Handler) -> Self::Service {
        Authorization {
            inner,
            authz: self.authz.clone(),
        }
    }
}

/// Passes allowed requests on and answers the rest 403 with upstream's message (500 when an
/// authorizer failed).
#[derive(Clone)]
pub struct Authorization {
    inner: Handler,
    authz: Arc<Authorizer>,
}

impl Service<Request> for Authorization {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let (inner, authz) = (self.inner.clone(), self.authz.clone());
        Box::pin(async move {
            // The body is not Sync, so only the head is borrowed while the authorizers decide.
            let (parts, body) = req.into_parts();
            match refusal(&authz, &parts).await {
                None => Ok(call(&inner, Request::from_parts(parts, body)).await),
                Some(e) => Ok(e.into_response()),
            }
        })
    }
}

/// Why the request with head `parts` may not proceed, or `None` when it may.
async fn refusal(authz: &Authorizer, parts: &http::request::Parts) -> Option<ApiError> {
    let info = request_info(&parts.extensions);
    let Some(user) = parts.extensions.get::<UserInfo>() else {
        return Some(ApiError::internal("request without user information"));
    };
    let attributes = Attributes::of_request(user, info);
    let answer = authz.authorize(&attributes).await;
    if let Some(annotations) = parts.extensions.get::<crate::audit::Annotations>() {
        let decision = if answer.allowed() { "allow" } else { "forbid" };
        annotations.add("authorization.k8s.io/decision", decision);
        if !answer.reason.is_empty() {
            annotations.add("authorization.k8s.io/reason", answer.reason.clone());
        }
    }
    if answer.allowed() {
        return None;
    }
    // Upstream answers an authorizer's error (an unreachable webhook) with a 500, not a 403:
    // the request may well be allowed once the authorizer works again.
    if let Some(error) = answer.error {
        return Some(ApiError::internal(error));
    }
    Some(forbidden(&attributes, &answer.reason))
}
