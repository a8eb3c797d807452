//! batch/v1 rules: Job selector generation, Job and CronJob defaults, validation (with upstream's
//! cron parser messages) and `kubectl get` columns.

mod cron;

use super::workload::{
    CONTAINERS, IMAGES, TEMPLATE_METADATA, container_cells, default_template, format_selector,
    label_selector, nonnegative, template_labels, validate_template,
};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::selectors::label_selector_matches;
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age, age_cell, human_duration, name_cell};
use crate::registry::validation::immutable;
use cron::parse_cron;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const LEGACY_JOB_NAME: &str = "job-name";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const SELECTOR_DESC: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

fn to_json<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// Upstream's `generateSelector`: labels the template with the job's name and uid and selects the uid.
fn generate_selector(meta: &ObjectMeta, spec: &mut JobSpec) {
    let name = meta.name.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    let template_meta = spec.template.metadata.get_or_insert_with(Default::default);
    let labels = template_meta.labels.get_or_insert_with(BTreeMap::new);
    for key in [LEGACY_JOB_NAME, JOB_NAME] {
        labels.entry(key.into()).or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
        labels.entry(key.into()).or_insert_with(|| uid.clone());
    }
    let selector = spec.selector.get_or_insert_with(LabelSelector::default);
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .entry(CONTROLLER_UID.into())
        .or_insert(uid);
}

/// Upstream's `ValidateHasLabel` for the generated template labels.
fn has_label(labels: &BTreeMap<String, String>, key: &str, want: &str, errs: &mut ErrorList) {
    let field = format!("spec.template.metadata.labels[{key}]");
    match labels.get(key) {
        None => errs.push(FieldError::required(field, want)),
        Some(v) if v != want => errs.push(FieldError::invalid(field, to_json(labels), want)),
        Some(_) => {}
    }
}

