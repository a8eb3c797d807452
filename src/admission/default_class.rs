//! DefaultStorageClass and DefaultIngressClass, as upstream's: a new claim (or Ingress) that
//! names no class gets the cluster's default one — the class annotated as the default, the
//! newest when several are.

use super::{Attributes, Mutating, Operation, Result};
use crate::registry::Store;
use crate::registry::store::ListParams;
use serde_json::{Value, json};
use std::sync::Arc;

/// What kind of default class a plugin gives.
#[derive(Clone, Copy)]
enum Kind {
    Storage,
    Ingress,
}

/// Gives new claims or Ingresses the default class.
pub struct DefaultClass {
    kind: Kind,
    classes: Arc<Store>,
}

impl DefaultClass {
    /// DefaultStorageClass, reading StorageClasses from `classes`.
    pub fn storage(classes: Arc<Store>) -> Self {
        Self {
            kind: Kind::Storage,
            classes,
        }
    }

    /// DefaultIngressClass, reading IngressClasses from `classes`.
    pub fn ingress(classes: Arc<Store>) -> Self {
        Self {
            kind: Kind::Ingress,
            classes,
        }
    }

    /// The default class's name, if any.
    async fn default_name(&self) -> Result<Option<String>> {
        let annotations: &[&str] = match self.kind {
            Kind::Storage => &[
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ],
            Kind::Ingress => &["ingressclass.kubernetes.io/is-default-class"],
        };
        let classes = self.classes.list(None, &ListParams::default()).await?;
        Ok(classes
            .items
            .iter()
            .filter(|c| {
                annotations
                    .iter()
                    .any(|k| c["metadata"]["annotations"][*k] == "true")
            })
            .max_by_key(|c| {
                (
                    c["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    c["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .and_then(|c| c["metadata"]["name"].as_str().map(str::to_string)))
    }
}

#[async_trait::async_trait]
impl Mutating for DefaultClass {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let (group, resource) = match self.kind {
            Kind::Storage => ("", "persistentvolumeclaims"),
            Kind::Ingress => ("networking.k8s.io", "ingresses"),
        };
        if !a.writes(group, resource) {
            return Ok(());
        }
        let Some(obj) = object else { return Ok(()) };
        let named = match self.kind {
            // A claim naming "" on purpose asks for no class; one naming none gets the default.
            Kind::Storage => obj["spec"]
                .get("storageClassName")
                .is_some_and(|v| !v.is_null()),
            Kind::Ingress => {
                obj["spec"]
                    .get("ingressClassName")
                    .is_some_and(|v| !v.is_null())
                    || obj["metadata"]["annotations"]
                        .get("kubernetes.io/ingress.class")
                        .is_some()
            }
        };
        if named {
            return Ok(());
        }
        if let Some(name) = self.default_name().await? {
            if obj.get("spec").is_none() {
                obj["spec"] = json!({});
            }
            let field = match self.kind {
                Kind::Storage => "storageClassName",
                Kind::Ingress => "ingressClassName",
            };
            obj["spec"][field] = json!(name);
        }
        Ok(())
    }
}
