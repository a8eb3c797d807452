//! Webhook conversion of custom resources (`spec.conversion.strategy: Webhook`), as upstream's
//! `webhookConverter`: objects go to the CRD's conversion webhook in a ConversionReview (v1, or
//! v1beta1 when that is all it lists) and come back in the desired version; only their labels and
//! annotations may change in metadata. The store converts synchronously as it encodes and
//! decodes, so a call blocks its worker thread (the multi-threaded runtime hands the worker's
//! other tasks on meanwhile), as upstream's codec blocks its goroutine.

use crate::registry::RegistryError;
use crate::registry::store::new_uid;
use crate::webhook::{ClientConfig, Endpoint, ServiceResolver};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookConversion;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Upstream's timeout for conversion webhook calls.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A CRD's conversion webhook.
pub struct Converter {
    endpoint: Endpoint,
    review_version: Option<&'static str>,
    resolver: Arc<ServiceResolver>,
}

impl Converter {
    /// The converter of `webhook`, resolving Services with `resolver`.
    pub fn new(webhook: &WebhookConversion, resolver: Arc<ServiceResolver>) -> Self {
        let cc = webhook.client_config.clone().unwrap_or_default();
        let config = ClientConfig {
            url: cc.url,
            service: cc.service.map(|s| (s.namespace, s.name, s.path, s.port)),
            ca_bundle: cc.ca_bundle.map(|b| b.0),
        };
        Self {
            endpoint: Endpoint::new(config, TIMEOUT),
            review_version: webhook
                .conversion_review_versions
                .iter()
                .find_map(|v| ["v1", "v1beta1"].into_iter().find(|k| k == v)),
            resolver,
        }
    }

    /// Converts `obj` to `desired` (an apiVersion) in place, waiting for the webhook; the error
    /// names the object's version and kind as upstream's.
    pub fn convert(&self, obj: &mut Value, desired: &str) -> Result<(), RegistryError> {
        self.convert_all(std::slice::from_mut(obj), desired)
    }

    /// Converts every object of `objs` not in `desired` with one ConversionReview.
    pub fn convert_all(&self, objs: &mut [Value], desired: &str) -> Result<(), RegistryError> {
        let pending: Vec<usize> = (0..objs.len())
            .filter(|i| objs[*i]["apiVersion"] != desired)
            .collect();
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let obj = &objs[*first];
        let from = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let (group, version) = from.split_once('/').unwrap_or(("", &from));
        let failed = |e: String| {
            RegistryError::Internal(format!(
                "conversion webhook for {group}/{version}, Kind={kind} failed: {e}"
            ))
        };
        let handle = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
            .ok_or_else(|| failed("no runtime to call the webhook on".into()))?;
        let sent: Vec<Value> = pending.iter().map(|i| objs[*i].clone()).collect();
        let converted = tokio::task::block_in_place(|| handle.block_on(self.call(&sent, desired)))
            .map_err(failed)?;
        for (i, converted) in pending.into_iter().zip(converted) {
            objs[i] = restore_metadata(&objs[i], converted);
        }
        Ok(())
    }

    /// Sends `objects` to the webhook to convert to `desired`; checks the answer as upstream.
    async fn call(&self, objects: &[Value], desired: &str) -> Result<Vec<Value>, String> {
        let version = self
            .review_version
            .ok_or("webhook does not accept known ConversionReview versions")?;
        let uid = new_uid();
        let review = json!({
            "kind": "ConversionReview",
            "apiVersion": format!("apiextensions.k8s.io/{version}"),
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
        });
        let body = bytes::Bytes::from(serde_json::to_vec(&review).unwrap_or_default());
        let answer = self
            .endpoint
            .post(&self.resolver, body)
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value =
            serde_json::from_slice(&answer).map_err(|e| format!("unmarshal failed: {e}"))?;
        let response = answer
            .get("response")
            .filter(|r| r.is_object())
            .ok_or("no response provided")?;
        let got = response["uid"].as_str().unwrap_or("");
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
        if response["result"]["status"] != "Success" {
            let message = response["result"]["message"].as_str().unwrap_or("");
            return Err(format!("conversion webhook failed: {message}"));
        }
        let converted = response["convertedObjects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if converted.len() != objects.len() {
            return Err(format!(
                "expected {} converted objects, got {}",
                objects.len(),
                converted.len()
            ));
        }
        for (i, (c, o)) in converted.iter().zip(objects).enumerate() {
            if c["apiVersion"] != desired {
                return Err(format!(
                    "invalid converted object at index {i}: invalid apiVersion {:?}, expected {desired:?}",
                    c["apiVersion"].as_str().unwrap_or("")
                ));
            }
            if c["kind"] != o["kind"] {
                return Err(format!(
                    "invalid converted object at index {i}: invalid kind {:?}, expected {:?}",
                    c["kind"].as_str().unwrap_or(""),
                    o["kind"].as_str().unwrap_or("")
                ));
            }
        }
        Ok(converted)
    }
}

/// The converted object with the original's metadata, but for the labels and annotations the
/// webhook may change (upstream's `restoreObjectMeta`).
fn restore_metadata(original: &Value, mut converted: Value) -> Value {
    let mut metadata = original
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for field in ["labels", "annotations"] {
        match converted.pointer(&format!("/metadata/{field}")) {
            Some(v) if !v.is_null() => metadata[field] = v.clone(),
            _ => {
                if let Some(m) = metadata.as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    converted["metadata"] = metadata;
    converted
}
