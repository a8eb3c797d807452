//! kubeboot: a Kubernetes API server and control-plane bootstrapper.

pub mod storage;