/// Upstream's `validateJobSpec` (the part shared with CronJob job templates), under `path`.
fn validate_job_spec(spec: &JobSpec, path: &str, errs: &mut ErrorList) {
    let f = |name: &str| format!("{path}.{name}");
    nonnegative(errs, spec.parallelism.map(i64::from), &f("parallelism"));
    nonnegative(errs, spec.completions.map(i64::from), &f("completions"));
    nonnegative(
        errs,
        spec.active_deadline_seconds,
        &f("activeDeadlineSeconds"),
    );
    nonnegative(errs, spec.backoff_limit.map(i64::from), &f("backoffLimit"));
    nonnegative(
        errs,
        spec.ttl_seconds_after_finished.map(i64::from),
        &f("ttlSecondsAfterFinished"),
    );
    nonnegative(
        errs,
        spec.backoff_limit_per_index.map(i64::from),
        &f("backoffLimitPerIndex"),
    );
    nonnegative(
        errs,
        spec.max_failed_indexes.map(i64::from),
        &f("maxFailedIndexes"),
    );
    let mode = spec.completion_mode.as_deref();
    match mode {
        None | Some("NonIndexed") => {
            if let Some(v) = spec.backoff_limit_per_index {
                errs.push(FieldError::invalid(
                    f("backoffLimitPerIndex"),
                    v,
                    "requires indexed completion mode",
                ));
            }
        }
        Some("Indexed") => {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    f("completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            f("completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    if let Some(p) = spec.pod_replacement_policy.as_deref() {
        if spec.pod_failure_policy.is_some() {
            if p != "Failed" {
                errs.push(FieldError::not_supported(
                    f("podReplacementPolicy"),
                    p,
                    &["Failed"],
                ));
            }
        } else if !matches!(p, "Failed" | "TerminatingOrFailed") {
            errs.push(FieldError::not_supported(
                f("podReplacementPolicy"),
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    errs.extend(validate_template(&spec.template, &f("template")));
    let restart = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("");
    let restart_field = f("template.spec.restartPolicy");
    match restart {
        "" | "Always" => errs.push(FieldError::required(
            restart_field,
            r#"valid values: "OnFailure", "Never""#,
        )),
        "OnFailure" if spec.pod_failure_policy.is_some() => errs.push(FieldError::invalid(
            restart_field,
            restart,
            r#"only "Never" is supported when podFailurePolicy is specified"#,
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            restart_field,
            other,
            &["OnFailure", "Never"],
        )),
    }
}

/// Job: upstream's job strategy (generated selector), `SetDefaults_Job`, `ValidateJob`, `printJob`.
pub struct JobRules;

impl Rules<Job> for JobRules {
    const EMBEDDED_METADATA: &'static [&'static str] = TEMPLATE_METADATA;
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    // kube-apiserver labels the template after defaulting; its reads copy them to the Job.
    const DEFAULTS_STORED: bool = true;

    fn prepare_for_create(&self, job: &mut Job) {
        let spec = job.spec.get_or_insert_with(JobSpec::default);
        let manual = *spec.manual_selector.get_or_insert(false);
        if !manual {
            generate_selector(&job.metadata, spec);
        }
    }

    fn default(&self, job: &mut Job) {
        let spec = job.spec.get_or_insert_with(JobSpec::default);
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
        }
        spec.parallelism.get_or_insert(1);
        spec.backoff_limit.get_or_insert(6);
        let template_labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        if template_labels.is_some() && job.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
        {
            job.metadata.labels = template_labels;
        }
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        spec.suspend.get_or_insert(false);
        let replacement = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy
            .get_or_insert_with(|| replacement.into());
        default_template(&mut spec.template);
    }

    fn validate(&self, job: &Job) -> ErrorList {
        let mut errs = Vec::new();
        let default_spec = JobSpec::default();
        let spec = job.spec.as_ref().unwrap_or(&default_spec);
        if spec.manual_selector != Some(true)
            && let Some(selector) = &spec.selector
        {
            let uid = job.metadata.uid.as_deref().unwrap_or("");
            let name = job.metadata.name.as_deref().unwrap_or("");
            if uid.is_empty() {
                errs.push(FieldError::required("metadata.uid", ""));
            }
            let labels = template_labels(&spec.template);
            has_label(&labels, LEGACY_CONTROLLER_UID, uid, &mut errs);
            has_label(&labels, LEGACY_JOB_NAME, name, &mut errs);
            has_label(&labels, CONTROLLER_UID, uid, &mut errs);
            has_label(&labels, JOB_NAME, name, &mut errs);
            let expected: BTreeMap<String, String> = [
                (CONTROLLER_UID, uid),
                (JOB_NAME, name),
                (LEGACY_CONTROLLER_UID, uid),
                (LEGACY_JOB_NAME, name),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            if !label_selector_matches(selector, &expected) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    to_json(selector),
                    "`selector` not auto-generated",
                ));
            }
        }
        validate_job_spec(spec, "spec", &mut errs);
        match &spec.selector {
            None => errs.push(FieldError::required("spec.selector", "")),
            Some(sel) => errs.extend(label_selector(sel, "spec.selector")),
        }
        let labels = template_labels(&spec.template);
        if !spec
            .selector
            .as_ref()
            .is_some_and(|s| label_selector_matches(s, &labels))
        {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                to_json(&labels),
                "`selector` does not match template `labels`",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Job, old: &Job) -> ErrorList {
        let mut errs = self.validate(new);
        let (n, o) = (
            new.spec.clone().unwrap_or_default(),
            old.spec.clone().unwrap_or_default(),
        );
        let mut same = |a: Value, b: Value, field: &str| {
            errs.extend(immutable(Some(&a), Some(&b), field));
        };
        if n.completion_mode.as_deref() != Some("Indexed") {
            same(
                to_json(&n.completions),
                to_json(&o.completions),
                "spec.completions",
            );
        }
        same(to_json(&n.selector), to_json(&o.selector), "spec.selector");
        // Upstream lets a suspended job's template change (scheduling directives); others are fixed.
        if o.suspend != Some(true) {
            same(to_json(&n.template), to_json(&o.template), "spec.template");
        }
        same(
            to_json(&n.completion_mode),
            to_json(&o.completion_mode),
            "spec.completionMode",
        );
        same(
            to_json(&n.pod_failure_policy),
            to_json(&o.pod_failure_policy),
            "spec.podFailurePolicy",
        );
        same(
            to_json(&n.backoff_limit_per_index),
            to_json(&o.backoff_limit_per_index),
            "spec.backoffLimitPerIndex",
        );
        same(
            to_json(&n.managed_by),
            to_json(&o.managed_by),
            "spec.managedBy",
        );
        same(
            to_json(&n.success_policy),
            to_json(&o.success_policy),
            "spec.successPolicy",
        );
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Status", "Status of the job."),
            Column::text(
                "Completions",
                "The number of pods which reached phase Succeeded.",
            ),
            Column::text("Duration", "Time required to complete the job."),
            Column::AGE,
            CONTAINERS,
            IMAGES,
            Column::wide("Selector", SELECTOR_DESC),
        ])
    }

    fn cells(&self, job: &Job, raw: &Value) -> Vec<Value> {
        let spec = job.spec.as_ref();
        let status = job.status.clone().unwrap_or_default();
        let succeeded = status.succeeded.unwrap_or(0);
        let completions = match spec.and_then(|s| s.completions) {
            Some(c) => format!("{succeeded}/{c}"),
            None => match spec.and_then(|s| s.parallelism).unwrap_or(0) {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let duration = match (&status.start_time, &status.completion_time) {
            (None, _) => String::new(),
            (Some(start), None) => human_duration(
                time::OffsetDateTime::now_utc().unix_timestamp() - start.0.as_second(),
            ),
            (Some(start), Some(end)) => human_duration(end.0.as_second() - start.0.as_second()),
        };
        let condition = |ty: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == ty)
                .is_some_and(|c| c.status == "True")
        };
        let state = if condition("Complete") {
            "Complete"
        } else if condition("Failed") {
            "Failed"
        } else if job.metadata.deletion_timestamp.is_some() {
            "Terminating"
        } else if condition("Suspended") {
            "Suspended"
        } else if condition("FailureTarget") {
            "FailureTarget"
        } else {
            "Running"
        };
        let (names, images) = container_cells(spec.map(|s| &s.template));
        vec![
            name_cell(raw),
            state.into(),
            completions.into(),
            duration.into(),
            age_cell(raw),
            names,
            images,
            format_selector(spec.and_then(|s| s.selector.as_ref())).into(),
        ]
    }

    fn field(&self, job: &Job, field: &str) -> Option<String> {
        match field {
            "status.successful" => Some(
                job.status
                    .as_ref()
                    .and_then(|s| s.succeeded)
                    .unwrap_or(0)
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// CronJob: upstream's `SetDefaults_CronJob`, `ValidateCronJobCreate` and `printCronJob`.
pub struct CronJobRules;

impl CronJobRules {
    fn validate_spec(&self, cj: &CronJob, errs: &mut ErrorList) {
        let default_spec = CronJobSpec::default();
        let spec = cj.spec.as_ref().unwrap_or(&default_spec);
        if spec.schedule.is_empty() {
            errs.push(FieldError::required("spec.schedule", ""));
        } else {
            if let Err(e) = parse_cron(&spec.schedule) {
                errs.push(FieldError::invalid(
                    "spec.schedule",
                    spec.schedule.as_str(),
                    e,
                ));
            }
            if spec.schedule.contains("TZ") {
                errs.push(FieldError::invalid(
                    "spec.schedule",
                    spec.schedule.as_str(),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
        nonnegative(
            errs,
            spec.starting_deadline_seconds,
            "spec.startingDeadlineSeconds",
        );
        match spec.concurrency_policy.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
            "Allow" | "Forbid" | "Replace" => {}
            other => errs.push(FieldError::not_supported(
                "spec.concurrencyPolicy",
                other,
                &["Allow", "Forbid", "Replace"],
            )),
        }
        let job = spec.job_template.spec.clone().unwrap_or_default();
        validate_job_spec(&job, "spec.jobTemplate.spec", errs);
        if let Some(sel) = &job.selector {
            errs.push(FieldError::invalid(
                "spec.jobTemplate.spec.selector",
                to_json(sel),
                "`selector` will be auto-generated",
            ));
        }
        if job.manual_selector == Some(true) {
            errs.push(FieldError::not_supported(
                "spec.jobTemplate.spec.manualSelector",
                true,
                &["nil", "false"],
            ));
        }
        if let Some(tz) = &spec.time_zone
            && (tz.is_empty() || tz.contains(' ') || tz.starts_with('/') || tz.contains(".."))
        {
            errs.push(FieldError::invalid(
                "spec.timeZone",
                tz.as_str(),
                "unknown time zone",
            ));
        }
        nonnegative(
            errs,
            spec.successful_jobs_history_limit.map(i64::from),
            "spec.successfulJobsHistoryLimit",
        );
        nonnegative(
            errs,
            spec.failed_jobs_history_limit.map(i64::from),
            "spec.failedJobsHistoryLimit",
        );
    }
}

impl Rules<CronJob> for CronJobRules {
    const EMBEDDED_METADATA: &'static [&'static str] = &[
        "spec/jobTemplate/metadata",
        "spec/jobTemplate/spec/template/metadata",
        "spec/jobTemplate/spec/template/spec/volumes/*/ephemeral/volumeClaimTemplate/metadata",
    ];
    const SHORT_NAMES: Names = &["cj"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn default(&self, cj: &mut CronJob) {
        let spec = cj.spec.get_or_insert_with(CronJobSpec::default);
        spec.concurrency_policy
            .get_or_insert_with(|| "Allow".into());
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        let job = spec.job_template.spec.get_or_insert_with(JobSpec::default);
        default_template(&mut job.template);
    }

    fn validate(&self, cj: &CronJob) -> ErrorList {
        let mut errs = Vec::new();
        self.validate_spec(cj, &mut errs);
        let name = cj.metadata.name.as_deref().unwrap_or("");
        // Job names get an 11-character suffix and must stay DNS-1035 labels (63 characters).
        if name.len() > 52 {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be no more than 52 characters",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &CronJob, _old: &CronJob) -> ErrorList {
        let mut errs = Vec::new();
        self.validate_spec(new, &mut errs);
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Schedule",
                "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
            ),
            Column::text(
                "Timezone",
                "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
            ),
            Column {
                type_: std::borrow::Cow::Borrowed("boolean"),
                ..Column::text(
                    "Suspend",
                    "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
                )
            },
            Column::integer("Active", "A list of pointers to currently running jobs."),
            Column::text(
                "Last Schedule",
                "Information when was the last time the job was successfully scheduled.",
            ),
            Column::AGE,
            CONTAINERS,
            IMAGES,
            Column::wide("Selector", SELECTOR_DESC),
        ])
    }

    fn cells(&self, cj: &CronJob, raw: &Value) -> Vec<Value> {
        let spec = cj.spec.as_ref();
        let status = cj.status.clone().unwrap_or_default();
        let last = status
            .last_schedule_time
            .as_ref()
            .map_or_else(|| "<none>".to_string(), |t| age(Some(&t.0.to_string())));
        let job = spec.and_then(|s| s.job_template.spec.as_ref());
        let template: Option<&PodTemplateSpec> = job.map(|j| &j.template);
        let (names, images) = container_cells(template);
        vec![
            name_cell(raw),
            spec.map(|s| s.schedule.clone()).unwrap_or_default().into(),
            spec.and_then(|s| s.time_zone.clone())
                .unwrap_or_else(|| "<none>".into())
                .into(),
            // Upstream's printBoolPtr: a string cell, not a JSON boolean.
            match spec.and_then(|s| s.suspend) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            }
            .into(),
            json!(status.active.map_or(0, |a| a.len())),
            last.into(),
            age_cell(raw),
            names,
            images,
            format_selector(job.and_then(|j| j.selector.as_ref())).into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::test_support::created;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R, kind: &'static str) -> Typed<T, R> {
        super::super::test_support::strategy("batch", kind, rules)
    }

    fn job() -> Value {
        json!({
            "metadata": {"name": "pi", "namespace": "default", "uid": "1234"},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl:5.34"}]
            }}}
        })
    }

    use super::super::test_support::messages;

    #[test]
    fn jobs_get_a_generated_selector_and_upstreams_defaults() {
        let s = strategy::<Job, _>(JobRules, "Job");
        let obj = created(&s, job());
        let spec = &obj["spec"];
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}})
        );
        let labels = &spec["template"]["metadata"]["labels"];
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(labels["controller-uid"], "1234");
        assert_eq!(obj["metadata"]["labels"], *labels);
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
    }

    #[test]
    fn jobs_must_not_restart_always() {
        let s = strategy::<Job, _>(JobRules, "Job");
        let mut j = job();
        j["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        let obj = created(&s, j);
        assert_eq!(
            messages(&s.validate(&obj)),
            vec![
                r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#
            ]
        );
    }

    #[test]
    fn job_templates_cannot_change_while_running() {
        let s = strategy::<Job, _>(JobRules, "Job");
        let old = created(&s, job());
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        let msgs = messages(&s.validate_update(&new, &old));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("spec.template: Invalid value:"));
    }

    #[test]
    fn job_rows_show_status_completions_and_duration() {
        let s = strategy::<Job, _>(JobRules, "Job");
        let mut obj = created(&s, job());
        obj["status"] = json!({
            "succeeded": 1,
            "startTime": "2024-01-01T00:00:00Z",
            "completionTime": "2024-01-01T00:00:09Z",
            "conditions": [{"type": "Complete", "status": "True"}]
        });
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "Complete");
        assert_eq!(cells[2], "1/1");
        assert_eq!(cells[3], "9s");
        assert_eq!(cells[7], "batch.kubernetes.io/controller-uid=1234");
        assert_eq!(
            s.field(&json!({}), "status.successful").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn cronjobs_default_their_policies_and_require_a_schedule() {
        let s = strategy::<CronJob, _>(CronJobRules, "CronJob");
        let cj = json!({
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "hello", "image": "busybox:1.28"}]
            }}}}}
        });
        let obj = created(&s, cj);
        assert_eq!(obj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(obj["spec"]["suspend"], false);
        assert_eq!(obj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(obj["spec"]["failedJobsHistoryLimit"], 1);
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "*/1 * * * *");
        assert_eq!(cells[2], "<none>");
        assert_eq!(cells[3], "False");
        assert_eq!(cells[5], "<none>");
        let mut bad = obj.clone();
        bad["spec"]["schedule"] = json!("");
        assert_eq!(
            messages(&s.validate(&bad)),
            vec!["spec.schedule: Required value"]
        );
    }
}
