//! A request waiting for its user to be decided — a bearer token looked up (authentication), an
//! impersonation authorized — then for the inner service, which gets the user in the request's
//! extensions; a refusal is answered at once.

use crate::auth::UserInfo;
use crate::endpoints::{Request, Response};
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::Service;

/// The future of a filter whose user is decided asynchronously.
pub enum Deciding<S: Service<Request>> {
    /// The decision runs.
    User {
        /// The decision: the user, or the response refusing the request.
        decision: BoxFuture<'static, Result<UserInfo, Response>>,
        /// The request, until it goes on (boxed: a request is large beside a future).
        req: Option<Box<Request>>,
        /// The service it goes to.
        inner: S,
    },
    /// The inner service answers.
    Inner(S::Future),
}

impl<S: Service<Request> + Clone> Deciding<S> {
    /// Holds `req` until `decision` is made, then passes it to `inner`: the service polled
    /// ready goes with the request, a clone of it stays for the next.
    pub fn start(
        inner: &mut S,
        req: Request,
        decision: BoxFuture<'static, Result<UserInfo, Response>>,
    ) -> Self {
        let ready = inner.clone();
        Deciding::User {
            decision,
            req: Some(Box::new(req)),
            inner: std::mem::replace(inner, ready),
        }
    }
}

impl<S> Future for Deciding<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Unpin,
    S::Future: Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                Deciding::User {
                    decision,
                    req,
                    inner,
                } => {
                    let decided = ready!(decision.as_mut().poll(cx));
                    let mut req = *req.take().expect("polled after the request went on");
                    match decided {
                        Ok(user) => {
                            req.extensions_mut().insert(user);
                            *this = Deciding::Inner(inner.call(req));
                        }
                        Err(refusal) => return Poll::Ready(Ok(refusal)),
                    }
                }
                Deciding::Inner(fut) => return Pin::new(fut).poll(cx),
            }
        }
    }
}
