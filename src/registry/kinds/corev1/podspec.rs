//! PodSpec rules shared by pods, pod templates and replication controllers: upstream's
//! `SetDefaults_PodSpec`/`SetDefaults_Container`/volume defaults and the `ValidatePodSpec` checks
//! users meet most, with the same field paths and wording.

use super::quantity::{self, QUANTITY_MSG};
use super::{port_name, port_num, s};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::validation::{dns1123_label, dns1123_subdomain};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, Probe, ResourceRequirements, Volume,
};
use std::collections::{BTreeMap, HashSet};

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["FallbackToLogsOnError", "File"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
/// Upstream's default mode of secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_MODE: i32 = 0o644;

/// The tag of an image reference as upstream's `parsers.ParseImageName` sees it: `latest` when
/// neither tag nor digest is given, `None` when the reference does not parse.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo_last, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    let repo = &name[..name.len() - last.len() + repo_last.len()];
    let bad_repo = repo.is_empty()
        || repo.ends_with('/')
        || repo
            .rsplit('/')
            .next()
            .is_some_and(|p| p.is_empty() || p.chars().any(|c| c.is_ascii_uppercase()));
    if bad_repo || tag == Some("") || digest == Some("") {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => Some(String::new()),
        (None, None) => Some("latest".into()),
    }
}

fn default_probe(p: &mut Option<Probe>) {
    let Some(p) = p else { return };
    p.timeout_seconds.get_or_insert(1);
    p.period_seconds.get_or_insert(10);
    p.success_threshold.get_or_insert(1);
    p.failure_threshold.get_or_insert(3);
    if let Some(h) = &mut p.http_get {
        h.path.get_or_insert_with(|| "/".into());
        h.scheme.get_or_insert_with(|| "HTTP".into());
    }
}

/// Upstream's `SetDefaults_Container` plus the declarative defaults of what a container holds.
pub(crate) fn default_container(c: &mut Container) {
    if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
        let latest = image_tag(s(&c.image)).as_deref() == Some("latest");
        c.image_pull_policy = Some(if latest { "Always" } else { "IfNotPresent" }.into());
    }
    if s(&c.termination_message_path).is_empty() {
        c.termination_message_path = Some("/dev/termination-log".into());
    }
    if s(&c.termination_message_policy).is_empty() {
        c.termination_message_policy = Some("File".into());
    }
    for p in c.ports.iter_mut().flatten() {
        if s(&p.protocol).is_empty() {
            p.protocol = Some("TCP".into());
        }
    }
    default_probe(&mut c.liveness_probe);
    default_probe(&mut c.readiness_probe);
    default_probe(&mut c.startup_probe);
    // A Go struct field, never omitted: upstream writes `resources: {}`.
    c.resources.get_or_insert_with(Default::default);
    for e in c.env.iter_mut().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            f.api_version.get_or_insert_with(|| "v1".into());
        }
    }
}

