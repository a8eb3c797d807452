//! Authentication: who is asking, from the connection's certificates and the request's headers.
//! A request whose identity needs a lookup (a bearer token) waits for it; the others, most of
//! them with a certificate verified once per connection, are answered or passed on at once.

use super::{Answer, answer};
use crate::auth::{AuthError, Authenticating, Authenticator, ConnInfo, UserInfo};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use futures::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
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

/// Passes `req` from `user` on: its credentials must not leak to handlers that proxy it onwards.
fn pass_on<S: Service<Request>>(inner: &mut S, mut req: Request, user: UserInfo) -> S::Future {
    req.headers_mut().remove(http::header::AUTHORIZATION);
    req.extensions_mut().insert(user);
    inner.call(req)
}

fn unauthorized(path: &str, e: &AuthError) -> Response {
    tracing::debug!(path, error = %e, "authentication failed");
    ApiError::unauthorized().into_response()
}

impl<S> Service<Request> for Authentication<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Unpin,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Answer<S::Future>, LookingUp<S>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let Some(conn) = req.extensions().get::<Arc<ConnInfo>>() else {
            return Either::Left(answer(
                ApiError::internal("request without connection information").into_response(),
            ));
        };
        match self.authn.authenticate_now(conn, req.headers()) {
            Authenticating::Done(Ok(user)) => {
                Either::Left(Either::Right(pass_on(&mut self.inner, req, user)))
            }
            Authenticating::Done(Err(e)) => {
                Either::Left(answer(unauthorized(req.uri().path(), &e)))
            }
            Authenticating::Token(token) => {
                let authn = self.authn.clone();
                let lookup: BoxFuture<'static, _> =
                    Box::pin(async move { authn.token_user(&token).await });
                // The service polled ready goes with the request; a clone stays for the next.
                let ready = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, ready);
                Either::Right(LookingUp::Token {
                    lookup,
                    req: Some(Box::new(req)),
                    inner,
                })
            }
        }
    }
}

/// A request waiting for its bearer token's lookup, then for the inner service.
pub enum LookingUp<S: Service<Request>> {
    /// The lookup runs.
    Token {
        /// The lookup.
        lookup: BoxFuture<'static, Result<UserInfo, AuthError>>,
        /// The request, until it is passed on (boxed: a request is large beside a future).
        req: Option<Box<Request>>,
        /// The service it goes to.
        inner: S,
    },
    /// The inner service answers.
    Inner(S::Future),
}

impl<S> Future for LookingUp<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Unpin,
    S::Future: Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                LookingUp::Token { lookup, req, inner } => {
                    let verdict = ready!(lookup.as_mut().poll(cx));
                    let req = *req.take().expect("polled after the request was passed on");
                    match verdict {
                        Ok(user) => *this = LookingUp::Inner(pass_on(inner, req, user)),
                        Err(e) => return Poll::Ready(Ok(unauthorized(req.uri().path(), &e))),
                    }
                }
                LookingUp::Inner(fut) => return Pin::new(fut).poll(cx),
            }
        }
    }
}
