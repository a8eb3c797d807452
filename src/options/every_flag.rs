//! The flags tell the truth: every flag kubeboot accepts either changes what `complete()` makes
//! of the options, or is warned of when given, or (upstream flags kubeboot lacks) is taken out
//! of the command line with a warning. The table below names each flag's class; a new flag
//! fails the test until it is entered, so no flag can be accepted and silently ignored.

#[cfg(test)]
mod tests {
    use super::super::upstream_flags::{BOOL_FLAGS, VALUE_FLAGS, strip_unimplemented};
    use super::super::{CompletedOptions, Mode, ServerRunOptions};
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: ServerRunOptions,
    }

    /// What giving a flag does.
    enum Class {
        /// `sample` (after `with`, which the flag depends on) changes the completed options.
        Works {
            with: &'static [&'static str],
            sample: &'static [&'static str],
        },
        /// Giving `sample` prints a warning naming the flag.
        Warns(&'static [&'static str]),
        /// Read before the options are completed: sets the log level in `main`.
        Logging,
    }

    use Class::*;

    const fn works(sample: &'static [&'static str]) -> Class {
        Works { with: &[], sample }
    }

    /// The Webhook authorization mode, which the webhook's other flags configure.
    const WEBHOOK: &[&str] = &[
        "--authorization-mode=Webhook",
        "--authorization-webhook-config-file=/tmp/authz.kubeconfig",
    ];

    const FLAGS: &[(&str, Class)] = &[
        (
            "advertise-address",
            works(&["--advertise-address=10.0.0.9"]),
        ),
        ("bind-address", works(&["--bind-address=127.0.0.2"])),
        ("secure-port", works(&["--secure-port=7443"])),
        ("cert-dir", works(&["--cert-dir=/tmp/pki"])),
        ("tls-cert-file", works(&["--tls-cert-file=/tmp/a.crt"])),
        (
            "tls-private-key-file",
            works(&["--tls-private-key-file=/tmp/a.key"]),
        ),
        (
            "tls-min-version",
            works(&["--tls-min-version=VersionTLS13"]),
        ),
        (
            "tls-cipher-suites",
            works(&["--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]),
        ),
        ("cert-extra-sans", works(&["--cert-extra-sans=x.example"])),
        ("client-ca-file", works(&["--client-ca-file=/tmp/ca.crt"])),
        (
            "service-cluster-ip-range",
            works(&["--service-cluster-ip-range=10.100.0.0/16"]),
        ),
        (
            "service-node-port-range",
            works(&["--service-node-port-range=31000-32000"]),
        ),
        (
            "service-account-issuer",
            works(&["--service-account-issuer=https://issuer.example"]),
        ),
        (
            "service-account-key-file",
            works(&["--service-account-key-file=/tmp/sa.pub"]),
        ),
        (
            "service-account-signing-key-file",
            works(&["--service-account-signing-key-file=/tmp/sa.key"]),
        ),
        (
            "service-account-max-token-expiration",
            works(&["--service-account-max-token-expiration=48h"]),
        ),
        (
            "service-account-lookup",
            works(&["--service-account-lookup=false"]),
        ),
        (
            "service-account-extend-token-expiration",
            works(&["--service-account-extend-token-expiration=false"]),
        ),
        (
            "service-account-jwks-uri",
            works(&["--service-account-jwks-uri=https://issuer.example/jwks"]),
        ),
        ("api-audiences", works(&["--api-audiences=a,b"])),
        (
            "enable-bootstrap-token-auth",
            works(&["--enable-bootstrap-token-auth"]),
        ),
        (
            "requestheader-client-ca-file",
            works(&["--requestheader-client-ca-file=/tmp/rh.crt"]),
        ),
        (
            "requestheader-allowed-names",
            works(&["--requestheader-allowed-names=proxy"]),
        ),
        (
            "requestheader-username-headers",
            works(&["--requestheader-username-headers=X-User"]),
        ),
        (
            "requestheader-uid-headers",
            works(&["--requestheader-uid-headers=X-Uid"]),
        ),
        (
            "requestheader-group-headers",
            works(&["--requestheader-group-headers=X-Group"]),
        ),
        (
            "requestheader-extra-headers-prefix",
            works(&["--requestheader-extra-headers-prefix=X-Extra-"]),
        ),
        (
            "proxy-client-cert-file",
            works(&["--proxy-client-cert-file=/tmp/p.crt"]),
        ),
        (
            "proxy-client-key-file",
            works(&["--proxy-client-key-file=/tmp/p.key"]),
        ),
        (
            "enable-aggregator-routing",
            Warns(&["--enable-aggregator-routing=false"]),
        ),
        ("storage-backend", works(&["--storage-backend=etcd3"])),
        (
            "etcd-servers",
            works(&["--etcd-servers=https://127.0.0.1:2379"]),
        ),
        ("etcd-prefix", works(&["--etcd-prefix=/other"])),
        (
            "storage-media-type",
            Works {
                with: &["--etcd-servers=https://127.0.0.1:2379"],
                sample: &["--storage-media-type=application/json"],
            },
        ),
        (
            "default-watch-cache-size",
            works(&["--default-watch-cache-size=7"]),
        ),
        (
            "etcd-compaction-interval",
            works(&["--etcd-compaction-interval=1m"]),
        ),
        (
            "storage-compaction-keep",
            works(&["--storage-compaction-keep=3"]),
        ),
        (
            "etcd-cafile",
            Works {
                with: &["--etcd-servers=https://127.0.0.1:2379"],
                sample: &["--etcd-cafile=/tmp/etcd-ca.crt"],
            },
        ),
        (
            "etcd-certfile",
            Works {
                with: &["--etcd-servers=https://127.0.0.1:2379"],
                sample: &["--etcd-certfile=/tmp/etcd.crt"],
            },
        ),
        (
            "etcd-keyfile",
            Works {
                with: &["--etcd-servers=https://127.0.0.1:2379"],
                sample: &["--etcd-keyfile=/tmp/etcd.key"],
            },
        ),
        (
            "shutdown-delay-duration",
            works(&["--shutdown-delay-duration=3s"]),
        ),
        ("event-ttl", works(&["--event-ttl=5m"])),
        ("goaway-chance", works(&["--goaway-chance=0.01"])),
        (
            "http2-max-streams-per-connection",
            works(&["--http2-max-streams-per-connection=1000"]),
        ),
        (
            "enable-priority-and-fairness",
            works(&["--enable-priority-and-fairness=false"]),
        ),
        (
            "shutdown-send-retry-after",
            works(&["--shutdown-send-retry-after"]),
        ),
        (
            "shutdown-watch-termination-grace-period",
            works(&["--shutdown-watch-termination-grace-period=10s"]),
        ),
        (
            "max-requests-inflight",
            works(&["--max-requests-inflight=9"]),
        ),
        (
            "max-mutating-requests-inflight",
            works(&["--max-mutating-requests-inflight=9"]),
        ),
        ("request-timeout", works(&["--request-timeout=30s"])),
        ("min-request-timeout", works(&["--min-request-timeout=60"])),
        ("authorization-mode", works(&["--authorization-mode=RBAC"])),
        (
            "kubelet-client-certificate",
            works(&[
                "--kubelet-client-certificate=/tmp/k.crt",
                "--kubelet-client-key=/tmp/k.key",
            ]),
        ),
        (
            "kubelet-client-key",
            works(&[
                "--kubelet-client-certificate=/tmp/k.crt",
                "--kubelet-client-key=/tmp/k.key",
            ]),
        ),
        (
            "kubelet-certificate-authority",
            works(&["--kubelet-certificate-authority=/tmp/kubelet-ca.crt"]),
        ),
        (
            "kubelet-preferred-address-types",
            works(&["--kubelet-preferred-address-types=InternalIP,Hostname"]),
        ),
        ("kubelet-port", works(&["--kubelet-port=10251"])),
        (
            "endpoint-reconciler-type",
            works(&["--endpoint-reconciler-type=none"]),
        ),
        (
            "authorization-webhook-config-file",
            // The Webhook mode needs the file and the file needs the mode: only both complete.
            works(WEBHOOK),
        ),
        (
            "authorization-webhook-version",
            Works {
                with: WEBHOOK,
                sample: &["--authorization-webhook-version=v1"],
            },
        ),
        (
            "authorization-webhook-cache-authorized-ttl",
            Works {
                with: WEBHOOK,
                sample: &["--authorization-webhook-cache-authorized-ttl=1m"],
            },
        ),
        (
            "authorization-webhook-cache-unauthorized-ttl",
            Works {
                with: WEBHOOK,
                sample: &["--authorization-webhook-cache-unauthorized-ttl=1m"],
            },
        ),
        ("anonymous-auth", works(&["--anonymous-auth=false"])),
        (
            "token-auth-file",
            works(&["--token-auth-file=/tmp/tokens.csv"]),
        ),
        (
            "enable-admission-plugins",
            works(&["--enable-admission-plugins=AlwaysPullImages"]),
        ),
        (
            "disable-admission-plugins",
            works(&["--disable-admission-plugins=ResourceQuota"]),
        ),
        (
            "admission-control-config-file",
            works(&["--admission-control-config-file=/tmp/admission.yaml"]),
        ),
        (
            "runtime-config",
            works(&["--runtime-config=batch/v1=false"]),
        ),
        (
            "audit-log-path",
            works(&["--audit-log-path=/tmp/audit.log"]),
        ),
        (
            "audit-policy-file",
            works(&["--audit-policy-file=/tmp/policy.yaml"]),
        ),
        (
            "encryption-provider-config",
            works(&["--encryption-provider-config=/tmp/encryption.yaml"]),
        ),
        (
            "audit-log-maxsize",
            Works {
                with: &["--audit-log-path=/tmp/audit.log"],
                sample: &["--audit-log-maxsize=100"],
            },
        ),
        (
            "audit-log-maxbackup",
            Works {
                with: &["--audit-log-path=/tmp/audit.log"],
                sample: &["--audit-log-maxbackup=3"],
            },
        ),
        (
            "audit-log-maxage",
            Works {
                with: &["--audit-log-path=/tmp/audit.log"],
                sample: &["--audit-log-maxage=7"],
            },
        ),
        (
            "audit-log-compress",
            Works {
                with: &["--audit-log-path=/tmp/audit.log"],
                sample: &["--audit-log-compress"],
            },
        ),
        (
            "audit-webhook-config-file",
            works(&["--audit-webhook-config-file=/tmp/audit-webhook.kubeconfig"]),
        ),
        (
            "audit-webhook-mode",
            Works {
                with: &["--audit-webhook-config-file=/tmp/w.kubeconfig"],
                sample: &["--audit-webhook-mode=blocking-strict"],
            },
        ),
        (
            "audit-webhook-batch-buffer-size",
            Works {
                with: &["--audit-webhook-config-file=/tmp/w.kubeconfig"],
                sample: &["--audit-webhook-batch-buffer-size=5"],
            },
        ),
        (
            "audit-webhook-batch-max-size",
            Works {
                with: &["--audit-webhook-config-file=/tmp/w.kubeconfig"],
                sample: &["--audit-webhook-batch-max-size=5"],
            },
        ),
        (
            "audit-webhook-batch-max-wait",
            Works {
                with: &["--audit-webhook-config-file=/tmp/w.kubeconfig"],
                sample: &["--audit-webhook-batch-max-wait=1s"],
            },
        ),
        (
            "audit-webhook-initial-backoff",
            Works {
                with: &["--audit-webhook-config-file=/tmp/w.kubeconfig"],
                sample: &["--audit-webhook-initial-backoff=1s"],
            },
        ),
        ("profiling", works(&["--profiling=false"])),
        ("v", Logging),
        ("logging-format", Logging),
        ("data-dir", works(&["--data-dir=/tmp/data"])),
        (
            "builtin-controllers",
            works(&["--builtin-controllers=false"]),
        ),
        (
            "external-hostname",
            works(&["--external-hostname=api.example"]),
        ),
    ];

    fn complete(args: &[&str]) -> CompletedOptions {
        let argv = std::iter::once("kubeboot").chain(args.iter().copied());
        Cli::parse_from(argv).opts.complete(Mode::Serve)
    }

    /// The completed options as text, leaving out the raw flags they were completed from.
    fn completed(args: &[&str], flags: &ServerRunOptions) -> String {
        let mut c = complete(args);
        assert!(c.parse_errors.is_empty(), "{args:?}: {:?}", c.parse_errors);
        c.flags = flags.clone();
        format!("{c:?}")
    }

    #[test]
    fn every_flag_has_a_class() {
        let accepted: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        for flag in &accepted {
            assert!(
                FLAGS.iter().any(|(f, _)| f == flag),
                "--{flag} is accepted but not in the table: does it work, warn, or neither?"
            );
        }
        for (flag, _) in FLAGS {
            assert!(accepted.iter().any(|a| a == flag), "--{flag} is not a flag");
        }
    }

    #[test]
    fn working_flags_change_the_completed_options() {
        let flags = complete(&[]).flags;
        for (flag, class) in FLAGS {
            if let Works { with, sample } = class {
                let all: Vec<&str> = with.iter().chain(sample.iter()).copied().collect();
                assert_ne!(
                    completed(with, &flags),
                    completed(&all, &flags),
                    "--{flag}: {sample:?} changes nothing"
                );
            }
        }
    }

    #[test]
    fn warned_flags_warn_when_given() {
        for (flag, class) in FLAGS {
            if let Warns(sample) = class {
                assert!(complete(&[]).warnings().is_empty());
                let warnings = complete(sample).warnings();
                assert!(
                    warnings.iter().any(|w| w.contains(&format!("--{flag}"))),
                    "--{flag}: {warnings:?}"
                );
            }
        }
    }

    #[test]
    fn upstream_flags_kubeboot_lacks_are_taken_out_with_a_warning() {
        for flag in BOOL_FLAGS.iter().chain(VALUE_FLAGS) {
            let given = if BOOL_FLAGS.contains(flag) {
                format!("--{flag}")
            } else {
                format!("--{flag}=x")
            };
            let (kept, warnings) = strip_unimplemented(vec!["serve".into(), given]);
            assert_eq!(kept, ["serve"], "--{flag}");
            assert!(
                warnings.len() == 1 && warnings[0].contains(&format!("--{flag}")),
                "--{flag}: {warnings:?}"
            );
            assert!(
                !FLAGS.iter().any(|(f, _)| f == flag),
                "--{flag} is both implemented and stripped"
            );
        }
    }
}
