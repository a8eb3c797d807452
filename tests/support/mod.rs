//! Helpers shared by the test crates (`tests/e2e`, `tests/storage`) and the benches, each of
//! which includes this directory once as a module: `#[path = "…/support/mod.rs"] mod support;`.

// Every crate that includes these helpers uses a part of them.
#![allow(dead_code)]

pub mod audit;
pub mod backend;
pub mod bench;
pub mod etcd_cluster;
pub mod https;
pub mod kubeboot;
pub mod scrape;
pub mod socket;
pub mod users;
pub mod wait;
