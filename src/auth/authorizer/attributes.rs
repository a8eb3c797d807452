//! `Attributes`: what authorization decides on (upstream's `authorizer.Attributes`), from a
//! request or from a SubjectAccessReview.

use crate::auth::UserInfo;
use crate::endpoints::request_info::RequestInfo;

/// The question an authorizer answers: may `user` do `verb` to this resource or path.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// Who asks.
    pub user: &'a UserInfo,
    /// The verb: get, list, watch, create, update, patch, delete, deletecollection, and special
    /// verbs (impersonate, escalate, bind…); the lower-cased method for non-resource paths.
    pub verb: &'a str,
    /// Whether this is about an API resource rather than a path.
    pub resource_request: bool,
    /// The request path, for non-resource requests.
    pub path: &'a str,
    /// The namespace; empty at the cluster scope.
    pub namespace: &'a str,
    /// The API group; empty for core.
    pub api_group: &'a str,
    /// The API version.
    pub api_version: &'a str,
    /// The resource, e.g. `pods`.
    pub resource: &'a str,
    /// The subresource, e.g. `status`; empty for the main resource.
    pub subresource: &'a str,
    /// The object's name; empty for collections.
    pub name: &'a str,
    /// The request's field selector (`?fieldSelector=`), empty when none.
    pub field_selector: &'a str,
}

impl<'a> Attributes<'a> {
    /// The attributes of a request `user` sent.
    pub fn of_request(user: &'a UserInfo, info: &'a RequestInfo) -> Self {
        Self {
            user,
            verb: info.verb.as_str(),
            resource_request: info.is_resource_request,
            path: &info.path,
            namespace: &info.namespace,
            api_group: &info.api_group,
            api_version: &info.api_version,
            resource: &info.resource,
            subresource: &info.subresource,
            name: &info.name,
            field_selector: &info.field_selector,
        }
    }
}
