//! `UserInfo`: who a request is from, as upstream's `user.Info` (a leaf: the registry's REST
//! storages that act for the requester read it too, as upstream's do).

use std::collections::BTreeMap;

/// The anonymous user name.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of anonymous requests.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// An authenticated identity, as upstream's `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// UID, may be empty.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The anonymous identity.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            ..Default::default()
        }
    }

    /// The identity of the server's own loopback client: a cluster admin, as upstream's
    /// `system:apiserver` in `system:masters`.
    pub fn loopback() -> Self {
        Self {
            name: "system:apiserver".into(),
            groups: vec!["system:masters".into(), AUTHENTICATED_GROUP.into()],
            ..Default::default()
        }
    }

    /// Whether this is the anonymous identity.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }
}
