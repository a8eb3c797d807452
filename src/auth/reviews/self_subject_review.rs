//! SelfSubjectReview (authentication.k8s.io/v1): who the requester is, as upstream's
//! `pkg/registry/authentication/selfsubjectreview`; `kubectl auth whoami` asks it.

use crate::registry::rest::{Context, Creater, create_only_info};
use crate::registry::store::now_rfc3339;
use crate::registry::{RegistryError, ResourceInfo};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus, UserInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::Value;

/// The `selfsubjectreviews` resource.
pub struct SelfSubjectReviews {
    info: ResourceInfo,
}

impl Default for SelfSubjectReviews {
    fn default() -> Self {
        Self {
            info: create_only_info::<SelfSubjectReview>(),
        }
    }
}

#[async_trait::async_trait]
impl Creater for SelfSubjectReviews {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, ctx: &Context<'_>, _obj: Value) -> Result<Value, RegistryError> {
        let user = ctx.user;
        let now = serde_json::from_value::<Time>(Value::String(now_rfc3339()))
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        let review = SelfSubjectReview {
            metadata: ObjectMeta {
                creation_timestamp: Some(now),
                ..ObjectMeta::default()
            },
            status: Some(SelfSubjectReviewStatus {
                user_info: Some(UserInfo {
                    username: Some(user.name.clone()),
                    uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
                    groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
                    extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
                }),
            }),
        };
        serde_json::to_value(review).map_err(|e| RegistryError::Internal(e.to_string()))
    }
}
