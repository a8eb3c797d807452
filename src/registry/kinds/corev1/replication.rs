//! ReplicationControllers and PodTemplates: template defaults (replicas 1, selector and labels
//! from the template), template validation, columns and the `status.replicas` field selector.

use super::format_labels;
use super::podspec::{container_cells, default_pod_spec, validate_pod_spec};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::kinds::workload::TEMPLATE_METADATA;
use crate::registry::strategy::{Names, Rules, ScalePaths, Sub};
use crate::registry::table::{Column, age_cell};
use crate::registry::validation::labels;
use k8s_openapi::api::core::v1::{PodTemplate, PodTemplateSpec, ReplicationController};
use serde_json::{Value, json};

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const RC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const RC_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const RC_READY: &str = "The number of ready replicas for this replication controller.";
const RC_SELECTOR: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

/// Rules of core/v1 ReplicationController.
pub struct ReplicationControllerRules;
/// Rules of core/v1 PodTemplate.
pub struct PodTemplateRules;

fn default_template(t: &mut PodTemplateSpec) {
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

/// Upstream's `ValidatePodTemplateSpec` at `path`: labels and the pod spec.
fn validate_template(t: &PodTemplateSpec, path: &str) -> ErrorList {
    let meta = t.metadata.clone().unwrap_or_default();
    let mut errs = labels(
        serde_json::to_value(&meta.labels).ok().as_ref(),
        &format!("{path}.metadata.labels"),
    );
    errs.extend(validate_pod_spec(
        &t.spec.clone().unwrap_or_default(),
        &format!("{path}.spec"),
        false,
    ));
    errs
}

fn nonnegative(v: Option<i32>, at: &str, errs: &mut ErrorList) {
    if let Some(v) = v.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(
            at,
            v,
            "must be greater than or equal to 0",
        ));
    }
}

impl Rules<ReplicationController> for ReplicationControllerRules {
    const EMBEDDED_METADATA: &'static [&'static str] = TEMPLATE_METADATA;
    const SHORT_NAMES: Names = &["rc"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale(ScalePaths::REPLICAS)];

    fn default(&self, rc: &mut ReplicationController) {
        let spec = rc.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        let template_labels = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone());
        if let Some(template_labels) = template_labels {
            if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
                spec.selector = Some(template_labels.clone());
            }
            if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
                rc.metadata.labels = Some(template_labels);
            }
        }
        if let Some(t) = &mut spec.template {
            default_template(t);
        }
    }

    fn validate(&self, rc: &ReplicationController) -> ErrorList {
        let mut errs = Vec::new();
        let spec = rc.spec.clone().unwrap_or_default();
        nonnegative(spec.min_ready_seconds, "spec.minReadySeconds", &mut errs);
        let selector = spec.selector.clone().unwrap_or_default();
        if selector.is_empty() {
            errs.push(FieldError::required("spec.selector", ""));
        }
        nonnegative(spec.replicas, "spec.replicas", &mut errs);
        match &spec.template {
            None => errs.push(FieldError::required("spec.template", "")),
            Some(t) => {
                let template_labels = t
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                if !selector.is_empty()
                    && !selector
                        .iter()
                        .all(|(k, v)| template_labels.get(k) == Some(v))
                {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        json!(template_labels),
                        "`selector` does not match template `labels`",
                    ));
                }
                errs.extend(validate_template(t, "spec.template"));
                let pod_spec = t.spec.clone().unwrap_or_default();
                let restart = pod_spec.restart_policy.clone().unwrap_or_default();
                if restart != "Always" {
                    errs.push(FieldError::not_supported(
                        "spec.template.spec.restartPolicy",
                        restart,
                        &["Always"],
                    ));
                }
                if pod_spec.active_deadline_seconds.is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.template.spec.activeDeadlineSeconds",
                        "activeDeadlineSeconds in ReplicationController is not Supported",
                    ));
                }
            }
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer("Desired", RC_REPLICAS),
            Column::integer("Current", RC_STATUS_REPLICAS),
            Column::integer("Ready", RC_READY),
            Column::AGE,
            Column::wide("Containers", "Names of each container in the template."),
            Column::wide(
                "Images",
                "Images referenced by each container in the template.",
            ),
            Column::wide("Selector", RC_SELECTOR),
        ])
    }

    fn cells(&self, rc: &ReplicationController, raw: &Value) -> Vec<Value> {
        let spec = rc.spec.clone().unwrap_or_default();
        let status = rc.status.clone().unwrap_or_default();
        let containers = spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let (names, images) = container_cells(&containers);
        vec![
            json!(rc.metadata.name.as_deref().unwrap_or("")),
            json!(spec.replicas.unwrap_or(0)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            age_cell(raw),
            json!(names),
            json!(images),
            json!(format_labels(spec.selector.as_ref())),
        ]
    }

    fn field(&self, rc: &ReplicationController, field: &str) -> Option<String> {
        (field == "status.replicas")
            .then(|| rc.status.as_ref().map_or(0, |s| s.replicas).to_string())
    }
}

