//! The Pod Security Standards' checks, as upstream's `k8s.io/pod-security-admission/policy`: each
//! looks at a pod's metadata and spec and, when it fails, gives upstream's reason and detail. The
//! lists below keep upstream's order (its checks register in file-name order), which is the
//! order of the reasons in a refusal.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeSet;

/// A failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// e.g. `privileged`.
    pub reason: String,
    /// e.g. `container "c" must not set securityContext.privileged=true`.
    pub detail: String,
}

/// One check: the minimum policy version (minor of 1.x) it applies from, and its function.
pub(super) struct Check {
    pub since: u32,
    pub run: fn(&ObjectMeta, &PodSpec) -> Option<Failure>,
}

const fn check(since: u32, run: fn(&ObjectMeta, &PodSpec) -> Option<Failure>) -> Check {
    Check { since, run }
}

/// Baseline checks run at both levels.
pub(super) const BASELINE: &[Check] = &[
    check(0, app_armor),
    check(0, host_namespaces),
    check(0, host_path_volumes),
    check(0, host_ports),
    check(0, privileged),
    check(0, proc_mount),
    check(0, se_linux_options),
    check(0, sysctls),
    check(0, windows_host_process),
];

/// Baseline checks that restricted ones replace: run at the baseline level only.
pub(super) const BASELINE_ONLY: &[Check] =
    &[check(0, capabilities_baseline), check(0, seccomp_baseline)];

/// Restricted checks.
pub(super) const RESTRICTED: &[Check] = &[
    check(8, allow_privilege_escalation),
    check(22, capabilities_restricted),
    check(0, restricted_volumes),
    check(0, run_as_non_root),
    check(23, run_as_user),
    check(19, seccomp_restricted),
];

fn fail(reason: impl Into<String>, detail: impl Into<String>) -> Option<Failure> {
    Some(Failure {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn join_quote(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!("\"{}\"", items.join("\", \""))
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_named(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Init containers, containers, then ephemeral containers, as upstream's visitor.
fn containers(spec: &PodSpec) -> Vec<Container> {
    let mut all: Vec<Container> = spec.init_containers.clone().unwrap_or_default();
    all.extend(spec.containers.iter().cloned());
    for e in spec.ephemeral_containers.iter().flatten() {
        let value = serde_json::to_value(e).unwrap_or_default();
        if let Ok(c) = serde_json::from_value::<Container>(value) {
            all.push(c);
        }
    }
    all
}

/// The names of the containers for which `bad` holds.
fn bad_containers(spec: &PodSpec, mut bad: impl FnMut(&Container) -> bool) -> Vec<String> {
    containers(spec)
        .iter()
        .filter(|c| bad(c))
        .map(|c| c.name.clone())
        .collect()
}

fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|o| o.name == "windows")
}

fn app_armor(meta: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let allowed = |v: &str| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
    let mut bad: Vec<String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/") && !allowed(v)
        })
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let unconfined = |p: &Option<k8s_openapi::api::core::v1::AppArmorProfile>| {
        p.as_ref().is_some_and(|p| p.type_ == "Unconfined")
    };
    if spec
        .security_context
        .as_ref()
        .is_some_and(|s| unconfined(&s.app_armor_profile))
    {
        bad.push("pod".into());
    }
    let containers = bad_containers(spec, |c| {
        c.security_context
            .as_ref()
            .is_some_and(|s| unconfined(&s.app_armor_profile))
    });
    if !containers.is_empty() {
        bad.push(containers_named(&containers));
    }
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    fail(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad.len(),
        ),
        bad.join(", "),
    )
}

fn host_namespaces(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let set: Vec<String> = [
        (spec.host_network, "hostNetwork"),
        (spec.host_pid, "hostPID"),
        (spec.host_ipc, "hostIPC"),
    ]
    .into_iter()
    .filter(|(on, _)| *on == Some(true))
    .map(|(_, name)| format!("{name}=true"))
    .collect();
    if set.is_empty() {
        return None;
    }
    fail("host namespaces", set.join(", "))
}

fn host_path_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let names: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.clone())
        .collect();
    if names.is_empty() {
        return None;
    }
    fail(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    )
}

