//! autoscaling/v1 HorizontalPodAutoscalers: another version of autoscaling/v2's, as upstream
//! serves them. Both are stored in the v2 form under the one key prefix; this strategy converts
//! on the way in and out as upstream's `pkg/apis/autoscaling/v1` conversion does: the CPU
//! utilization target and current value are the v1 fields, and what v1 cannot say (other
//! metrics, conditions, behavior) travels in upstream's `autoscaling.alpha.kubernetes.io/*`
//! annotations, so a v1 round trip loses nothing.

use crate::registry::errors::{ErrorList, RegistryError};
use crate::registry::strategy::{Decoded, Names, ResourceInfo, Rules, StorageConversion, Strategy};
use crate::registry::table::Column;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Upstream's annotations for the v2 fields v1 has no place for.
const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The v1 rules: defaults only; the v2 rules validate and print the converted object.
pub struct HorizontalPodAutoscalerRules;

impl Rules<HorizontalPodAutoscaler> for HorizontalPodAutoscalerRules {
    const SHORT_NAMES: Names = &["hpa"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [crate::registry::strategy::Sub] =
        &[crate::registry::strategy::Sub::Status];

    fn default(&self, hpa: &mut HorizontalPodAutoscaler) {
        if let Some(spec) = hpa.spec.as_mut() {
            spec.min_replicas.get_or_insert(1);
        }
    }
}

/// The autoscaling/v1 kind: this version's schema decodes, autoscaling/v2's rules validate and
/// print the converted object.
pub fn kind() -> super::Kind {
    super::Kind::new::<HorizontalPodAutoscaler>(Arc::new(HpaV1 {
        typed: super::strategy(HorizontalPodAutoscalerRules),
        v2: super::strategy(super::autoscaling_v2::HorizontalPodAutoscalerRules),
    }))
}

/// The autoscaling/v1 strategy over `typed` (this version's schema) and `v2` (the stored
/// version's strategy).
struct HpaV1 {
    typed: Arc<dyn Strategy>,
    v2: Arc<dyn Strategy>,
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization"
}

fn annotations(obj: &mut Value) -> &mut Map<String, Value> {
    let meta = obj
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"].as_object_mut().expect("just made")
}

/// Removes annotation `name` and answers the JSON it holds.
fn take_annotation(obj: &mut Value, name: &str) -> Option<Value> {
    let text = obj
        .pointer_mut("/metadata/annotations")?
        .as_object_mut()?
        .remove(name)?;
    serde_json::from_str(text.as_str()?).ok()
}

/// An autoscaling/v1 object in the autoscaling/v2 form, in place.
pub fn to_v2(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    m.insert("apiVersion".into(), "autoscaling/v2".into());
    let mut metrics: Vec<Value> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    if let Some(Value::Object(spec)) = m.get_mut("spec")
        && let Some(target) = spec.remove("targetCPUUtilizationPercentage")
    {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": target}}}));
    }
    if let Some(Value::Object(status)) = m.get_mut("status")
        && let Some(now) = status.remove("currentCPUUtilizationPercentage")
    {
        current.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": now}}}));
    }
    if let Some(Value::Array(other)) = take_annotation(obj, METRICS) {
        metrics.extend(other);
    }
    if let Some(Value::Array(other)) = take_annotation(obj, CURRENT_METRICS) {
        current.extend(other);
    }
    let conditions = take_annotation(obj, CONDITIONS);
    let behavior = take_annotation(obj, BEHAVIOR);
    if obj
        .pointer("/metadata/annotations")
        .is_some_and(|a| a == &json!({}))
    {
        obj["metadata"]
            .as_object_mut()
            .expect("has annotations")
            .remove("annotations");
    }
    if !metrics.is_empty() {
        obj["spec"]["metrics"] = Value::Array(metrics);
    }
    if let Some(behavior) = behavior {
        obj["spec"]["behavior"] = behavior;
    }
    if obj.get("status").is_some() || !current.is_empty() || conditions.is_some() {
        if !current.is_empty() {
            obj["status"]["currentMetrics"] = Value::Array(current);
        }
        if let Some(conditions) = conditions {
            obj["status"]["conditions"] = conditions;
        }
    }
}

/// An autoscaling/v2 object in the autoscaling/v1 form, in place.
pub fn to_v1(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    m.insert("apiVersion".into(), "autoscaling/v1".into());
    let mut keep = Vec::new();
    if let Some(Value::Object(spec)) = m.get_mut("spec") {
        if let Some(Value::Array(metrics)) = spec.remove("metrics") {
            let (cpu, other): (Vec<Value>, Vec<Value>) =
                metrics.into_iter().partition(is_cpu_utilization);
            if let Some(target) = cpu.first() {
                spec.insert(
                    "targetCPUUtilizationPercentage".into(),
                    target["resource"]["target"]["averageUtilization"].clone(),
                );
            }
            if !other.is_empty() {
                keep.push((METRICS, Value::Array(other)));
            }
        }
        if let Some(behavior) = spec.remove("behavior") {
            keep.push((BEHAVIOR, behavior));
        }
    }
    if let Some(Value::Object(status)) = m.get_mut("status") {
        if let Some(Value::Array(current)) = status.remove("currentMetrics") {
            let (cpu, other): (Vec<Value>, Vec<Value>) = current.into_iter().partition(|c| {
                c["type"] == "Resource"
                    && c["resource"]["name"] == "cpu"
                    && c["resource"]["current"]["averageUtilization"].is_number()
            });
            if let Some(now) = cpu.first() {
                status.insert(
                    "currentCPUUtilizationPercentage".into(),
                    now["resource"]["current"]["averageUtilization"].clone(),
                );
            }
            if !other.is_empty() {
                keep.push((CURRENT_METRICS, Value::Array(other)));
            }
        }
        if let Some(conditions) = status.remove("conditions") {
            keep.push((CONDITIONS, conditions));
        }
    }
    for (name, value) in keep {
        annotations(obj).insert(name.into(), Value::String(value.to_string()));
    }
    // v1's status is a Go struct whose replica counts are always written.
    let status = obj
        .as_object_mut()
        .expect("an object")
        .entry("status")
        .or_insert_with(|| json!({}));
    if let Some(status) = status.as_object_mut() {
        status.entry("currentReplicas").or_insert(json!(0));
        status.entry("desiredReplicas").or_insert(json!(0));
    }
}

fn v2_form(obj: &Value) -> Value {
    let mut v2 = obj.clone();
    to_v2(&mut v2);
    v2
}

impl Strategy for HpaV1 {
    fn info(&self) -> &ResourceInfo {
        self.typed.info()
    }
    fn decode(&self, obj: Value) -> Result<Decoded, String> {
        self.typed.decode(obj)
    }
    fn default(&self, obj: &mut Value) {
        self.typed.default(obj)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        self.v2.validate(&v2_form(obj))
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        self.v2.validate_update(&v2_form(new), &v2_form(old))
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        self.typed.prepare_for_create(obj)
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        self.typed.prepare_for_update(new, old)
    }
    fn columns(&self) -> Vec<Column> {
        self.v2.columns()
    }
    fn cells(&self, obj: &Value) -> Vec<Value> {
        self.v2.cells(&v2_form(obj))
    }
    fn storage_conversion(&self) -> Option<&dyn StorageConversion> {
        Some(self)
    }
    fn storage_resource(&self) -> (&str, &str) {
        self.v2.storage_resource()
    }
}

impl StorageConversion for HpaV1 {
    fn encode(&self, obj: &mut Value) -> Result<(), RegistryError> {
        to_v2(obj);
        Ok(())
    }
    fn decode(&self, obj: &mut Value) -> Result<(), RegistryError> {
        to_v1(obj);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_convert_both_ways_without_loss() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 2,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}],
                "conditions": [{"type": "AbleToScale", "status": "True"}]}
        });
        let mut v1 = v2.clone();
        to_v1(&mut v1);
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 40);
        assert!(v1["spec"].get("metrics").is_none());
        assert!(
            v1["metadata"]["annotations"][METRICS]
                .as_str()
                .unwrap()
                .contains("memory")
        );
        let mut back = v1.clone();
        to_v2(&mut back);
        assert_eq!(back, v2);
    }
}
