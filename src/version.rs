//! Build and API version information, for `kubeboot version` and /version.

use k8s_openapi::apimachinery::pkg::version::Info;

/// kubeboot's own version.
pub const KUBEBOOT_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Kubernetes API version kubeboot serves.
pub const KUBERNETES_MAJOR: &str = "1";
/// The Kubernetes API minor version kubeboot serves.
pub const KUBERNETES_MINOR: &str = "33";
/// The git commit kubeboot was built from.
pub const GIT_COMMIT: &str = env!("KUBEBOOT_GIT_COMMIT");

/// The gitVersion clients see: the Kubernetes version with kubeboot's as build metadata, as k3s does,
/// so version-skew checks in kubectl and client-go compare against 1.33.
pub const GIT_VERSION: &str = concat!("v1.33.0+kubeboot.", env!("CARGO_PKG_VERSION"));

/// The text of `kubeboot version` and `kubeboot --version`.
pub const LONG_VERSION: &str = concat!(
    "kubeboot ",
    env!("CARGO_PKG_VERSION"),
    "\nKubernetes API: v1.33.0+kubeboot.",
    env!("CARGO_PKG_VERSION"),
    "\ngit commit: ",
    env!("KUBEBOOT_GIT_COMMIT")
);

/// The /version document.
pub fn info() -> Info {
    let platform = match env!("KUBEBOOT_TARGET")
        .split('-')
        .collect::<Vec<_>>()
        .as_slice()
    {
        [arch, _, os, ..] => format!("{os}/{}", if *arch == "x86_64" { "amd64" } else { arch }),
        _ => env!("KUBEBOOT_TARGET").to_string(),
    };
    Info {
        major: KUBERNETES_MAJOR.into(),
        minor: KUBERNETES_MINOR.into(),
        emulation_major: Some(KUBERNETES_MAJOR.into()),
        emulation_minor: Some(KUBERNETES_MINOR.into()),
        min_compatibility_major: Some(KUBERNETES_MAJOR.into()),
        min_compatibility_minor: Some("32".into()),
        git_version: GIT_VERSION.into(),
        git_commit: GIT_COMMIT.into(),
        git_tree_state: env!("KUBEBOOT_GIT_TREE_STATE").into(),
        build_date: String::new(),
        go_version: env!("KUBEBOOT_RUSTC_VERSION").into(),
        compiler: "rustc".into(),
        platform,
    }
}
