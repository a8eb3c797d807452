//! TokenReview (authentication.k8s.io/v1): whether a bearer token is valid and whose it is, as
//! upstream's `pkg/registry/authentication/tokenreview`; webhooks and extension servers ask it.

use crate::auth::Authenticator;
use crate::registry::rest::{Context, Creater, create_only_info};
use crate::registry::{RegistryError, ResourceInfo};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewStatus, UserInfo};
use serde_json::Value;
use std::sync::Arc;

/// The `tokenreviews` resource.
pub struct TokenReviews {
    info: ResourceInfo,
    authenticator: Arc<Authenticator>,
}

impl TokenReviews {
    /// Reviews tokens with `authenticator`.
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self {
            info: create_only_info::<TokenReview>(),
            authenticator,
        }
    }
}

#[async_trait::async_trait]
impl Creater for TokenReviews {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    async fn create(&self, _ctx: &Context<'_>, obj: Value) -> Result<Value, RegistryError> {
        let mut review: TokenReview = serde_json::from_value(obj)
            .map_err(|e| RegistryError::BadRequest(format!("decoding TokenReview: {e}")))?;
        let token = review.spec.token.clone().unwrap_or_default();
        if token.is_empty() {
            return Err(RegistryError::BadRequest(
                "token is required for TokenReview in authentication".into(),
            ));
        }
        let audiences = match review.spec.audiences.as_deref() {
            Some(a) if !a.is_empty() => a.to_vec(),
            _ => self.authenticator.api_audiences().to_vec(),
        };
        let verdict = self
            .authenticator
            .authenticate_token(&token, &audiences)
            .await;
        let authenticated = verdict.user.is_some();
        let user = verdict
            .user
            .map(crate::auth::authenticated)
            .map(|u| UserInfo {
                username: Some(u.name),
                uid: (!u.uid.is_empty()).then_some(u.uid),
                groups: (!u.groups.is_empty()).then_some(u.groups),
                extra: (!u.extra.is_empty()).then_some(u.extra),
            })
            .unwrap_or_default();
        review.status = Some(TokenReviewStatus {
            authenticated: authenticated.then_some(true),
            audiences: (authenticated && !verdict.audiences.is_empty())
                .then_some(verdict.audiences),
            error: (!verdict.error.is_empty()).then_some(verdict.error),
            user: Some(user),
        });
        serde_json::to_value(review).map_err(|e| RegistryError::Internal(e.to_string()))
    }
}
