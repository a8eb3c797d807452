//! End-to-end tests: real kubeboot processes on loopback, real kubectl, real TLS.
//! One test binary so the suite links once.

mod access_reviews;
mod admission_plugins;
mod admission_policies;
mod admission_webhooks;
mod aggregator;
mod apply;
mod audit;
mod authorization_webhook;
mod chart;
mod client_ca;
mod common;
mod connections;
mod core_api;
mod crd_conversion;
mod crds;
mod encryption;
mod endpoint_leases;
#[cfg(feature = "etcd")]
mod etcd_cluster;
mod events;
mod flags;
mod foundation;
mod garbage_collection;
mod image;
mod impersonation;
mod kubelet_proxy;
mod large_objects;
mod lists;
mod metrics;
mod namespace_defaults;
mod node_authorization;
mod openapi;
mod pod_binding;
mod pod_eviction;
mod pod_security;
mod priority_and_fairness;
mod protobuf;
mod rbac;
mod resource_quotas;
mod reviews;
mod service_accounts;
mod shutdown;
mod slow_watchers;
mod socket_activation;
#[path = "../support/mod.rs"]
mod support;
mod tokens;
#[cfg(feature = "etcd")]
mod upstream_storage;
mod wire_fidelity;
