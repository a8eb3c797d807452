//! Authentication: who is asking, from the connection's certificates and the request's headers.
//! A request whose identity needs a lookup (a bearer token) waits for it; the others, most of
//! them with a certificate verified once per connection, are answered or passed on at once.

use super::audit::FailedAuthentication;
use super::deciding::Deciding;
use super::{Answer, answer};
use crate::audit::Auditor;
use crate::auth::{AuthError, Authenticating, Authenticator, ConnInfo, UserInfo};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use futures::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Adds [`Authentication`].
#[derive(Clone)]
pub struct AuthenticationLayer {
    authn: Arc<Authenticator>,
    auditor: Option<Arc<Auditor>>,
}

impl AuthenticationLayer {
    /// Authenticates with `authn`; refusals are audited by `auditor`.
    pub fn new(authn: Arc<Authenticator>, auditor: Option<Arc<Auditor>>) -> Self {
        Self { authn, auditor }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Authentication<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authentication {
            inner,
            authn: self.authn.clone(),
            auditor: self.auditor.clone(),
        }
    }
}

/// Stores the authenticated user in the request's extensions, or answers 401.
#[derive(Clone)]
pub struct Authentication<S> {
    inner: S,
    authn: Arc<Authenticator>,
    auditor: Option<Arc<Auditor>>,
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
    type Future = Either<Answer<S::Future>, Deciding<S>>;

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
                attempt("success");
                Either::Left(Either::Right(pass_on(&mut self.inner, req, user)))
            }
            Authenticating::Done(Err(e)) => {
                attempt("failure");
                let audit = FailedAuthentication::prepare(self.auditor.as_ref(), &req);
                Either::Left(answer(audit.refused(unauthorized(req.uri().path(), &e))))
            }
            Authenticating::Token(token) => {
                let authn = self.authn.clone();
                let path = req.uri().path().to_string();
                let audit = FailedAuthentication::prepare(self.auditor.as_ref(), &req);
                let decision: BoxFuture<'static, _> = Box::pin(async move {
                    let user = authn.token_user(&token).await;
                    attempt(if user.is_ok() { "success" } else { "failure" });
                    user.map_err(|e| audit.refused(unauthorized(&path, &e)))
                });
                let mut req = req;
                req.headers_mut().remove(http::header::AUTHORIZATION);
                Either::Right(Deciding::start(&mut self.inner, req, decision))
            }
        }
    }
}

/// Counts an authentication attempt (`authentication_attempts`).
fn attempt(result: &str) {
    crate::metrics::metrics()
        .authentication_attempts
        .get_or_create(&crate::metrics::ResultLabels {
            result: result.into(),
        })
        .inc();
}
