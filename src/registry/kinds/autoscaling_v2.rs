//! autoscaling/v2 rules: HorizontalPodAutoscaler defaults (min replicas, CPU target, behavior),
//! replica-bound validation and upstream's `printHorizontalPodAutoscaler` columns.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
    MetricSpec, MetricStatus, MetricTarget, ResourceMetricSource,
};
use serde_json::{Value, json};

fn policy(type_: &str, value: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    }
}

/// HorizontalPodAutoscaler: upstream's `SetDefaults_HorizontalPodAutoscaler` and printer.
pub struct HorizontalPodAutoscalerRules;

impl Rules<HorizontalPodAutoscaler> for HorizontalPodAutoscalerRules {
    const SHORT_NAMES: Names = &["hpa"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn default(&self, hpa: &mut HorizontalPodAutoscaler) {
        let spec = hpa
            .spec
            .get_or_insert_with(HorizontalPodAutoscalerSpec::default);
        spec.min_replicas.get_or_insert(1);
        if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
            spec.metrics = Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(80),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]);
        }
        // Only a behavior the user gave is completed; none stays none, as upstream's
        // SetDefaults_HorizontalPodAutoscalerBehavior.
        let Some(behavior) = spec.behavior.as_mut() else {
            return;
        };
        let up = behavior
            .scale_up
            .get_or_insert_with(HPAScalingRules::default);
        up.stabilization_window_seconds.get_or_insert(0);
        up.select_policy.get_or_insert_with(|| "Max".into());
        if up.policies.is_none() {
            up.policies = Some(vec![policy("Pods", 4), policy("Percent", 100)]);
        }
        let down = behavior
            .scale_down
            .get_or_insert_with(HPAScalingRules::default);
        down.stabilization_window_seconds.get_or_insert(300);
        down.select_policy.get_or_insert_with(|| "Max".into());
        if down.policies.is_none() {
            down.policies = Some(vec![policy("Percent", 100)]);
        }
    }

    fn validate(&self, hpa: &HorizontalPodAutoscaler) -> ErrorList {
        let mut errs = Vec::new();
        let spec = hpa.spec.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        if target.kind.is_empty() {
            errs.push(FieldError::required("spec.scaleTargetRef.kind", ""));
        }
        if target.name.is_empty() {
            errs.push(FieldError::required("spec.scaleTargetRef.name", ""));
        }
        let min = spec.min_replicas.unwrap_or(1);
        if min < 1 {
            errs.push(FieldError::invalid(
                "spec.minReplicas",
                min,
                "must be greater than or equal to 1",
            ));
        }
        if spec.max_replicas < 1 {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                spec.max_replicas,
                "must be greater than 0",
            ));
        }
        if spec.max_replicas < min {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                spec.max_replicas,
                "must be greater than or equal to `minReplicas`",
            ));
        }
        for (i, m) in spec.metrics.iter().flatten().enumerate() {
            if !matches!(
                m.type_.as_str(),
                "Object" | "Pods" | "Resource" | "External" | "ContainerResource"
            ) {
                errs.push(FieldError::not_supported(
                    format!("spec.metrics[{i}].type"),
                    m.type_.as_str(),
                    &[
                        "ContainerResource",
                        "External",
                        "Object",
                        "Pods",
                        "Resource",
                    ],
                ));
            }
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Reference",
                "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
            ),
            Column::text(
                "Targets",
                "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).",
            ),
            Column::text(
                "MinPods",
                "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
            ),
            Column::text(
                "MaxPods",
                "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
            ),
            Column::text(
                "Replicas",
                "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, hpa: &HorizontalPodAutoscaler, raw: &Value) -> Vec<Value> {
        let spec = hpa.spec.clone().unwrap_or_default();
        let status = hpa.status.clone().unwrap_or_default();
        let reference = format!(
            "{}/{}",
            spec.scale_target_ref.kind, spec.scale_target_ref.name
        );
        let metrics = format_metrics(
            spec.metrics.as_deref().unwrap_or_default(),
            status.current_metrics.as_deref().unwrap_or_default(),
        );
        let min = spec
            .min_replicas
            .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
        vec![
            name_cell(raw),
            reference.into(),
            metrics.into(),
            min.into(),
            json!(spec.max_replicas),
            json!(status.current_replicas.unwrap_or(0)),
            age_cell(raw),
        ]
    }
}

