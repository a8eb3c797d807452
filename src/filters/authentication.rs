//! Authentication: who is asking, from the connection's certificates and the request's headers.

use super::{Answer, answer};
use crate::auth::{Authenticator, ConnInfo};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use futures::future::Either;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Adds [`Authentication`].
#[derive(Clone)]
pub struct AuthenticationLayer {
    authn: Arc<Authenticator>,
}

impl AuthenticationLayer {
    /// Authenticates with `authn`.
    pub fn new(authn: Arc<Authenticator>) -> Self {
        Self { authn }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Authentication<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authentication {
            inner,
            authn: self.authn.clone(),
        }
    }
}

/// Stores the authenticated user in the request's extensions, or answers 401.
#[derive(Clone)]
pub struct Authentication<S> {
    inner: S,
    authn: Arc<Authenticator>,
}

impl<S> Service<Request> for Authentication<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let Some(conn) = req.extensions().get::<Arc<ConnInfo>>() else {
            return answer(
                ApiError::internal("request without connection information").into_response(),
            );
        };
        match self.authn.authenticate(conn, req.headers()) {
            Ok(user) => {
                // Credentials must not leak to handlers that proxy the request onwards.
                req.headers_mut().remove(http::header::AUTHORIZATION);
                req.extensions_mut().insert(user);
                Either::Right(self.inner.call(req))
            }
            Err(e) => {
                tracing::debug!(path = req.uri().path(), error = %e, "authentication failed");
                answer(ApiError::unauthorized().into_response())
            }
        }
    }
}
