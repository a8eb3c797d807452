//! kubeboot: a Kubernetes API server and control-plane bootstrapper.
//!
//! The start-up flow follows upstream kube-apiserver: [`options`] (flags → complete → validate),
//! [`pki`] (bootstrap credentials), [`app`] (server chain → prepare → run).

pub mod admission;
pub mod aggregator;
pub mod apiextensions;
pub mod app;
pub mod audit;
pub mod auth;
pub mod controlplane;
pub mod endpoints;
pub mod filters;
pub mod flowcontrol;
pub mod golang;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod options;
pub mod pki;
pub mod protobuf;
pub mod proxy;
pub mod quota;
pub mod random;
pub mod registry;
pub mod server;
pub mod storage;
pub mod version;
pub mod webhook;
