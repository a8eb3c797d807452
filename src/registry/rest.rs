//! REST storage served by its own logic rather than by the generic store (upstream's
//! `rest.Creater` storages): create-only resources that answer about the request (the
//! authentication and authorization reviews) and subresources that take an object of another
//! kind and act on their parent (serviceaccounts/token, pods/binding, pods/eviction).

use super::Store;
use super::errors::RegistryError;
use super::strategy::ResourceInfo;
use crate::auth::user::UserInfo;
use serde_json::Value;

/// Who asks, where and how: what storage acting on the requester's behalf needs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The requester.
    pub user: &'a UserInfo,
    /// The request's namespace; `None` at the cluster scope.
    pub namespace: Option<&'a str>,
    /// `?dryRun=All`.
    pub dry_run: bool,
}

/// A create-only resource: each POST is answered by the object with its `status` filled.
#[async_trait::async_trait]
pub trait Creater: Send + Sync {
    /// Discovery facts; its verbs are `create` alone.
    fn info(&self) -> &ResourceInfo;

    /// Answers a POST of `obj` (decoded and admitted).
    async fn create(&self, ctx: &Context<'_>, obj: Value) -> Result<Value, RegistryError>;
}

/// A subresource taking a POST of another kind and acting on its parent object.
#[async_trait::async_trait]
pub trait SubresourceCreater: Send + Sync {
    /// Answers a POST of `obj` (decoded and admitted) to subresource of object `name` of the
    /// resource `parent` stores.
    async fn create(
        &self,
        ctx: &Context<'_>,
        parent: &Store,
        name: &str,
        obj: Value,
    ) -> Result<Value, RegistryError>;
}

/// The discovery facts of a create-only resource of k8s-openapi type `T`.
pub fn create_only_info<T>() -> ResourceInfo
where
    T: k8s_openapi::Resource,
    T::Scope: super::kinds::Scope,
{
    ResourceInfo {
        group: T::GROUP.into(),
        version: T::VERSION.into(),
        kind: T::KIND.into(),
        resource: T::URL_PATH_SEGMENT.into(),
        singular: T::KIND.to_lowercase(),
        namespaced: <T::Scope as super::kinds::Scope>::NAMESPACED,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: std::borrow::Cow::Borrowed(&["create"]),
        subresources: Vec::new(),
        name_rule: super::validation::NameRule::Dns1123Subdomain,
        scale: None,
        tracks_generation: false,
        delete_returns_object: false,
    }
}

/// What upstream answers a create that makes no object (pod binding, eviction): a Success
/// Status, whose code its create handler fills in as 201.
pub fn created_status() -> Value {
    let status = k8s_openapi::apimachinery::pkg::apis::meta::v1::Status {
        status: Some("Success".into()),
        code: Some(201),
        ..Default::default()
    };
    serde_json::to_value(status).expect("Status serializes")
}
