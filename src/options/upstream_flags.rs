//! kube-apiserver flags kubeboot accepts for compatibility but does not implement.
//!
//! kubeadm and kind pass these to kube-apiserver; accepting them lets their static-pod manifests
//! run kubeboot unchanged. Each one given is removed from argv before clap sees it and reported
//! with one warning line, so nothing is silently ignored; any other unknown flag stays an error.

/// Upstream flags that take no value (`--name` or `--name=true|false`).
pub(super) const BOOL_FLAGS: &[&str] = &[
    "aggregator-reject-forwarding-redirect",
    "allow-privileged",
    "contention-profiling",
    "disable-http2-serving",
    "emulation-forward-compatible",
    "enable-garbage-collector",
    "enable-logs-handler",
    "encryption-provider-config-automatic-reload",
    "log-json-split-stream",
    "log-text-split-stream",
    "permit-address-sharing",
    "permit-port-sharing",
    "runtime-config-emulation-forward-compatible",
    "watch-cache",
];

/// Upstream flags that take a value (`--name=v` or `--name v`).
pub(super) const VALUE_FLAGS: &[&str] = &[
    "admission-control",
    "allow-metric-labels",
    "allow-metric-labels-manifest",
    "apiserver-count",
    "audit-log-batch-buffer-size",
    "audit-log-batch-max-size",
    "audit-log-batch-max-wait",
    "audit-log-batch-throttle-burst",
    "audit-log-batch-throttle-enable",
    "audit-log-batch-throttle-qps",
    "audit-log-format",
    "audit-log-mode",
    "audit-log-truncate-enabled",
    "audit-log-truncate-max-batch-size",
    "audit-log-truncate-max-event-size",
    "audit-log-version",
    "audit-webhook-batch-throttle-burst",
    "audit-webhook-batch-throttle-enable",
    "audit-webhook-batch-throttle-qps",
    "audit-webhook-truncate-enabled",
    "audit-webhook-truncate-max-batch-size",
    "audit-webhook-truncate-max-event-size",
    "audit-webhook-version",
    "authentication-config",
    "authentication-token-webhook-cache-ttl",
    "authentication-token-webhook-config-file",
    "authentication-token-webhook-version",
    "authorization-config",
    "authorization-policy-file",
    "cloud-config",
    "cloud-provider",
    "cloud-provider-gce-l7lb-src-cidrs",
    "cloud-provider-gce-lb-src-cidrs",
    "cors-allowed-origins",
    "debug-socket-path",
    "default-not-ready-toleration-seconds",
    "default-unreachable-toleration-seconds",
    "delete-collection-workers",
    "disabled-metrics",
    "egress-selector-config-file",
    "emulated-version",
    "etcd-count-metric-poll-period",
    "etcd-db-metric-poll-interval",
    "etcd-healthcheck-timeout",
    "etcd-readycheck-timeout",
    "etcd-servers-overrides",
    "feature-gates",
    "kubelet-read-only-port",
    "kubelet-timeout",
    "kubernetes-service-node-port",
    "lease-reuse-duration-seconds",
    "livez-grace-period",
    "log-flush-frequency",
    "log-json-info-buffer-size",
    "log-text-info-buffer-size",
    "max-connection-bytes-per-sec",
    "oidc-ca-file",
    "oidc-client-id",
    "oidc-groups-claim",
    "oidc-groups-prefix",
    "oidc-issuer-url",
    "oidc-required-claim",
    "oidc-signing-algs",
    "oidc-username-claim",
    "oidc-username-prefix",
    "peer-advertise-ip",
    "peer-advertise-port",
    "peer-ca-file",
    "service-account-signing-endpoint",
    "show-hidden-metrics-for-version",
    "storage-initialization-timeout",
    "strict-transport-security-directives",
    "tls-sni-cert-key",
    "tracing-config-file",
    "vmodule",
    "watch-cache-sizes",
];

/// Removes known-but-unimplemented upstream flags from `args`, returning one warning per flag given.
pub fn strip_unimplemented(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::with_capacity(args.len());
    let mut warnings = Vec::new();
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            kept.push(arg);
            kept.extend(iter.by_ref());
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            kept.push(arg);
            continue;
        };
        let (name, has_value) = match body.split_once('=') {
            Some((name, _)) => (name, true),
            None => (body, false),
        };
        let is_bool = BOOL_FLAGS.contains(&name);
        if !is_bool && !VALUE_FLAGS.contains(&name) {
            kept.push(arg);
            continue;
        }
        warnings.push(format!(
            "flag --{name} is accepted for compatibility with kube-apiserver but not implemented by kubeboot; ignoring it"
        ));
        if !is_bool && !has_value {
            iter.next();
        }
    }
    (kept, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn strips_value_and_bool_flags_in_both_spellings() {
        let (kept, warnings) = strip_unimplemented(strings(&[
            "kube-apiserver",
            "--allow-privileged=true",
            "--feature-gates",
            "A=true",
            "--kubelet-timeout=5s",
            "--enable-logs-handler",
            "--secure-port=6443",
        ]));
        assert_eq!(kept, strings(&["kube-apiserver", "--secure-port=6443"]));
        assert_eq!(warnings.len(), 4);
        assert!(warnings[1].contains("--feature-gates"));
    }

    #[test]
    fn unknown_flags_are_left_for_clap_to_reject() {
        let (kept, warnings) = strip_unimplemented(strings(&["serve", "--no-such-flag=1"]));
        assert_eq!(kept, strings(&["serve", "--no-such-flag=1"]));
        assert!(warnings.is_empty());
    }
}