fn host_ports(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let mut ports = BTreeSet::new();
    let names = bad_containers(spec, |c| {
        let used: Vec<i32> = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.host_port.filter(|h| *h != 0))
            .collect();
        ports.extend(used.iter().map(|p| p.to_string()));
        !used.is_empty()
    });
    if names.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    fail(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_named(&names),
            pluralize("uses", "use", names.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let names = bad_containers(spec, |c| {
        c.security_context.as_ref().and_then(|s| s.privileged) == Some(true)
    });
    if names.is_empty() {
        return None;
    }
    fail(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_named(&names)
        ),
    )
}

/// Whether user namespaces relax the policy (upstream relaxes runAsUser, runAsNonRoot and
/// procMount for pods with `hostUsers: false`).
fn user_namespaced(spec: &PodSpec) -> bool {
    spec.host_users == Some(false)
}

fn proc_mount(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    if user_namespaced(spec) {
        return None;
    }
    let mut types = BTreeSet::new();
    let names = bad_containers(spec, |c| {
        match c
            .security_context
            .as_ref()
            .and_then(|s| s.proc_mount.as_deref())
        {
            Some(t) if t != "Default" => {
                types.insert(t.to_string());
                true
            }
            _ => false,
        }
    });
    if names.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    fail(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_named(&names),
            join_quote(&types)
        ),
    )
}

fn se_linux_options(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    const ALLOWED: &[&str] = &[
        "",
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
    ];
    let mut bad_types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut valid = |o: &k8s_openapi::api::core::v1::SELinuxOptions| {
        let mut ok = true;
        let t = o.type_.clone().unwrap_or_default();
        if !ALLOWED.contains(&t.as_str()) {
            bad_types.insert(t);
            ok = false;
        }
        if o.user.as_deref().is_some_and(|u| !u.is_empty()) {
            user = true;
            ok = false;
        }
        if o.role.as_deref().is_some_and(|r| !r.is_empty()) {
            role = true;
            ok = false;
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(o) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.se_linux_options.as_ref())
        && !valid(o)
    {
        setters.push("pod".to_string());
    }
    let names: Vec<String> = containers(spec)
        .iter()
        .filter(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.se_linux_options.as_ref())
                .is_some_and(|o| !valid(o))
        })
        .map(|c| c.name.clone())
        .collect();
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    fail(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn sysctls(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    const ALLOWED: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    ];
    let bad: Vec<String> = spec
        .security_context
        .iter()
        .flat_map(|s| s.sysctls.iter().flatten())
        .filter(|s| !ALLOWED.contains(&s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let host_process = |w: &Option<k8s_openapi::api::core::v1::WindowsSecurityContextOptions>| {
        w.as_ref().and_then(|w| w.host_process) == Some(true)
    };
    let mut setters = Vec::new();
    if spec
        .security_context
        .as_ref()
        .is_some_and(|s| host_process(&s.windows_options))
    {
        setters.push("pod".to_string());
    }
    let names = bad_containers(spec, |c| {
        c.security_context
            .as_ref()
            .is_some_and(|s| host_process(&s.windows_options))
    });
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

/// Capabilities any container may add at the baseline level.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added(c: &Container) -> Vec<String> {
    c.security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default()
}

fn capabilities_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let mut caps = BTreeSet::new();
    let names = bad_containers(spec, |c| {
        let bad: Vec<String> = added(c)
            .into_iter()
            .filter(|a| !DEFAULT_CAPABILITIES.contains(&a.as_str()))
            .collect();
        caps.extend(bad.iter().cloned());
        !bad.is_empty()
    });
    if names.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    fail(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&names),
            join_quote(&caps)
        ),
    )
}

fn seccomp_type(p: &Option<k8s_openapi::api::core::v1::SeccompProfile>) -> Option<&str> {
    p.as_ref().map(|p| p.type_.as_str())
}

fn valid_seccomp(t: &str) -> bool {
    t == "Localhost" || t == "RuntimeDefault"
}

