//! Impersonation, as upstream's `WithImpersonation`: `Impersonate-User`, `-Group`, `-Uid` and
//! `-Extra-<key>` make the request run as someone else, each value authorized first with the
//! `impersonate` verb (on users, groups, serviceaccounts, uids, userextras/<key>); the headers
//! are removed before the request goes on, so no handler or extension server ever sees them.
//! Requests without them pass at once.

use super::deciding::Deciding;
use super::{Answer, answer};
use crate::auth::authorizer::{Attributes, forbidden};
use crate::auth::serviceaccount::{ALL_SERVICE_ACCOUNTS_GROUP, username};
use crate::auth::{
    ANONYMOUS_USER, AUTHENTICATED_GROUP, Authorizer, UNAUTHENTICATED_GROUP, UserInfo,
};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Request, Response};
use futures::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// Adds [`Impersonation`].
#[derive(Clone)]
pub struct ImpersonationLayer {
    authz: Arc<Authorizer>,
}

impl ImpersonationLayer {
    /// Authorizes impersonation with `authz`.
    pub fn new(authz: Arc<Authorizer>) -> Self {
        Self { authz }
    }
}

impl<S> Layer<S> for ImpersonationLayer {
    type Service = Impersonation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Impersonation {
            inner,
            authz: self.authz.clone(),
        }
    }
}

/// Runs a request as the user it impersonates, once allowed to.
#[derive(Clone)]
pub struct Impersonation<S> {
    inner: S,
    authz: Arc<Authorizer>,
}

/// One thing a request asks to act as: upstream's impersonation requests.
#[derive(Debug, Clone)]
enum Asked {
    User(String),
    ServiceAccount(String, String),
    Group(String),
    Extra(String, String),
    Uid(String),
}

/// Upstream's `buildImpersonationRequests`.
fn requests(headers: &http::HeaderMap) -> Result<Vec<Asked>, String> {
    let value = |v: &http::HeaderValue| v.to_str().unwrap_or("").to_string();
    let mut out = Vec::new();
    let user = headers.get(USER).map(value).filter(|u| !u.is_empty());
    if let Some(user) = &user {
        let sa = user
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'));
        out.push(match sa {
            Some((ns, name)) => Asked::ServiceAccount(ns.into(), name.into()),
            None => Asked::User(user.clone()),
        });
    }
    let others = out.len();
    for group in headers.get_all(GROUP) {
        out.push(Asked::Group(value(group)));
    }
    for (name, v) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .to_string();
            out.push(Asked::Extra(key, value(v)));
        }
    }
    if let Some(uid) = headers.get(UID).map(value).filter(|u| !u.is_empty()) {
        out.push(Asked::Uid(uid));
    }
    if out.len() > others && user.is_none() {
        return Err(format!("requested {out:?} without impersonating a user"));
    }
    Ok(out)
}

fn strip(headers: &mut http::HeaderMap) {
    headers.remove(USER);
    headers.remove(GROUP);
    headers.remove(UID);
    let extras: Vec<http::HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(EXTRA_PREFIX))
        .cloned()
        .collect();
    for k in extras {
        headers.remove(k);
    }
}

/// The impersonated user, once every request is authorized; the Forbidden answer otherwise.
async fn impersonate(
    authz: &Authorizer,
    requestor: &UserInfo,
    requests: Vec<Asked>,
    groups_given: bool,
) -> Result<UserInfo, ApiError> {
    let mut user = UserInfo::default();
    for request in &requests {
        let (group, resource, subresource, namespace, name) = match request {
            Asked::User(name) => {
                user.name = name.clone();
                ("", "users", "", "", name.as_str())
            }
            Asked::ServiceAccount(ns, name) => {
                user.name = username(ns, name);
                if !groups_given {
                    user.groups = vec![
                        ALL_SERVICE_ACCOUNTS_GROUP.into(),
                        format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{ns}"),
                    ];
                }
                ("", "serviceaccounts", "", ns.as_str(), name.as_str())
            }
            Asked::Group(name) => {
                user.groups.push(name.clone());
                ("", "groups", "", "", name.as_str())
            }
            Asked::Extra(key, value) => {
                user.extra
                    .entry(key.clone())
                    .or_default()
                    .push(value.clone());
                (
                    "authentication.k8s.io",
                    "userextras",
                    key.as_str(),
                    "",
                    value.as_str(),
                )
            }
            Asked::Uid(uid) => {
                user.uid = uid.clone();
                ("authentication.k8s.io", "uids", "", "", uid.as_str())
            }
        };
        let attributes = Attributes {
            user: requestor,
            verb: "impersonate",
            resource_request: true,
            path: "",
            namespace,
            api_group: group,
            api_version: "v1",
            resource,
            subresource,
            name,
            field_selector: "",
        };
        let answer = authz.authorize(&attributes).await;
        if !answer.allowed() {
            return Err(forbidden(&attributes, &answer.reason));
        }
    }
    // Upstream adds system:authenticated (system:unauthenticated for anonymous) unless a
    // group given already says which.
    let says = |g: &str| user.groups.iter().any(|x| x == g);
    if user.name != ANONYMOUS_USER {
        if !says(AUTHENTICATED_GROUP) && !says(UNAUTHENTICATED_GROUP) {
            user.groups.push(AUTHENTICATED_GROUP.into());
        }
    } else if !says(UNAUTHENTICATED_GROUP) {
        user.groups.push(UNAUTHENTICATED_GROUP.into());
    }
    Ok(user)
}

impl<S> Service<Request> for Impersonation<S>
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

    fn call(&mut self, mut req: Request) -> Self::Future {
        let asked = match requests(req.headers()) {
            Ok(asked) if asked.is_empty() => {
                return Either::Left(Either::Right(self.inner.call(req)));
            }
            Ok(asked) => asked,
            Err(e) => {
                tracing::debug!(error = %e, "impersonation refused");
                return Either::Left(answer(ApiError::internal(e).into_response()));
            }
        };
        let Some(requestor) = req.extensions().get::<UserInfo>().cloned() else {
            return Either::Left(answer(
                ApiError::internal("no user found for request").into_response(),
            ));
        };
        let groups_given = req.headers().contains_key(GROUP);
        strip(req.headers_mut());
        let authz = self.authz.clone();
        let audit = req.extensions().get::<crate::audit::Annotations>().cloned();
        let decision: BoxFuture<'static, _> = Box::pin(async move {
            let user = impersonate(&authz, &requestor, asked, groups_given)
                .await
                .map_err(ApiError::into_response)?;
            if let Some(audit) = audit {
                audit.impersonated(&user);
            }
            Ok(user)
        });
        Either::Right(Deciding::start(&mut self.inner, req, decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn impersonation_requests_are_read_as_upstream() {
        assert!(requests(&headers(&[])).unwrap().is_empty());
        let asked = requests(&headers(&[
            ("impersonate-user", "system:serviceaccount:ns:robot"),
            ("impersonate-group", "g1"),
            ("impersonate-group", "g2"),
            ("impersonate-extra-scopes%2Fview", "a"),
        ]))
        .unwrap();
        assert!(matches!(&asked[0], Asked::ServiceAccount(ns, n) if ns == "ns" && n == "robot"));
        assert_eq!(asked.len(), 4);
        assert!(matches!(&asked[3], Asked::Extra(k, v) if k == "scopes/view" && v == "a"));
        assert!(requests(&headers(&[("impersonate-group", "g1")])).is_err());
    }
}