fn default_volume(v: &mut Volume) {
    let sources = serde_json::to_value(&*v)
        .ok()
        .and_then(|j| {
            j.as_object()
                .map(|o| o.keys().filter(|k| *k != "name").count())
        })
        .unwrap_or(0);
    if sources == 0 {
        v.empty_dir = Some(Default::default());
    }
    if let Some(x) = &mut v.secret {
        x.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(x) = &mut v.config_map {
        x.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(x) = &mut v.downward_api {
        x.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(x) = &mut v.projected {
        x.default_mode.get_or_insert(DEFAULT_MODE);
    }
    if let Some(x) = &mut v.host_path {
        x.type_.get_or_insert_with(String::new);
    }
    // The claim template is a PersistentVolumeClaim's spec, defaulted as one.
    if let Some(spec) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
        .map(|t| &mut t.spec)
    {
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }
}

/// Upstream's `SetDefaults_PodSpec` and the container and volume defaults under it.
pub(crate) fn default_pod_spec(spec: &mut PodSpec) {
    if s(&spec.dns_policy).is_empty() {
        spec.dns_policy = Some("ClusterFirst".into());
    }
    if s(&spec.restart_policy).is_empty() {
        spec.restart_policy = Some("Always".into());
    }
    spec.security_context.get_or_insert_with(Default::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    if s(&spec.scheduler_name).is_empty() {
        spec.scheduler_name = Some("default-scheduler".into());
    }
    // The v1 conversion: `serviceAccount` is the deprecated alias of `serviceAccountName`, which
    // wins when both are given; every v1 object upstream writes carries both.
    if s(&spec.service_account_name).is_empty() {
        spec.service_account_name = spec.service_account.clone().filter(|n| !n.is_empty());
    }
    spec.service_account = spec.service_account_name.clone();
    spec.containers.iter_mut().for_each(default_container);
    spec.init_containers
        .iter_mut()
        .flatten()
        .for_each(default_container);
    spec.volumes.iter_mut().flatten().for_each(default_volume);
}

fn validate_ports(ports: &[ContainerPort], path: &str, errs: &mut ErrorList) {
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(format!("{at}.name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(format!("{at}.name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(format!("{at}.containerPort"), ""));
        } else {
            for m in port_num(p.container_port) {
                errs.push(FieldError::invalid(
                    format!("{at}.containerPort"),
                    p.container_port,
                    m,
                ));
            }
        }
        if let Some(hp) = p.host_port.filter(|hp| *hp != 0) {
            for m in port_num(hp) {
                errs.push(FieldError::invalid(format!("{at}.hostPort"), hp, m));
            }
        }
        match s(&p.protocol) {
            "" => errs.push(FieldError::required(format!("{at}.protocol"), "")),
            proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                format!("{at}.protocol"),
                proto,
                PROTOCOLS,
            )),
            _ => {}
        }
    }
}

/// Whether a resource may be requested below its limit (native and not hugepages).
fn overcommit_allowed(name: &str) -> bool {
    (!name.contains('/') || name.contains("kubernetes.io/")) && !name.starts_with("hugepages-")
}

fn validate_resource_name(name: &str, at: &str, errs: &mut ErrorList) {
    if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !standard {
            errs.push(FieldError::invalid(
                at,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else {
        for m in crate::registry::validation::qualified_name(name) {
            errs.push(FieldError::invalid(at, name, m));
        }
    }
}

fn validate_quantity(q: &str, at: &str, errs: &mut ErrorList) -> Option<f64> {
    match quantity::parse(q) {
        None => {
            errs.push(FieldError::invalid(at, q, QUANTITY_MSG));
            None
        }
        Some(v) if v < 0.0 => {
            errs.push(FieldError::invalid(
                at,
                q,
                "must be greater than or equal to 0",
            ));
            Some(v)
        }
        Some(v) => Some(v),
    }
}

/// Upstream's `ValidateResourceRequirements` for one container's `resources`.
pub(crate) fn validate_resources(r: &ResourceRequirements, path: &str, errs: &mut ErrorList) {
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    for (name, q) in limits {
        let at = format!("{path}.limits[{name}]");
        validate_resource_name(name, &at, errs);
        validate_quantity(&q.0, &at, errs);
    }
    for (name, q) in r.requests.iter().flatten() {
        let at = format!("{path}.requests[{name}]");
        validate_resource_name(name, &at, errs);
        let Some(req) = validate_quantity(&q.0, &at, errs) else {
            continue;
        };
        match limits.get(name) {
            Some(limit) => {
                let Some(lim) = quantity::parse(&limit.0) else {
                    continue;
                };
                if req != lim && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        format!("{path}.requests"),
                        q.0.as_str(),
                        format!("must be equal to {name} limit of {}", limit.0),
                    ));
                } else if req > lim {
                    errs.push(FieldError::invalid(
                        format!("{path}.requests"),
                        q.0.as_str(),
                        format!("must be less than or equal to {name} limit of {}", limit.0),
                    ));
                }
            }
            None if !overcommit_allowed(name) => errs.push(FieldError::required(
                format!("{path}.limits"),
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

fn enum_field(value: &str, allowed: &[&str], at: String, errs: &mut ErrorList) {
    if value.is_empty() {
        errs.push(FieldError::required(at, ""));
    } else if !allowed.contains(&value) {
        errs.push(FieldError::not_supported(at, value, allowed));
    }
}

fn validate_container(
    c: &Container,
    at: &str,
    volumes: &HashSet<&str>,
    for_pod: bool,
    errs: &mut ErrorList,
) {
    if c.name.is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    } else {
        for m in dns1123_label(&c.name) {
            errs.push(FieldError::invalid(
                format!("{at}.name"),
                c.name.as_str(),
                m,
            ));
        }
    }
    let image = s(&c.image);
    if image.is_empty() {
        errs.push(FieldError::required(format!("{at}.image"), ""));
    } else if for_pod && image.trim() != image {
        errs.push(FieldError::invalid(
            format!("{at}.image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    validate_ports(
        c.ports.as_deref().unwrap_or(&[]),
        &format!("{at}.ports"),
        errs,
    );
    for (i, e) in c.env.iter().flatten().enumerate() {
        if e.name.is_empty() {
            errs.push(FieldError::required(format!("{at}.env[{i}].name"), ""));
        }
    }
    let mut mount_points = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mat = format!("{at}.volumeMounts[{i}]");
        if m.name.is_empty() {
            errs.push(FieldError::required(format!("{mat}.name"), ""));
        }
        if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(
                format!("{mat}.name"),
                m.name.as_str(),
            ));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(format!("{mat}.mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                format!("{mat}.mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
    }
    enum_field(
        s(&c.image_pull_policy),
        PULL_POLICIES,
        format!("{at}.imagePullPolicy"),
        errs,
    );
    if let Some(r) = &c.resources {
        validate_resources(r, &format!("{at}.resources"), errs);
    }
    enum_field(
        s(&c.termination_message_policy),
        TERMINATION_MESSAGE_POLICIES,
        format!("{at}.terminationMessagePolicy"),
        errs,
    );
}

/// Upstream's `ValidatePodSpec` (the common checks) at `path`; `for_pod` adds the pod-only ones.
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &str, for_pod: bool) -> ErrorList {
    let mut errs = Vec::new();
    let mut volumes = HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let at = format!("{path}.volumes[{i}].name");
        let mut bad = false;
        if v.name.is_empty() {
            errs.push(FieldError::required(at.clone(), ""));
            bad = true;
        } else {
            for m in dns1123_label(&v.name) {
                errs.push(FieldError::invalid(at.clone(), v.name.as_str(), m));
                bad = true;
            }
        }
        if volumes.contains(v.name.as_str()) {
            errs.push(FieldError::duplicate(at, v.name.as_str()));
            bad = true;
        }
        if !bad {
            volumes.insert(v.name.as_str());
        }
    }
    let mut names = HashSet::new();
    if spec.containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        validate_container(c, &at, &volumes, for_pod, &mut errs);
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(format!("{at}.name"), c.name.as_str()));
        }
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let at = format!("{path}.initContainers[{i}]");
        validate_container(c, &at, &volumes, for_pod, &mut errs);
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(format!("{at}.name"), c.name.as_str()));
        }
    }
    enum_field(
        s(&spec.restart_policy),
        RESTART_POLICIES,
        format!("{path}.restartPolicy"),
        &mut errs,
    );
    enum_field(
        s(&spec.dns_policy),
        DNS_POLICIES,
        format!("{path}.dnsPolicy"),
        &mut errs,
    );
    errs.extend(crate::registry::validation::labels(
        serde_json::to_value(&spec.node_selector).ok().as_ref(),
        &format!("{path}.nodeSelector"),
    ));
    for (field, value) in [
        ("serviceAccountName", s(&spec.service_account_name)),
        ("nodeName", s(&spec.node_name)),
    ] {
        if !value.is_empty() {
            for m in dns1123_subdomain(value) {
                errs.push(FieldError::invalid(format!("{path}.{field}"), value, m));
            }
        }
    }
    if let Some(v) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            format!("{path}.activeDeadlineSeconds"),
            v,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for (field, value) in [
        ("hostname", s(&spec.hostname)),
        ("subdomain", s(&spec.subdomain)),
    ] {
        if !value.is_empty() {
            for m in dns1123_label(value) {
                errs.push(FieldError::invalid(format!("{path}.{field}"), value, m));
            }
        }
    }
    errs
}

/// Container names and images joined by commas, as upstream's `layoutContainerCells`.
pub(crate) fn container_cells(containers: &[Container]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(&c.image)).collect();
    (names.join(","), images.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_default_to_latest_only_without_tag_or_digest() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:1.25").as_deref(), Some("1.25"));
        assert_eq!(image_tag("localhost:5000/nginx").as_deref(), Some("latest"));
        assert_eq!(
            image_tag("localhost:5000/nginx:latest").as_deref(),
            Some("latest")
        );
        assert_eq!(image_tag("nginx@sha256:abc").as_deref(), Some(""));
        assert_eq!(image_tag("Nginx"), None);
        assert_eq!(image_tag(""), None);
    }

    #[test]
    fn requests_above_limits_are_rejected_with_upstreams_wording() {
        let r: ResourceRequirements = serde_json::from_value(serde_json::json!({
            "limits": {"cpu": "500m"}, "requests": {"cpu": "1", "memory": "-1"}
        }))
        .unwrap();
        let mut errs = Vec::new();
        validate_resources(&r, "spec.containers[0].resources", &mut errs);
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                r#"spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m"#,
                r#"spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0"#,
            ]
        );
    }
}
