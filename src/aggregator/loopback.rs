//! The in-process loopback client: a kube `Client` whose requests go straight into the
//! server's filtered handler, as the privileged loopback user, without a TCP connection.

use crate::auth::ConnInfo;
use crate::endpoints::{BoxError, Handler, Response, call};
use http_body_util::BodyExt;
use std::sync::Arc;

/// A kube client calling `handler` (the whole filter chain plus the server chain).
pub fn client(handler: Handler) -> kube::Client {
    let conn = Arc::new(ConnInfo::loopback());
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let (handler, conn) = (handler.clone(), conn.clone());
        async move {
            let mut req = req.map(|body| body.map_err(BoxError::from).boxed_unsync());
            req.extensions_mut().insert(conn);
            Ok::<Response, BoxError>(call(&handler, req).await)
        }
    });
    kube::Client::new(service, "default")
}
