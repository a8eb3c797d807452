//! Authorization: may the authenticated user do what the request info says.

use super::{Answer, answer, request_info};
use crate::auth::authorizer::forbidden_message;
use crate::auth::{Authorizer, Decision, UserInfo};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use futures::future::Either;
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

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Authorization<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorization {
            inner,
            authz: self.authz.clone(),
        }
    }
}

/// Passes allowed requests on and answers the rest 403 with upstream's message.
#[derive(Clone)]
pub struct Authorization<S> {
    inner: S,
    authz: Arc<Authorizer>,
}

impl<S> Service<Request> for Authorization<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let info = request_info(&req);
        let Some(user) = req.extensions().get::<UserInfo>() else {
            return answer(ApiError::internal("request without user information").into_response());
        };
        let reason = match self.authz.authorize(user, info) {
            Decision::Allow => return Either::Right(self.inner.call(req)),
            Decision::Deny(reason) => reason,
            Decision::NoOpinion => String::new(),
        };
        let kind = info.is_resource_request.then(|| info.resource.clone());
        let name = (!info.name.is_empty()).then(|| info.name.clone());
        answer(
            ApiError::forbidden(forbidden_message(user, info, &reason), kind, name).into_response(),
        )
    }
}
