//! Pods: upstream's pod defaults, `PrepareForCreate` (phase Pending, QoS class), the common
//! create/update validation, `kubectl get pods` columns and the pod field selectors.

use super::podspec::{default_pod_spec, validate_pod_spec};
use super::{quantity, s};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, PROXY_VERBS, Rules, Sub};
use crate::registry::table::{Column, age_cell};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const POD_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const POD_NOMINATED_NODE: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const POD_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

/// Rules of core/v1 Pod.
pub struct PodRules;

const UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Sums of the positive cpu/memory quantities of `containers` for `pick` (requests or limits).
fn qos_sums<'a>(
    containers: impl Iterator<Item = &'a Container> + Clone,
    limits: bool,
) -> BTreeMap<&'a str, f64> {
    let mut out = BTreeMap::new();
    for c in containers {
        let r = c.resources.as_ref();
        let list = if limits {
            r.and_then(|r| r.limits.as_ref())
        } else {
            r.and_then(|r| r.requests.as_ref())
        };
        for (name, q) in list.into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Some(v) = quantity::parse(&q.0).filter(|v| *v > 0.0) {
                *out.entry(name.as_str()).or_insert(0.0) += v;
            }
        }
    }
    out
}

/// Upstream's `qos.GetPodQOS` on a defaulted spec.
fn qos_class(spec: &PodSpec) -> &'static str {
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let requests = qos_sums(all.clone(), false);
    let limits = qos_sums(all.clone(), true);
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    let every_container_limits_both = all.clone().all(|c| {
        let l = qos_sums(std::iter::once(c), true);
        l.contains_key("cpu") && l.contains_key("memory")
    });
    let equal = requests.iter().all(|(k, v)| limits.get(k) == Some(v));
    if every_container_limits_both && equal && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `SetDefaults_Pod`: requests default to limits, service links on, host-network ports.
fn default_pod_only(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if let Some(r) = &mut c.resources
            && let Some(limits) = r.limits.clone()
        {
            let requests = r.requests.get_or_insert_with(BTreeMap::new);
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        }
        if host_network {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
    spec.enable_service_links.get_or_insert(true);
}

fn terminated_at(st: &ContainerStatus) -> Option<i64> {
    st.last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| t.0.as_second())
}

fn condition_true(status: &PodStatus, kind: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == kind && c.status == "True")
}

/// READY, STATUS and RESTARTS as upstream's `printPod` computes them.
fn ready_status_restarts(pod: &Pod) -> (String, String, String) {
    let empty_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    let empty_status = PodStatus::default();
    let status = pod.status.as_ref().unwrap_or(&empty_status);
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut total = spec.containers.len();
    let mut ready = 0usize;
    let mut last_restart: Option<i64> = None;
    let mut last_sidecar_restart: Option<i64> = None;
    let mut reason = s(&status.phase).to_string();
    if !s(&status.reason).is_empty() {
        reason = s(&status.reason).to_string();
    }
    if status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && s(&c.reason) == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let init_specs: BTreeMap<&str, &Container> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let is_sidecar = |name: &str| {
        init_specs
            .get(name)
            .is_some_and(|c| s(&c.restart_policy) == "Always")
    };
    total += init_specs.values().filter(|c| is_sidecar(&c.name)).count();
    let n_init = init_specs.len();
    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += i64::from(c.restart_count);
        if let Some(t) = terminated_at(c) {
            last_restart = last_restart.max(Some(t));
        }
        if is_sidecar(&c.name) {
            sidecar_restarts += i64::from(c.restart_count);
            if let Some(t) = terminated_at(c) {
                last_sidecar_restart = last_sidecar_restart.max(Some(t));
            }
        }
        let state = c.state.clone().unwrap_or_default();
        match (&state.terminated, &state.waiting) {
            (Some(t), _) if t.exit_code == 0 => continue,
            _ if is_sidecar(&c.name) && c.started == Some(true) => {
                if c.ready {
                    ready += 1;
                }
                continue;
            }
            (Some(t), _) => {
                reason = match (s(&t.reason), t.signal.unwrap_or(0)) {
                    ("", 0) => format!("Init:ExitCode:{}", t.exit_code),
                    ("", sig) => format!("Init:Signal:{sig}"),
                    (r, _) => format!("Init:{r}"),
                };
            }
            (None, Some(w)) if !s(&w.reason).is_empty() && s(&w.reason) != "PodInitializing" => {
                reason = format!("Init:{}", s(&w.reason));
            }
            _ => reason = format!("Init:{i}/{n_init}"),
        }
        initializing = true;
        break;
    }
    if !initializing || condition_true(status, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            restarts += i64::from(c.restart_count);
            if let Some(t) = terminated_at(c) {
                last_restart = last_restart.max(Some(t));
            }
            let state = c.state.clone().unwrap_or_default();
            if let Some(w) = state.waiting.as_ref().filter(|w| !s(&w.reason).is_empty()) {
                reason = s(&w.reason).to_string();
            } else if let Some(t) = &state.terminated {
                reason = match (s(&t.reason), t.signal.unwrap_or(0)) {
                    ("", 0) => format!("ExitCode:{}", t.exit_code),
                    ("", sig) => format!("Signal:{sig}"),
                    (r, _) => r.to_string(),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(status, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    let phase = s(&status.phase);
    if pod.metadata.deletion_timestamp.is_some() && s(&status.reason) == "NodeLost" {
        reason = "Unknown".into();
    } else if pod.metadata.deletion_timestamp.is_some() && phase != "Succeeded" && phase != "Failed"
    {
        reason = "Terminating".into();
    }
    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            crate::registry::table::human_duration(super::now_secs() - t)
        ),
        _ => restarts.to_string(),
    };
    (format!("{ready}/{total}"), reason, restarts_cell)
}

fn none_if_empty(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.into()
    }
}