/// The seccomp annotations and fields that set a forbidden profile: `(setters, bad values)`.
fn explicit_bad_seccomp(spec: &PodSpec) -> (Vec<String>, BTreeSet<String>, bool) {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(t) = spec
        .security_context
        .as_ref()
        .and_then(|s| seccomp_type(&s.seccomp_profile))
    {
        if valid_seccomp(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
    }
    let names = bad_containers(spec, |c| {
        match c
            .security_context
            .as_ref()
            .and_then(|s| seccomp_type(&s.seccomp_profile))
        {
            Some(t) if !valid_seccomp(t) => {
                values.insert(t.to_string());
                true
            }
            _ => false,
        }
    });
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    (setters, values, pod_set)
}

fn seccomp_baseline(meta: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    const POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let valid_annotation =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let annotations = meta.annotations.clone().unwrap_or_default();
    let mut forbidden = BTreeSet::new();
    if let Some(v) = annotations.get(POD)
        && !valid_annotation(v)
    {
        forbidden.insert(format!("{POD}={v:?}"));
    }
    for c in containers(spec) {
        let key = format!("{CONTAINER}{}", c.name);
        if let Some(v) = annotations.get(&key)
            && !valid_annotation(v)
        {
            forbidden.insert(format!("{key}={v:?}"));
        }
    }
    if !forbidden.is_empty() {
        let list: Vec<String> = forbidden.into_iter().collect();
        return fail(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", list.len()),
                list.join(", ")
            ),
        );
    }
    let (setters, values, _) = explicit_bad_seccomp(spec);
    if setters.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    fail(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

fn allow_privilege_escalation(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    if is_windows(spec) {
        return None;
    }
    let names = bad_containers(spec, |c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.allow_privilege_escalation)
            != Some(false)
    });
    if names.is_empty() {
        return None;
    }
    fail(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_named(&names)
        ),
    )
}

fn capabilities_restricted(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    if is_windows(spec) {
        return None;
    }
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let Some(capabilities) = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
        else {
            missing_drop.push(c.name.clone());
            continue;
        };
        if !capabilities.drop.iter().flatten().any(|d| d == "ALL") {
            missing_drop.push(c.name.clone());
        }
        let bad: Vec<String> = capabilities
            .add
            .iter()
            .flatten()
            .filter(|a| *a != "NET_BIND_SERVICE")
            .cloned()
            .collect();
        if !bad.is_empty() {
            caps.extend(bad);
            adding.push(c.name.clone());
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<String> = caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    fail("unrestricted capabilities", details.join("; "))
}

fn restricted_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    let names: BTreeSet<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.config_map.is_none()
                && v.csi.is_none()
                && v.downward_api.is_none()
                && v.empty_dir.is_none()
                && v.ephemeral.is_none()
                && v.persistent_volume_claim.is_none()
                && v.projected.is_none()
                && v.secret.is_none()
        })
        .map(|v| v.name.clone())
        .collect();
    if names.is_empty() {
        return None;
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    fail(
        "restricted volume types",
        format!("volumes [{}] have restricted types", quoted.join(" ")),
    )
}

fn run_as_non_root(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    if user_namespaced(spec) || is_windows(spec) {
        return None;
    }
    let mut setters = Vec::new();
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root);
    if pod == Some(false) {
        setters.push("pod".to_string());
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        match c.security_context.as_ref().and_then(|s| s.run_as_non_root) {
            Some(false) => explicit.push(c.name.clone()),
            Some(true) => {}
            None if pod != Some(true) => implicit.push(c.name.clone()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_named(&explicit));
    }
    if !setters.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    fail(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_named(&implicit)
        ),
    )
}

fn run_as_user(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    if user_namespaced(spec) || is_windows(spec) {
        return None;
    }
    let mut setters = Vec::new();
    if spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
        setters.push("pod".to_string());
    }
    let names = bad_containers(spec, |c| {
        c.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0)
    });
    if !names.is_empty() {
        setters.push(containers_named(&names));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

fn seccomp_restricted(_: &ObjectMeta, spec: &PodSpec) -> Option<Failure> {
    if is_windows(spec) {
        return None;
    }
    let (setters, values, pod_set) = explicit_bad_seccomp(spec);
    if !setters.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        return fail(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if pod_set {
        return None;
    }
    let implicit = bad_containers(spec, |c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .is_none()
    });
    if implicit.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_named(&implicit)
        ),
    )
}
