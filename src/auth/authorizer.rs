//! Authorization modes in order (`--authorization-mode`), first decisive answer wins.
//!
//! RBAC is not implemented yet; until it is, the RBAC mode grants what upstream's bootstrap
//! policy grants the two kinds of callers kubeboot can have: authenticated users get everything
//! (every bootstrap caller is an admin today), anonymous users only the `system:public-info-viewer`
//! paths. The Node mode has no opinion, as it has none for non-node users upstream.

use super::{AuthorizationConfig, AuthorizationMode as Mode, UserInfo};
use crate::endpoints::request_info::{RequestInfo, Verb};

/// The answer of one mode, or of the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied, with the reason appended to the Forbidden message when non-empty.
    Deny(String),
    /// The mode does not decide; the next one is asked.
    NoOpinion,
}

/// Non-resource URLs that `system:public-info-viewer` grants to everyone, anonymous included.
const PUBLIC_INFO_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The ordered chain of authorization modes.
pub struct Authorizer {
    modes: Vec<Mode>,
}

impl Authorizer {
    /// Builds the chain of the configured modes, in their order.
    pub fn new(config: &AuthorizationConfig) -> Self {
        Self {
            modes: config.modes.clone(),
        }
    }

    /// Decides a request; never `NoOpinion`.
    pub fn authorize(&self, user: &UserInfo, info: &RequestInfo) -> Decision {
        for mode in &self.modes {
            let decision = match mode {
                Mode::AlwaysAllow => Decision::Allow,
                Mode::AlwaysDeny => Decision::Deny(String::new()),
                Mode::Node => Decision::NoOpinion,
                Mode::Rbac => rbac_bootstrap(user, info),
            };
            if decision != Decision::NoOpinion {
                return decision;
            }
        }
        Decision::Deny(String::new())
    }
}

fn rbac_bootstrap(user: &UserInfo, info: &RequestInfo) -> Decision {
    if !user.is_anonymous() {
        return Decision::Allow;
    }
    if !info.is_resource_request
        && info.verb == Verb::Get
        && PUBLIC_INFO_PATHS.contains(&info.path.as_str())
    {
        return Decision::Allow;
    }
    Decision::NoOpinion
}

/// Upstream's Forbidden message for a denied request.
pub fn forbidden_message(user: &UserInfo, info: &RequestInfo, reason: &str) -> String {
    let mut msg = if !info.is_resource_request {
        format!(
            "forbidden: User {:?} cannot {} path {:?}",
            user.name, info.verb, info.path
        )
    } else {
        let mut resource = info.resource.clone();
        if !info.subresource.is_empty() {
            resource = format!("{resource}/{}", info.subresource);
        }
        let object = if info.name.is_empty() {
            resource.clone()
        } else {
            format!("{resource} {:?}", info.name)
        };
        let scope = if info.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", info.namespace)
        };
        format!(
            "{object} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            user.name, info.verb, info.api_group
        )
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn anonymous_may_read_health_but_not_discovery() {
        let a = Authorizer::new(&AuthorizationConfig {
            modes: vec![Mode::Node, Mode::Rbac],
        });
        let anon = UserInfo::anonymous();
        let get = |p: &str| RequestInfo::parse(&Method::GET, p, None);
        assert_eq!(a.authorize(&anon, &get("/readyz")), Decision::Allow);
        assert_eq!(a.authorize(&anon, &get("/version")), Decision::Allow);
        assert!(matches!(
            a.authorize(&anon, &get("/api")),
            Decision::Deny(_)
        ));
        assert!(matches!(
            a.authorize(&anon, &get("/readyz/ping")),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn forbidden_messages_match_upstream() {
        let anon = UserInfo::anonymous();
        let info = RequestInfo::parse(&Method::GET, "/api/v1/namespaces/default/pods", None);
        assert_eq!(
            forbidden_message(&anon, &info, ""),
            r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let info = RequestInfo::parse(&Method::GET, "/api", None);
        assert_eq!(
            forbidden_message(&anon, &info, ""),
            r#"forbidden: User "system:anonymous" cannot get path "/api""#
        );
    }
}