fn quantity(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> String {
    q.map_or_else(|| "0".to_string(), |q| q.0.clone())
}

/// Upstream's `formatHPAMetrics`: at most two metrics, "current/target" each.
fn format_metrics(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let unknown = || "<unknown>".to_string();
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let st = statuses.get(i);
            match spec.type_.as_str() {
                "External" | "Object" => {
                    let (target, current) = if spec.type_ == "External" {
                        (
                            spec.external.as_ref().map(|e| &e.target),
                            st.and_then(|s| s.external.as_ref()).map(|e| &e.current),
                        )
                    } else {
                        (
                            spec.object.as_ref().map(|o| &o.target),
                            st.and_then(|s| s.object.as_ref()).map(|o| &o.current),
                        )
                    };
                    match target.and_then(|t| t.average_value.as_ref()) {
                        Some(avg) => format!(
                            "{}/{} (avg)",
                            current
                                .and_then(|c| c.average_value.as_ref())
                                .map_or_else(unknown, |q| q.0.clone()),
                            avg.0
                        ),
                        None => format!(
                            "{}/{}",
                            current.map_or_else(unknown, |c| quantity(c.value.as_ref())),
                            quantity(target.and_then(|t| t.value.as_ref()))
                        ),
                    }
                }
                "Pods" => format!(
                    "{}/{}",
                    st.and_then(|s| s.pods.as_ref())
                        .map_or_else(unknown, |p| quantity(p.current.average_value.as_ref())),
                    quantity(
                        spec.pods
                            .as_ref()
                            .and_then(|p| p.target.average_value.as_ref())
                    )
                ),
                "Resource" | "ContainerResource" => {
                    let (name, target, current) = if spec.type_ == "Resource" {
                        let r = spec.resource.as_ref();
                        (
                            r.map(|r| r.name.clone()),
                            r.map(|r| &r.target),
                            st.and_then(|s| s.resource.as_ref()).map(|r| &r.current),
                        )
                    } else {
                        let r = spec.container_resource.as_ref();
                        (
                            r.map(|r| r.name.clone()),
                            r.map(|r| &r.target),
                            st.and_then(|s| s.container_resource.as_ref())
                                .map(|r| &r.current),
                        )
                    };
                    let name = name.unwrap_or_default();
                    match target.and_then(|t| t.average_value.as_ref()) {
                        Some(avg) => format!(
                            "{name}: {}/{}",
                            current.map_or_else(unknown, |c| quantity(c.average_value.as_ref())),
                            avg.0
                        ),
                        None => format!(
                            "{name}: {}/{}",
                            current
                                .and_then(|c| c.average_utilization)
                                .map_or_else(unknown, |u| format!("{u}%")),
                            target
                                .and_then(|t| t.average_utilization)
                                .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"))
                        ),
                    }
                }
                _ => "<unknown type>".into(),
            }
        })
        .collect();
    if list.len() > 2 {
        format!("{} + {} more...", list[..2].join(", "), list.len() - 2)
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};
    use crate::registry::validation::NameRule;

    #[test]
    fn hpas_default_to_an_80_percent_cpu_target_and_print_it() {
        let info = crate::registry::ResourceInfo {
            group: "autoscaling".into(),
            version: "v2".into(),
            kind: "HorizontalPodAutoscaler".into(),
            resource: "horizontalpodautoscalers".into(),
            singular: "horizontalpodautoscaler".into(),
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: std::borrow::Cow::Borrowed(&[]),
            subresources: Vec::new(),
            name_rule: NameRule::Dns1123Subdomain,
            scale: None,
            tracks_generation: false,
            delete_returns_object: false,
        };
        let s = Typed::<HorizontalPodAutoscaler, _>::new(info, HorizontalPodAutoscalerRules);
        let mut obj = s
            .decode(json!({
                "metadata": {"name": "web"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}
            }))
            .unwrap()
            .object;
        s.default(&mut obj);
        assert_eq!(obj["spec"]["minReplicas"], 1);
        assert!(obj["spec"].get("behavior").is_none(), "{obj}");
        // A behavior given is completed.
        let mut with_behavior = obj.clone();
        with_behavior["spec"]["behavior"] = json!({"scaleUp": {"selectPolicy": "Min"}});
        s.default(&mut with_behavior);
        let behavior = &with_behavior["spec"]["behavior"];
        assert_eq!(behavior["scaleDown"]["stabilizationWindowSeconds"], 300);
        assert_eq!(behavior["scaleUp"]["selectPolicy"], "Min");
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "Deployment/web");
        assert_eq!(cells[2], "cpu: <unknown>/80%");
        assert_eq!(cells[3], "1");
        assert_eq!(cells[4], 5);
    }
}
