//! apps/v1 rules: Deployment, ReplicaSet, StatefulSet, DaemonSet and ControllerRevision defaults,
//! validation and `kubectl get` columns, after upstream's `pkg/apis/apps` and printers.

use super::workload::{
    CONTAINERS, IMAGES, TEMPLATE_METADATA, container_cells, default_template, format_labels,
    format_selector, int_or_percent, intstr_value, label_selector, nonnegative,
    not_more_than_100_percent, positive_int_or_percent, runs_forever, selector_and_template,
    selector_is_empty, template_labels, validate_template, validate_template_metadata,
};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::selectors::{label_selector_matches, label_selector_string};
use crate::registry::strategy::{Names, Rules, ScalePaths, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::immutable;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment,
    DeploymentSpec, DeploymentStrategy, ReplicaSet, ReplicaSetSpec, RollingUpdateDaemonSet,
    RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

const SELECTOR_DESC: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";

fn selector_immutable<S: serde::Serialize>(new: &S, old: &S) -> ErrorList {
    let (n, o) = (
        serde_json::to_value(new).ok(),
        serde_json::to_value(old).ok(),
    );
    immutable(n.as_ref(), o.as_ref(), "spec.selector")
}

/// Deployment: upstream's `SetDefaults_Deployment`, `ValidateDeployment` and `printDeployment`.
pub struct DeploymentRules;

impl Rules<Deployment> for DeploymentRules {
    const EMBEDDED_METADATA: &'static [&'static str] = TEMPLATE_METADATA;
    const SHORT_NAMES: Names = &["deploy"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale(ScalePaths::REPLICAS)];

    fn default(&self, d: &mut Deployment) {
        let spec = d.spec.get_or_insert_with(DeploymentSpec::default);
        spec.replicas.get_or_insert(1);
        let strategy = spec
            .strategy
            .get_or_insert_with(DeploymentStrategy::default);
        let ty = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if ty == "RollingUpdate" {
            let ru = strategy
                .rolling_update
                .get_or_insert_with(RollingUpdateDeployment::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            ru.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        default_template(&mut spec.template);
    }

    fn validate(&self, d: &Deployment) -> ErrorList {
        let mut errs = Vec::new();
        let default_spec = DeploymentSpec::default();
        let spec = d.spec.as_ref().unwrap_or(&default_spec);
        nonnegative(&mut errs, spec.replicas.map(i64::from), "spec.replicas");
        selector_and_template(
            "ReplicaSet",
            &spec.selector,
            Some(&spec.template),
            &mut errs,
        );
        let strategy = spec.strategy.clone().unwrap_or_default();
        match strategy.type_.as_deref().unwrap_or("") {
            "Recreate" => {
                if strategy.rolling_update.is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => match &strategy.rolling_update {
                None => errs.push(FieldError::required(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                )),
                Some(ru) => {
                    let zero = IntOrString::Int(0);
                    let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                    let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                    let path = "spec.strategy.rollingUpdate";
                    errs.extend(positive_int_or_percent(
                        mu,
                        &format!("{path}.maxUnavailable"),
                    ));
                    errs.extend(positive_int_or_percent(ms, &format!("{path}.maxSurge")));
                    if int_or_percent(mu).0 == 0 && int_or_percent(ms).0 == 0 {
                        errs.push(FieldError::invalid(
                            format!("{path}.maxUnavailable"),
                            intstr_value(mu),
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(
                        mu,
                        &format!("{path}.maxUnavailable"),
                    ));
                }
            },
            other => errs.push(FieldError::not_supported(
                "spec.strategy",
                other,
                &["Recreate", "RollingUpdate"],
            )),
        }
        nonnegative(
            &mut errs,
            spec.min_ready_seconds.map(i64::from),
            "spec.minReadySeconds",
        );
        nonnegative(
            &mut errs,
            spec.revision_history_limit.map(i64::from),
            "spec.revisionHistoryLimit",
        );
        if let Some(pds) = spec.progress_deadline_seconds {
            nonnegative(
                &mut errs,
                Some(i64::from(pds)),
                "spec.progressDeadlineSeconds",
            );
            if pds <= spec.min_ready_seconds.unwrap_or(0) {
                errs.push(FieldError::invalid(
                    "spec.progressDeadlineSeconds",
                    pds,
                    "must be greater than minReadySeconds",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Deployment, old: &Deployment) -> ErrorList {
        let mut errs = self.validate(new);
        let sel = |d: &Deployment| d.spec.as_ref().map(|s| s.selector.clone());
        errs.extend(selector_immutable(&sel(new), &sel(old)));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Ready", "Number of the pod with ready state"),
            Column::text(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            Column::text(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            Column::AGE,
            CONTAINERS,
            IMAGES,
            Column::wide("Selector", SELECTOR_DESC),
        ])
    }

    fn cells(&self, d: &Deployment, raw: &Value) -> Vec<Value> {
        let spec = d.spec.as_ref();
        let status = d.status.clone().unwrap_or_default();
        let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
        let (names, images) = container_cells(spec.map(|s| &s.template));
        vec![
            name_cell(raw),
            format!("{}/{desired}", status.ready_replicas.unwrap_or(0)).into(),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            age_cell(raw),
            names,
            images,
            spec.map(|s| label_selector_string(&s.selector))
                .unwrap_or_default()
                .into(),
        ]
    }
}

/// ReplicaSet: upstream's `SetDefaults_ReplicaSet`, `ValidateReplicaSet` and `printReplicaSet`.
pub struct ReplicaSetRules;

impl Rules<ReplicaSet> for ReplicaSetRules {
    const EMBEDDED_METADATA: &'static [&'static str] = TEMPLATE_METADATA;
    const SHORT_NAMES: Names = &["rs"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale(ScalePaths::REPLICAS)];

    fn default(&self, rs: &mut ReplicaSet) {
        let spec = rs.spec.get_or_insert_with(ReplicaSetSpec::default);
        spec.replicas.get_or_insert(1);
        default_template(spec.template.get_or_insert_with(Default::default));
    }

    fn validate(&self, rs: &ReplicaSet) -> ErrorList {
        let mut errs = Vec::new();
        let default_spec = ReplicaSetSpec::default();
        let spec = rs.spec.as_ref().unwrap_or(&default_spec);
        nonnegative(&mut errs, spec.replicas.map(i64::from), "spec.replicas");
        nonnegative(
            &mut errs,
            spec.min_ready_seconds.map(i64::from),
            "spec.minReadySeconds",
        );
        selector_and_template(
            "ReplicaSet",
            &spec.selector,
            spec.template.as_ref(),
            &mut errs,
        );
        errs
    }

    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> ErrorList {
        let mut errs = self.validate(new);
        let sel = |r: &ReplicaSet| r.spec.as_ref().map(|s| s.selector.clone());
        errs.extend(selector_immutable(&sel(new), &sel(old)));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer(
                "Desired",
                "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1.",
            ),
            Column::integer(
                "Current",
                "Replicas is the most recently observed number of replicas.",
            ),
            Column::integer(
                "Ready",
                "The number of ready replicas for this replica set. A pod is counted as ready when it has the Ready condition.",
            ),
            Column::AGE,
            CONTAINERS,
            IMAGES,
            Column::wide(
                "Selector",
                "Selector is a label query over pods that should match the replica count.",
            ),
        ])
    }

    fn cells(&self, rs: &ReplicaSet, raw: &Value) -> Vec<Value> {
        let spec = rs.spec.as_ref();
        let status = rs.status.clone().unwrap_or_default();
        let (names, images) = container_cells(spec.and_then(|s| s.template.as_ref()));
        vec![
            name_cell(raw),
            json!(spec.and_then(|s| s.replicas).unwrap_or(0)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            age_cell(raw),
            names,
            images,
            format_selector(spec.map(|s| &s.selector)).into(),
        ]
    }

    fn field(&self, rs: &ReplicaSet, field: &str) -> Option<String> {
        match field {
            "status.replicas" => Some(rs.status.as_ref().map_or(0, |s| s.replicas).to_string()),
            _ => None,
        }
    }
}

/// StatefulSet: upstream's `SetDefaults_StatefulSet`, `ValidateStatefulSet` and `printStatefulSet`.
pub struct StatefulSetRules;

impl Rules<StatefulSet> for StatefulSetRules {
    const EMBEDDED_METADATA: &'static [&'static str] = &[
        "spec/template/metadata",
        "spec/template/spec/volumes/*/ephemeral/volumeClaimTemplate/metadata",
        "spec/volumeClaimTemplates/*/metadata",
    ];
    const SHORT_NAMES: Names = &["sts"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status, Sub::Scale(ScalePaths::REPLICAS)];

    fn default(&self, ss: &mut StatefulSet) {
        let spec = ss.spec.get_or_insert_with(StatefulSetSpec::default);
        spec.pod_management_policy
            .get_or_insert_with(|| "OrderedReady".into());
        let us = spec
            .update_strategy
            .get_or_insert_with(StatefulSetUpdateStrategy::default);
        if us.type_.is_none() {
            us.type_ = Some("RollingUpdate".into());
            us.rolling_update
                .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
        }
        if us.type_.as_deref() == Some("RollingUpdate")
            && let Some(ru) = us.rolling_update.as_mut()
        {
            ru.partition.get_or_insert(0);
        }
        let retention = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
        retention
            .when_deleted
            .get_or_insert_with(|| "Retain".into());
        retention.when_scaled.get_or_insert_with(|| "Retain".into());
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        default_template(&mut spec.template);
        // Upstream's generated defaulters treat each claim template as a whole claim.
        for claim in spec.volume_claim_templates.iter_mut().flatten() {
            Rules::default(
                &crate::registry::kinds::corev1::PersistentVolumeClaimRules,
                claim,
            );
        }
    }

    fn validate(&self, ss: &StatefulSet) -> ErrorList {
        let mut errs = Vec::new();
        let default_spec = StatefulSetSpec::default();
        let spec = ss.spec.as_ref().unwrap_or(&default_spec);
        match spec.pod_management_policy.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
            "OrderedReady" | "Parallel" => {}
            other => errs.push(FieldError::invalid(
                "spec.podManagementPolicy",
                other,
                "must be 'OrderedReady' or 'Parallel'",
            )),
        }
        let us = spec.update_strategy.clone().unwrap_or_default();
        match us.type_.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required("spec.updateStrategy", "")),
            "OnDelete" => {
                if let Some(ru) = &us.rolling_update {
                    errs.push(FieldError::invalid(
                        "spec.updateStrategy.rollingUpdate",
                        serde_json::to_value(ru).unwrap_or(Value::Null),
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = &us.rolling_update {
                    let path = "spec.updateStrategy.rollingUpdate";
                    nonnegative(
                        &mut errs,
                        ru.partition.map(i64::from),
                        &format!("{path}.partition"),
                    );
                    if let Some(mu) = &ru.max_unavailable {
                        let f = format!("{path}.maxUnavailable");
                        errs.extend(positive_int_or_percent(mu, &f));
                        if int_or_percent(mu).0 == 0 {
                            errs.push(FieldError::invalid(&f, intstr_value(mu), "cannot be 0"));
                        }
                        errs.extend(not_more_than_100_percent(mu, &f));
                    }
                }
            }
            _ => errs.push(FieldError::invalid(
                "spec.updateStrategy",
                serde_json::to_value(&us).unwrap_or(Value::Null),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
        if let Some(p) = &spec.persistent_volume_claim_retention_policy {
            for (name, v) in [
                ("whenDeleted", &p.when_deleted),
                ("whenScaled", &p.when_scaled),
            ] {
                let v = v.as_deref().unwrap_or("");
                if !matches!(v, "Retain" | "Delete") {
                    errs.push(FieldError::not_supported(
                        format!("spec.persistentVolumeClaimRetentionPolicy.{name}"),
                        v,
                        &["Retain", "Delete"],
                    ));
                }
            }
        }
        nonnegative(&mut errs, spec.replicas.map(i64::from), "spec.replicas");
        nonnegative(
            &mut errs,
            spec.min_ready_seconds.map(i64::from),
            "spec.minReadySeconds",
        );
        if let Some(o) = &spec.ordinals {
            nonnegative(&mut errs, o.start.map(i64::from), "spec.ordinals.start");
        }
        let empty = selector_is_empty(&spec.selector);
        if empty {
            errs.push(FieldError::required("spec.selector", ""));
        } else {
            errs.extend(label_selector(&spec.selector, "spec.selector"));
        }
        let labels = template_labels(&spec.template);
        if empty || !label_selector_matches(&spec.selector, &labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                serde_json::to_value(&labels).unwrap_or(Value::Null),
                "`selector` does not match template `labels`",
            ));
        }
        // Upstream checks only the template's metadata here, not its pod spec.
        errs.extend(validate_template_metadata(&spec.template, "spec.template"));
        runs_forever(&spec.template, "StatefulSet", &mut errs);
        errs
    }

    fn validate_update(&self, new: &StatefulSet, old: &StatefulSet) -> ErrorList {
        let mut errs = self.validate(new);
        if let (Some(n), Some(o)) = (&new.spec, &old.spec) {
            let mut n = n.clone();
            n.replicas = o.replicas;
            n.template = o.template.clone();
            n.update_strategy = o.update_strategy.clone();
            n.min_ready_seconds = o.min_ready_seconds;
            n.ordinals = o.ordinals.clone();
            n.persistent_volume_claim_retention_policy =
                o.persistent_volume_claim_retention_policy.clone();
            if &n != o {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Ready", "Number of the pod with ready state"),
            Column::AGE,
            CONTAINERS,
            IMAGES,
        ])
    }

    fn cells(&self, ss: &StatefulSet, raw: &Value) -> Vec<Value> {
        let spec = ss.spec.as_ref();
        let ready = ss
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
        let (names, images) = container_cells(spec.map(|s| &s.template));
        vec![
            name_cell(raw),
            format!("{ready}/{desired}").into(),
            age_cell(raw),
            names,
            images,
        ]
    }
}

/// DaemonSet: upstream's `SetDefaults_DaemonSet`, `ValidateDaemonSet` and `printDaemonSet`.
pub struct DaemonSetRules;

/// The annotation in which apps/v1 carries a DaemonSet's template generation (upstream's
/// internal `spec.templateGeneration`): 1 at create, one more at every template change.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn template_generation(ds: &DaemonSet) -> i64 {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn set_template_generation(ds: &mut DaemonSet, generation: i64) {
    ds.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(TEMPLATE_GENERATION.into(), generation.to_string());
}

impl Rules<DaemonSet> for DaemonSetRules {
    const EMBEDDED_METADATA: &'static [&'static str] = TEMPLATE_METADATA;
    const SHORT_NAMES: Names = &["ds"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn default(&self, ds: &mut DaemonSet) {
        let spec = ds.spec.get_or_insert_with(DaemonSetSpec::default);
        let us = spec
            .update_strategy
            .get_or_insert_with(DaemonSetUpdateStrategy::default);
        let ty = us.type_.get_or_insert_with(|| "RollingUpdate".into());
        if ty == "RollingUpdate" {
            let ru = us
                .rolling_update
                .get_or_insert_with(RollingUpdateDaemonSet::default);
            ru.max_unavailable.get_or_insert(IntOrString::Int(1));
            ru.max_surge.get_or_insert(IntOrString::Int(0));
        }
        spec.revision_history_limit.get_or_insert(10);
        default_template(&mut spec.template);
    }

    fn prepare_for_create(&self, ds: &mut DaemonSet) {
        let given = template_generation(ds);
        set_template_generation(ds, given.max(1));
    }

    fn prepare_for_update(&self, new: &mut DaemonSet, old: &DaemonSet) {
        let old_template = old.spec.as_ref().map(|s| &s.template);
        let changed = new.spec.as_ref().map(|s| &s.template) != old_template;
        set_template_generation(new, template_generation(old) + i64::from(changed));
    }

    fn validate(&self, ds: &DaemonSet) -> ErrorList {
        let mut errs = Vec::new();
        let default_spec = DaemonSetSpec::default();
        let spec = ds.spec.as_ref().unwrap_or(&default_spec);
        let empty = selector_is_empty(&spec.selector);
        errs.extend(label_selector(&spec.selector, "spec.selector"));
        let labels = template_labels(&spec.template);
        if empty || !label_selector_matches(&spec.selector, &labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                serde_json::to_value(&labels).unwrap_or(Value::Null),
                "`selector` does not match template `labels`",
            ));
        }
        if empty {
            errs.push(FieldError::invalid(
                "spec.selector",
                serde_json::to_value(&spec.selector).unwrap_or(Value::Null),
                "empty selector is invalid for daemonset",
            ));
        }
        errs.extend(validate_template(&spec.template, "spec.template"));
        runs_forever(&spec.template, "DaemonSet", &mut errs);
        nonnegative(
            &mut errs,
            spec.min_ready_seconds.map(i64::from),
            "spec.minReadySeconds",
        );
        let us = spec.update_strategy.clone().unwrap_or_default();
        match us.type_.as_deref().unwrap_or("") {
            "OnDelete" => {}
            "RollingUpdate" => match &us.rolling_update {
                None => errs.push(FieldError::required(
                    "spec.updateStrategy.rollingUpdate",
                    "",
                )),
                Some(ru) => {
                    let path = "spec.updateStrategy.rollingUpdate";
                    let zero = IntOrString::Int(0);
                    let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                    let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                    errs.extend(positive_int_or_percent(
                        mu,
                        &format!("{path}.maxUnavailable"),
                    ));
                    errs.extend(positive_int_or_percent(ms, &format!("{path}.maxSurge")));
                    errs.extend(not_more_than_100_percent(
                        mu,
                        &format!("{path}.maxUnavailable"),
                    ));
                    errs.extend(not_more_than_100_percent(ms, &format!("{path}.maxSurge")));
                    match (int_or_percent(mu).0 != 0, int_or_percent(ms).0 != 0) {
                        (true, true) => errs.push(FieldError::invalid(
                            format!("{path}.maxSurge"),
                            intstr_value(ms),
                            "may not be set when maxUnavailable is non-zero",
                        )),
                        (false, false) => errs.push(FieldError::required(
                            format!("{path}.maxUnavailable"),
                            "cannot be 0 when maxSurge is 0",
                        )),
                        _ => {}
                    }
                }
            },
            other => errs.push(FieldError::not_supported(
                "spec.updateStrategy",
                other,
                &["RollingUpdate", "OnDelete"],
            )),
        }
        nonnegative(
            &mut errs,
            spec.revision_history_limit.map(i64::from),
            "spec.revisionHistoryLimit",
        );
        errs
    }

    fn validate_update(&self, new: &DaemonSet, old: &DaemonSet) -> ErrorList {
        let mut errs = self.validate(new);
        let sel = |d: &DaemonSet| d.spec.as_ref().map(|s| s.selector.clone());
        errs.extend(selector_immutable(&sel(new), &sel(old)));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer(
                "Desired",
                "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
            ),
            Column::integer(
                "Current",
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            Column::integer(
                "Ready",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            Column::integer(
                "Up-to-date",
                "The total number of nodes that are running updated daemon pod",
            ),
            Column::integer(
                "Available",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            Column::text(
                "Node Selector",
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            Column::AGE,
            CONTAINERS,
            IMAGES,
            Column::wide(
                "Selector",
                "A label query over pods that are managed by the daemon set.",
            ),
        ])
    }

    fn cells(&self, ds: &DaemonSet, raw: &Value) -> Vec<Value> {
        let spec = ds.spec.as_ref();
        let st = ds.status.clone().unwrap_or_default();
        let node_selector = spec
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.node_selector.as_ref());
        let (names, images) = container_cells(spec.map(|s| &s.template));
        vec![
            name_cell(raw),
            json!(st.desired_number_scheduled),
            json!(st.current_number_scheduled),
            json!(st.number_ready),
            json!(st.updated_number_scheduled.unwrap_or(0)),
            json!(st.number_available.unwrap_or(0)),
            format_labels(node_selector).into(),
            age_cell(raw),
            names,
            images,
            format_selector(spec.map(|s| &s.selector)).into(),
        ]
    }
}

/// ControllerRevision: upstream's `ValidateControllerRevision` and `printControllerRevision`.
pub struct ControllerRevisionRules;

impl Rules<ControllerRevision> for ControllerRevisionRules {
    fn validate(&self, cr: &ControllerRevision) -> ErrorList {
        let mut errs = Vec::new();
        if cr.data.is_none() {
            errs.push(FieldError::required("data", "data is mandatory"));
        }
        nonnegative(&mut errs, Some(cr.revision), "revision");
        errs
    }

    fn validate_update(&self, new: &ControllerRevision, old: &ControllerRevision) -> ErrorList {
        let mut errs = self.validate(new);
        let (n, o) = (
            serde_json::to_value(&new.data).ok(),
            serde_json::to_value(&old.data).ok(),
        );
        errs.extend(immutable(n.as_ref(), o.as_ref(), "data"));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Controller", "Controller of the object"),
            Column::text(
                "Revision",
                "Revision indicates the revision of the state represented by Data.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, cr: &ControllerRevision, raw: &Value) -> Vec<Value> {
        let controller = cr
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .map_or_else(
                || "<none>".to_string(),
                |r| {
                    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
                    let kind = if group.is_empty() {
                        r.kind.clone()
                    } else {
                        format!("{}.{group}", r.kind)
                    };
                    format!("{}/{}", kind.to_lowercase(), r.name)
                },
            );
        vec![
            name_cell(raw),
            controller.into(),
            json!(cr.revision),
            age_cell(raw),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::test_support::created;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R, kind: &'static str) -> Typed<T, R> {
        super::super::test_support::strategy("apps", kind, rules)
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
                }
            }
        })
    }

    use super::super::test_support::messages;

    #[test]
    fn deployments_get_upstreams_defaults_and_pass_validation() {
        let s = strategy::<Deployment, _>(DeploymentRules, "Deployment");
        let obj = created(&s, deployment());
        let spec = &obj["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["strategy"]["type"], "RollingUpdate");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(pod["containers"][0]["terminationMessagePolicy"], "File");
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
    }

    #[test]
    fn a_selector_that_misses_the_template_labels_is_rejected_as_upstream() {
        let s = strategy::<Deployment, _>(DeploymentRules, "Deployment");
        let mut d = deployment();
        d["spec"]["selector"]["matchLabels"]["app"] = json!("other");
        let obj = created(&s, d);
        assert_eq!(
            messages(&s.validate(&obj)),
            vec![
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#
            ]
        );
    }

    #[test]
    fn a_missing_selector_and_bad_containers_are_reported_per_field() {
        let s = strategy::<Deployment, _>(DeploymentRules, "Deployment");
        let mut d = deployment();
        d["spec"].as_object_mut().unwrap().remove("selector");
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["spec"]["containers"] = json!([{"name": "Bad_Name"}]);
        let obj = created(&s, d);
        let msgs = messages(&s.validate(&obj));
        assert_eq!(
            msgs[0],
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(msgs[1], "spec.selector: Required value");
        assert!(msgs[2].starts_with("spec.template.metadata.labels: Invalid value"));
        assert!(
            msgs[3]
                .starts_with("spec.template.spec.containers[0].name: Invalid value: \"Bad_Name\"")
        );
        assert_eq!(
            msgs[4],
            "spec.template.spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn deployment_strategies_and_restart_policies_are_enumerations() {
        let s = strategy::<Deployment, _>(DeploymentRules, "Deployment");
        let mut d = deployment();
        d["spec"]["strategy"] = json!({"type": "Bogus"});
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let msgs = messages(&s.validate(&created(&s, d)));
        assert!(msgs.contains(&r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#.to_string()));
        assert!(msgs.contains(&r#"spec.strategy: Unsupported value: "Bogus": supported values: "Recreate", "RollingUpdate""#.to_string()));
    }

    #[test]
    fn deployment_selectors_cannot_change_on_update() {
        let s = strategy::<Deployment, _>(DeploymentRules, "Deployment");
        let old = created(&s, deployment());
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        let msgs = messages(&s.validate_update(&new, &old));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("spec.selector: Invalid value:"));
        assert!(msgs[0].ends_with("field is immutable"));
    }

    #[test]
    fn deployment_rows_show_ready_over_desired_and_the_wide_columns() {
        let s = strategy::<Deployment, _>(DeploymentRules, "Deployment");
        let mut obj = created(&s, deployment());
        obj["spec"]["replicas"] = json!(3);
        obj["status"] = json!({"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2});
        let cols: Vec<String> = s.columns().iter().map(|c| c.name.to_string()).collect();
        assert_eq!(
            cols,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let cells = s.cells(&obj);
        assert_eq!(cells[1], "2/3");
        assert_eq!(cells[2], 3);
        assert_eq!(cells[5], "nginx");
        assert_eq!(cells[6], "nginx");
        assert_eq!(cells[7], "app=web");
    }

    #[test]
    fn statefulsets_default_their_policies_and_forbid_other_spec_updates() {
        let s = strategy::<StatefulSet, _>(StatefulSetRules, "StatefulSet");
        let mut d = deployment();
        d["kind"] = json!("StatefulSet");
        let old = created(&s, d);
        assert_eq!(old["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            old["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            0
        );
        assert_eq!(
            old["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            "Retain"
        );
        assert!(s.validate(&old).is_empty(), "{:?}", s.validate(&old));
        let mut new = old.clone();
        new["spec"]["serviceName"] = json!("other");
        let msgs = messages(&s.validate_update(&new, &old));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("spec: Forbidden: updates to statefulset spec"));
        assert_eq!(s.cells(&old)[1], "0/1");
    }

    #[test]
    fn daemonsets_default_to_rolling_updates_of_one_pod() {
        let s = strategy::<DaemonSet, _>(DaemonSetRules, "DaemonSet");
        let mut d = deployment();
        d["kind"] = json!("DaemonSet");
        let obj = created(&s, d);
        assert_eq!(
            obj["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
        assert_eq!(
            obj["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"],
            0
        );
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
        assert_eq!(s.cells(&obj)[6], "<none>");
        // The template generation starts at 1 and counts template changes only.
        let annotation = |o: &Value| o["metadata"]["annotations"][TEMPLATE_GENERATION].clone();
        assert_eq!(annotation(&obj), "1");
        let mut relabelled = obj.clone();
        relabelled["metadata"]["labels"] = json!({"x": "y"});
        s.prepare_for_update(&mut relabelled, &obj);
        assert_eq!(annotation(&relabelled), "1");
        let mut retemplated = obj.clone();
        retemplated["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        s.prepare_for_update(&mut retemplated, &obj);
        assert_eq!(annotation(&retemplated), "2");
    }

    #[test]
    fn replicasets_select_on_status_replicas() {
        let s = strategy::<ReplicaSet, _>(ReplicaSetRules, "ReplicaSet");
        assert_eq!(s.field(&json!({}), "status.replicas").as_deref(), Some("0"));
        let mut d = deployment();
        d["kind"] = json!("ReplicaSet");
        let obj = created(&s, d);
        assert!(s.validate(&obj).is_empty());
        assert_eq!(s.cells(&obj)[7], "app=web");
    }

    #[test]
    fn controller_revisions_name_their_controller() {
        let s = strategy::<ControllerRevision, _>(ControllerRevisionRules, "ControllerRevision");
        let obj = json!({
            "metadata": {"name": "r", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u", "controller": true}]},
            "revision": 2
        });
        assert_eq!(s.cells(&obj)[1], "daemonset.apps/ds");
        assert_eq!(
            messages(&s.validate(&obj)),
            vec!["data: Required value: data is mandatory"]
        );
    }
}