impl Rules<Pod> for PodRules {
    const EMBEDDED_METADATA: &'static [&'static str] =
        &["spec/volumes/*/ephemeral/volumeClaimTemplate/metadata"];
    const SHORT_NAMES: Names = &["po"];
    const CATEGORIES: Names = &["all"];
    const SUBRESOURCES: &'static [Sub] = &[
        Sub::Status,
        Sub::Connect {
            name: "attach",
            kind: "PodAttachOptions",
            verbs: &["create", "get"],
        },
        Sub::EphemeralContainers,
        Sub::Resize,
        Sub::Connect {
            name: "exec",
            kind: "PodExecOptions",
            verbs: &["create", "get"],
        },
        Sub::Connect {
            name: "log",
            kind: "Pod",
            verbs: &["get"],
        },
        Sub::Connect {
            name: "portforward",
            kind: "PodPortForwardOptions",
            verbs: &["create", "get"],
        },
        Sub::Connect {
            name: "proxy",
            kind: "PodProxyOptions",
            verbs: PROXY_VERBS,
        },
        Sub::Create {
            name: "binding",
            group: "",
            version: "v1",
            kind: "Binding",
        },
        Sub::Create {
            name: "eviction",
            group: "policy",
            version: "v1",
            kind: "Eviction",
        },
    ];
    const TRACKS_GENERATION: bool = false;
    const DELETE_RETURNS_OBJECT: bool = true;

    /// Upstream's pod `CheckGracefulDelete`: a pod on a node waits for its kubelet unless it has
    /// finished or the grace period asked for is 0; a pod on no node goes at once.
    fn deletion_grace_period(&self, pod: &Pod, requested: Option<i64>) -> Option<i64> {
        let spec = pod.spec.as_ref()?;
        if spec.node_name.as_deref().unwrap_or("").is_empty() {
            return None;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        let grace = requested.unwrap_or(spec.termination_grace_period_seconds.unwrap_or(30));
        (grace > 0).then_some(grace)
    }

    fn prepare_for_create(&self, pod: &mut Pod) {
        // Upstream decodes (and so defaults) before PrepareForCreate; the QoS class needs the
        // requests that defaulting copies from limits.
        self.default(pod);
        let qos = qos_class(pod.spec.as_ref().unwrap_or(&PodSpec::default()));
        pod.status = Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some(qos.into()),
            ..Default::default()
        });
    }

    fn prepare_for_update(&self, new: &mut Pod, old: &Pod) {
        new.status = old.status.clone();
    }

    fn default(&self, pod: &mut Pod) {
        let spec = pod.spec.get_or_insert_with(Default::default);
        default_pod_spec(spec);
        default_pod_only(spec);
    }

    fn validate(&self, pod: &Pod) -> ErrorList {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut errs = validate_pod_spec(&spec, "spec", true);
        if spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                "cannot be set on create",
            ));
        }
        if !s(&spec.node_name).is_empty()
            && spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| !g.is_empty())
        {
            errs.push(FieldError::forbidden(
                "spec.nodeName",
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
        errs
    }

    /// Upstream's `dropNonResizeUpdates`: through `pods/resize` only the containers' resources
    /// and resize policies change (containers added, removed or reordered are left for
    /// validation to refuse).
    fn prepare_for_subresource_update(&self, subresource: &str, new: &mut Pod, old: &Pod) {
        if subresource != "resize" {
            return;
        }
        let (Some(spec), Some(old_spec)) = (new.spec.as_mut(), old.spec.as_ref()) else {
            return;
        };
        let merge = |new: &mut Vec<Container>, old: &[Container]| {
            if new.len() != old.len() {
                return;
            }
            for (n, o) in new.iter_mut().zip(old) {
                let (resources, policy) = (n.resources.take(), n.resize_policy.take());
                *n = o.clone();
                n.resources = resources;
                n.resize_policy = policy;
            }
        };
        merge(&mut spec.containers, &old_spec.containers);
        if let Some(init) = spec.init_containers.as_mut() {
            merge(
                init,
                old_spec.init_containers.as_deref().unwrap_or_default(),
            );
        }
    }

    /// Upstream's `ValidatePodEphemeralContainersUpdate` for `pods/ephemeralcontainers`: new
    /// ephemeral containers are valid ones, existing ones are neither removed nor changed, and
    /// static pods take none.
    fn validate_subresource_update(&self, subresource: &str, new: &Pod, old: &Pod) -> ErrorList {
        if subresource == "resize" {
            return validate_resize(new, old);
        }
        if subresource != "ephemeralcontainers" {
            return self.validate_update(new, old);
        }
        let mirror = old
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
        if mirror {
            return vec![FieldError::forbidden(
                "",
                "static pods do not support ephemeral containers",
            )];
        }
        let spec = new.spec.clone().unwrap_or_default();
        let mut errs = validate_ephemeral_containers(&spec);
        let news = spec.ephemeral_containers.unwrap_or_default();
        let olds = old
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.clone())
            .unwrap_or_default();
        for o in &olds {
            match news.iter().find(|n| n.name == o.name) {
                None => errs.push(FieldError::forbidden(
                    "spec.ephemeralContainers",
                    format!(
                        "existing ephemeral containers {:?} may not be removed\n",
                        o.name
                    ),
                )),
                Some(n) if n != o => errs.push(FieldError::forbidden(
                    format!("spec.ephemeralContainers[{}]", o.name),
                    format!(
                        "existing ephemeral containers {:?} may not be changed\n",
                        o.name
                    ),
                )),
                Some(_) => {}
            }
        }
        errs
    }

    fn validate_update(&self, new: &Pod, old: &Pod) -> ErrorList {
        let new_spec = new.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        let mut errs = validate_pod_spec(&new_spec, "spec", true);
        if new_spec.containers.len() != old_spec.containers.len() {
            errs.push(FieldError::forbidden(
                "spec.containers",
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        match (
            new_spec.active_deadline_seconds,
            old_spec.active_deadline_seconds,
        ) {
            (Some(n), Some(o)) if n > o => errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            )),
            (None, Some(_)) => errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                Value::Null,
                "must not update from a positive integer to nil value",
            )),
            _ => {}
        }
        // Neutralise what may change, then any remaining difference is forbidden.
        let mut munged = new_spec.clone();
        for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
            c.image = o.image.clone();
        }
        if let (Some(cs), Some(os)) = (&mut munged.init_containers, &old_spec.init_containers)
            && cs.len() == os.len()
        {
            for (c, o) in cs.iter_mut().zip(os) {
                c.image = o.image.clone();
            }
        }
        munged.active_deadline_seconds = old_spec.active_deadline_seconds;
        let old_tolerations = old_spec.tolerations.clone().unwrap_or_default();
        let new_tolerations = munged.tolerations.clone().unwrap_or_default();
        if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
            munged.tolerations = old_spec.tolerations.clone();
        }
        if old_spec
            .termination_grace_period_seconds
            .is_some_and(|g| g < 0)
            && munged.termination_grace_period_seconds == Some(1)
        {
            munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
        }
        if old_spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            // Gated pods may drop gates; upstream also relaxes node selectors and affinity.
            munged.scheduling_gates = old_spec.scheduling_gates.clone();
        }
        if munged != old_spec {
            errs.push(FieldError::forbidden(
                "spec",
                format!("pod updates may not change fields other than {UPDATABLE_FIELDS}"),
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Ready",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            Column::text(
                "Status",
                "The aggregate status of the containers in this pod.",
            ),
            Column::text(
                "Restarts",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            Column::AGE,
            Column::wide("IP", POD_IP),
            Column::wide("Node", POD_NODE_NAME),
            Column::wide("Nominated Node", POD_NOMINATED_NODE),
            Column::wide("Readiness Gates", POD_READINESS_GATES),
        ])
    }

    fn cells(&self, pod: &Pod, raw: &Value) -> Vec<Value> {
        let (ready, status, restarts) = ready_status_restarts(pod);
        let empty_spec = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
        let empty_status = PodStatus::default();
        let st = pod.status.as_ref().unwrap_or(&empty_status);
        let ip = st
            .pod_ips
            .iter()
            .flatten()
            .next()
            .map(|p| p.ip.as_str())
            .unwrap_or("");
        let gates = match spec.readiness_gates.as_deref() {
            Some(g) if !g.is_empty() => {
                let ok = g
                    .iter()
                    .filter(|gate| {
                        st.conditions
                            .iter()
                            .flatten()
                            .find(|c| c.type_ == gate.condition_type)
                            .is_some_and(|c| c.status == "True")
                    })
                    .count();
                format!("{ok}/{}", g.len())
            }
            _ => "<none>".into(),
        };
        vec![
            json!(pod.metadata.name.as_deref().unwrap_or("")),
            json!(ready),
            json!(status),
            json!(restarts),
            age_cell(raw),
            json!(none_if_empty(ip)),
            json!(none_if_empty(s(&spec.node_name))),
            json!(none_if_empty(s(&st.nominated_node_name))),
            json!(gates),
        ]
    }

    fn field(&self, pod: &Pod, field: &str) -> Option<String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        Some(match field {
            "spec.nodeName" => s(&spec.node_name).into(),
            "spec.restartPolicy" => s(&spec.restart_policy).into(),
            "spec.schedulerName" => s(&spec.scheduler_name).into(),
            "spec.serviceAccountName" => s(&spec.service_account_name).into(),
            "spec.hostNetwork" => spec.host_network.unwrap_or(false).to_string(),
            "status.phase" => s(&status.phase).into(),
            "status.podIP" => status
                .pod_ips
                .iter()
                .flatten()
                .next()
                .map(|p| p.ip.clone())
                .unwrap_or_default(),
            "status.nominatedNodeName" => s(&status.nominated_node_name).into(),
            _ => return None,
        })
    }
}