impl Rules<PodTemplate> for PodTemplateRules {
    const EMBEDDED_METADATA: &'static [&'static str] = &[
        "template/metadata",
        "template/spec/volumes/*/ephemeral/volumeClaimTemplate/metadata",
    ];
    fn default(&self, pt: &mut PodTemplate) {
        if let Some(t) = &mut pt.template {
            default_template(t);
        }
    }

    fn validate(&self, pt: &PodTemplate) -> ErrorList {
        match &pt.template {
            Some(t) => validate_template(t, "template"),
            None => vec![FieldError::required("template", "")],
        }
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Containers", "Names of each container in the template."),
            Column::text(
                "Images",
                "Images referenced by each container in the template.",
            ),
            Column::text("Pod Labels", "The labels for the pod template."),
        ])
    }

    fn cells(&self, pt: &PodTemplate, _raw: &Value) -> Vec<Value> {
        let t = pt.template.clone().unwrap_or_default();
        let containers = t.spec.map(|s| s.containers).unwrap_or_default();
        let (names, images) = container_cells(&containers);
        let pod_labels = t.metadata.and_then(|m| m.labels);
        vec![
            json!(pt.metadata.name.as_deref().unwrap_or("")),
            json!(names),
            json!(images),
            json!(format_labels(pod_labels.as_ref())),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn rc() -> Typed<ReplicationController, ReplicationControllerRules> {
        Typed::new(
            super::super::tests::info("ReplicationController", "replicationcontrollers"),
            ReplicationControllerRules,
        )
    }

    #[test]
    fn replication_controllers_default_replicas_selector_and_labels_from_the_template() {
        let s = rc();
        let mut v = s
            .decode(json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
            .unwrap()
            .object;
        s.default(&mut v);
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["spec"]["selector"], json!({"app": "a"}));
        assert_eq!(v["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(v["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(s.validate(&v).is_empty(), "{:?}", s.validate(&v));
        assert_eq!(s.cells(&v)[1..4], [json!(1), json!(0), json!(0)]);
        assert_eq!(
            s.cells(&v)[5..],
            [json!("c"), json!("nginx"), json!("app=a")]
        );
        assert_eq!(s.field(&v, "status.replicas").as_deref(), Some("0"));
    }

    #[test]
    fn a_selector_that_misses_the_template_labels_is_rejected() {
        let s = rc();
        let mut v = json!({"metadata": {"name": "r"}, "spec": {"selector": {"app": "b"},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        s.default(&mut v);
        let msgs: Vec<String> = s.validate(&v).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: `selector` does not match template `labels`"#
            ]
        );
    }

    #[test]
    fn pod_templates_show_containers_images_and_labels() {
        let s = Typed::new(
            super::super::tests::info("PodTemplate", "podtemplates"),
            PodTemplateRules,
        );
        let mut v = json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "x"}, {"name": "d", "image": "y"}]}}});
        s.default(&mut v);
        assert!(s.validate(&v).is_empty());
        assert_eq!(s.cells(&v)[1..], [json!("c,d"), json!("x,y"), json!("a=1")]);
    }
}
