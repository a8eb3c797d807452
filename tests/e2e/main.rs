//! End-to-end tests: real kubeboot processes on loopback, real kubectl, real TLS.
//! One test binary so the suite links once.

mod common;
mod foundation;
mod core_api;
mod shutdown;