/// Upstream's `podutil.UpdatePodCondition`: `condition` (with lastTransitionTime now) replaces
/// the pod's condition of its type, keeping the old transition time when the status is the
/// same, or is added.
pub(crate) fn update_pod_condition(pod: &mut Value, mut condition: Value) {
    condition["lastTransitionTime"] = json!(crate::registry::store::now_rfc3339());
    let status = &mut pod["status"];
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"]
        .as_array_mut()
        .expect("conditions were made an array");
    match conditions
        .iter_mut()
        .find(|c| c["type"] == condition["type"])
    {
        Some(old) => {
            if old["status"] == condition["status"] {
                condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            *old = condition;
        }
        None => conditions.push(condition),
    }
}

/// Upstream's `ValidatePodResize`: static and Windows pods are not resized; containers keep
/// their number, order and names; no request or limit is removed; only CPU and memory change;
/// the QoS class stays.
fn validate_resize(new: &Pod, old: &Pod) -> ErrorList {
    let is_mirror = old
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    if is_mirror {
        return vec![FieldError::forbidden("", "static pods cannot be resized")];
    }
    let (spec, old_spec) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    if old_spec.os.as_ref().is_some_and(|os| os.name == "windows") {
        return vec![FieldError::forbidden("", "windows pods cannot be resized")];
    }
    let mut errs = validate_pod_spec(&spec, "spec", true);
    let pairs = [
        (
            "containers",
            spec.containers.clone(),
            old_spec.containers.clone(),
        ),
        (
            "initContainers",
            spec.init_containers.clone().unwrap_or_default(),
            old_spec.init_containers.clone().unwrap_or_default(),
        ),
    ];
    let mut ordered = true;
    for (field, news, olds) in &pairs {
        if news.len() != olds.len() {
            errs.push(FieldError::forbidden(
                format!("spec.{field}"),
                "containers may not be added or removed on resize",
            ));
            ordered = false;
            continue;
        }
        for (i, (n, o)) in news.iter().zip(olds).enumerate() {
            if n.name != o.name {
                errs.push(FieldError::forbidden(
                    format!("spec.{field}[{i}].name"),
                    "containers may not be renamed or reordered on resize",
                ));
                ordered = false;
            }
        }
    }
    if !ordered {
        return errs;
    }
    if qos_class(&spec) != qos_class(&old_spec) {
        let current = old
            .status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .unwrap_or_default();
        errs.push(FieldError::invalid(
            "spec",
            current,
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    let mut only_cpu_memory = true;
    for (field, news, olds) in &pairs {
        for (i, (n, o)) in news.iter().zip(olds).enumerate() {
            let (nr, or) = (
                n.resources.clone().unwrap_or_default(),
                o.resources.clone().unwrap_or_default(),
            );
            for (kind, new_list, old_list) in [
                (
                    "requests",
                    nr.requests.unwrap_or_default(),
                    or.requests.unwrap_or_default(),
                ),
                (
                    "limits",
                    nr.limits.unwrap_or_default(),
                    or.limits.unwrap_or_default(),
                ),
            ] {
                for name in old_list.keys() {
                    if !new_list.contains_key(name) {
                        errs.push(FieldError::forbidden(
                            format!("spec.{field}[{i}].resources.{kind}[{name}]"),
                            "resource removal is not supported",
                        ));
                    }
                }
                let others = |l: &BTreeMap<
                    String,
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity,
                >| {
                    l.iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "cpu" | "memory"))
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect::<Vec<_>>()
                };
                if others(&new_list) != others(&old_list) {
                    only_cpu_memory = false;
                }
            }
        }
    }
    if !only_cpu_memory {
        errs.push(FieldError::forbidden(
            "spec",
            "only cpu and memory resources are mutable",
        ));
    }
    errs
}

/// Upstream's `validateEphemeralContainers`: a DNS-label name no other container of the pod
/// has, an image, a target that is one of the pod's containers, and none of the fields an
/// ephemeral container may not have.
fn validate_ephemeral_containers(spec: &PodSpec) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: Vec<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let regular = names.clone();
    for (i, ec) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        if ec.name.is_empty() {
            errs.push(FieldError::required(format!("{path}.name"), ""));
        } else {
            for problem in crate::registry::validation::dns1123_label(&ec.name) {
                errs.push(FieldError::invalid(
                    format!("{path}.name"),
                    ec.name.clone(),
                    problem,
                ));
            }
            if names.contains(&ec.name.as_str()) {
                errs.push(FieldError::duplicate(
                    format!("{path}.name"),
                    ec.name.clone(),
                ));
            }
            names.push(&ec.name);
        }
        if ec.image.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(format!("{path}.image"), ""));
        }
        if let Some(target) = ec.target_container_name.as_deref()
            && !target.is_empty()
            && !regular.contains(&target)
        {
            errs.push(FieldError::not_found(
                format!("{path}.targetContainerName"),
                target,
            ));
        }
        let disallowed = [
            ("lifecycle", ec.lifecycle.is_some()),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("ports", ec.ports.as_ref().is_some_and(|p| !p.is_empty())),
            (
                "resources",
                ec.resources.as_ref().is_some_and(|r| {
                    r.limits.as_ref().is_some_and(|l| !l.is_empty())
                        || r.requests.as_ref().is_some_and(|l| !l.is_empty())
                }),
            ),
            (
                "resizePolicy",
                ec.resize_policy.as_ref().is_some_and(|p| !p.is_empty()),
            ),
            ("restartPolicy", ec.restart_policy.is_some()),
        ];
        for (field, set) in disallowed {
            if set {
                errs.push(FieldError::forbidden(
                    format!("{path}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::test_support::{created, messages};
    use crate::registry::strategy::{Strategy, Typed};
    use crate::registry::validation::NameRule;

    fn strategy() -> Typed<Pod, PodRules> {
        Typed::new(super::super::tests::info("Pod", "pods"), PodRules)
    }

    #[test]
    fn a_new_pod_gets_upstreams_defaults_and_pending_status() {
        let s = strategy();
        let v = created(
            &s,
            json!({"metadata": {"name": "p", "namespace": "d"},
                   "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}),
        );
        let spec = &v["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            v["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert!(s.validate(&v).is_empty(), "{:?}", s.validate(&v));
        let _ = NameRule::Dns1123Subdomain;
    }

    #[test]
    fn tagged_images_pull_if_not_present_and_limits_make_a_guaranteed_pod() {
        let s = strategy();
        let v = created(
            &s,
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
        );
        assert_eq!(
            v["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            v["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert_eq!(v["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn invalid_pods_report_each_field_as_upstream_does() {
        let s = strategy();
        let v = created(
            &s,
            json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Sometimes",
                "volumes": [{"name": "v"}, {"name": "v"}],
                "containers": [
                    {"name": "Bad_Name", "image": "x", "ports": [{"containerPort": 70000}]},
                    {"name": "c2", "volumeMounts": [{"name": "missing", "mountPath": "/m"}]},
                    {"name": "c2", "image": "y"}]}}),
        );
        let msgs = messages(&s.validate(&v));
        assert_eq!(
            msgs,
            vec![
                r#"spec.volumes[1].name: Duplicate value: "v""#,
                r#"spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[1].image: Required value",
                r#"spec.containers[1].volumeMounts[0].name: Not found: "missing""#,
                r#"spec.containers[2].name: Duplicate value: "c2""#,
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ]
        );
        let empty = created(
            &s,
            json!({"metadata": {"name": "p"}, "spec": {"containers": []}}),
        );
        assert_eq!(
            messages(&s.validate(&empty)),
            vec!["spec.containers: Required value"]
        );
    }

    #[test]
    fn pod_updates_may_change_images_but_not_other_spec_fields() {
        let s = strategy();
        let old = created(
            &s,
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "a"}]}}),
        );
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("b");
        assert!(s.validate_update(&new, &old).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        let msgs = messages(&s.validate_update(&new, &old));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"));
    }

    #[test]
    fn cells_show_ready_status_restarts_and_wide_columns() {
        let s = strategy();
        let v = json!({"metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}], "containerStatuses": [
                {"name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "image": "y", "imageID": "", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let cells = s.cells(&v);
        assert_eq!(cells[0], "p");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "3");
        assert_eq!(
            &cells[5..],
            &[
                json!("10.0.0.1"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        assert_eq!(s.columns().len(), cells.len());
    }

    #[test]
    fn pod_field_selectors_cover_upstreams_fields() {
        let s = strategy();
        let empty = json!({"metadata": {}});
        for f in [
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ] {
            assert!(s.field(&empty, f).is_some(), "{f}");
        }
        assert_eq!(
            s.field(&empty, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert!(s.field(&empty, "spec.bogus").is_none());
    }
}
