//! Service cluster IP and node port allocation, as upstream's service REST storage does it.
//!
//! A cluster IP is held by an `IPAddress` object named after it (networking.k8s.io/v1, the
//! allocator upstream uses since 1.33), so creating that object is the atomic "allocate" and two
//! services can never get the same IP. Node ports are held by one storage key per port.

use super::errors::{FieldError, RegistryError};
use super::store::{
    DeleteParams, FieldValidation, ListParams, Result, Store, StoreHooks, WriteOptions,
};
use crate::storage::{ErrorCode, Storage};
use bytes::Bytes;
use ipnet::IpNet;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;

/// Allocates cluster IPs from the service ranges and node ports from the node port range.
pub struct ServiceAllocator {
    ranges: Vec<IpNet>,
    node_port_base: u16,
    node_port_size: u32,
    ip_addresses: Arc<Store>,
    storage: Arc<dyn Storage>,
    node_port_prefix: String,
}

fn random_u64() -> u64 {
    u64::from_le_bytes(crate::random::bytes())
}

fn spec_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn service_type(obj: &Value) -> &str {
    match spec_str(obj, "type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn wants_node_ports(obj: &Value) -> bool {
    matches!(service_type(obj), "NodePort" | "LoadBalancer")
}

/// The cluster IPs an object holds (not "None").
fn cluster_ips(obj: &Value) -> Vec<String> {
    let mut ips: Vec<String> = obj
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let primary = spec_str(obj, "clusterIP");
    if !primary.is_empty() && !ips.iter().any(|i| i == primary) {
        ips.insert(0, primary.to_string());
    }
    ips.retain(|i| !i.is_empty() && i != "None");
    ips
}

/// The node ports an object holds.
fn node_ports(obj: &Value) -> Vec<i64> {
    if !wants_node_ports(obj) {
        return Vec::new();
    }
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|n| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}

impl ServiceAllocator {
    /// An allocator over `ranges` (primary first) and node ports `base..base+size`.
    pub fn new(
        ranges: Vec<IpNet>,
        node_port_base: u16,
        node_port_size: u32,
        ip_addresses: Arc<Store>,
        storage: Arc<dyn Storage>,
        node_port_prefix: String,
    ) -> Self {
        Self {
            ranges,
            node_port_base,
            node_port_size,
            ip_addresses,
            storage,
            node_port_prefix,
        }
    }

    fn invalid(obj: &Value, errors: Vec<FieldError>) -> RegistryError {
        RegistryError::Invalid {
            group: String::new(),
            qualified_kind: "Service".into(),
            kind: "Service".into(),
            name: obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            errors,
        }
    }

    fn ip_address_object(ip: &IpAddr, service: &Value) -> Value {
        let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
            "metadata": {"name": ip.to_string(), "labels": {
                "ipaddress.kubernetes.io/ip-family": family,
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            }},
            "spec": {"parentRef": {"group": "", "resource": "services",
                "namespace": service.pointer("/metadata/namespace").cloned().unwrap_or(json!("")),
                "name": service.pointer("/metadata/name").cloned().unwrap_or(json!(""))}},
        })
    }

    /// Tries to hold `ip`; `Ok(false)` when another object holds it.
    async fn hold_ip(&self, ip: &IpAddr, service: &Value, dry_run: bool) -> Result<bool> {
        if dry_run {
            return Ok(matches!(
                self.ip_addresses.get(None, &ip.to_string()).await,
                Err(RegistryError::NotFound { .. })
            ));
        }
        let opts = WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Strict,
            ..Default::default()
        };
        match self
            .ip_addresses
            .create(None, Self::ip_address_object(ip, service), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(RegistryError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Picks a free address of `net` the way upstream does: dynamic allocations start in the
    /// upper band so the lower band stays free for addresses users ask for by name.
    async fn allocate_ip(&self, net: &IpNet, service: &Value, dry_run: bool) -> Result<IpAddr> {
        let host_bits = u32::from(net.max_prefix_len() - net.prefix_len()).min(20);
        let size: u64 = 1 << host_bits;
        // Network and (IPv4) broadcast addresses are never handed out.
        let (first, last) = (
            1u64,
            if net.addr().is_ipv4() {
                size - 2
            } else {
                size - 1
            },
        );
        let reserved = (size / 16).clamp(16, 256).min(last);
        let upper = (reserved + 1).min(last)..=last;
        let lower = first..=reserved.min(last);
        for band in [upper, lower] {
            let len = band.end() - band.start() + 1;
            if band.is_empty() || len == 0 {
                continue;
            }
            let start = random_u64() % len;
            for i in 0..len {
                let offset = band.start() + (start + i) % len;
                let Some(ip) = crate::net::indexed_ip(net, offset as u128) else {
                    continue;
                };
                if self.hold_ip(&ip, service, dry_run).await? {
                    return Ok(ip);
                }
            }
        }
        Err(Self::invalid(
            service,
            vec![FieldError::invalid(
                "spec.clusterIPs",
                "",
                format!("failed to allocate IP from range {net}: range is full"),
            )],
        ))
    }

    fn node_port_key(&self, port: i64) -> String {
        format!("{}{port}", self.node_port_prefix)
    }

    /// Tries to hold node `port`; `Ok(false)` when it is taken.
    async fn hold_node_port(&self, port: i64, service: &Value, dry_run: bool) -> Result<bool> {
        let key = self.node_port_key(port);
        if dry_run {
            return self
                .storage
                .get(&key)
                .await
                .map(|kv| kv.is_none())
                .map_err(|e| RegistryError::Internal(e.to_string()));
        }
        let owner = format!(
            "{}/{}",
            service
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(""),
            service
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        match self.storage.create(&key, Bytes::from(owner)).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == ErrorCode::AlreadyExists => Ok(false),
            Err(e) => Err(RegistryError::Internal(e.to_string())),
        }
    }

    /// Holds the cluster IPs and node ports of every stored Service, as upstream's repair
    /// controllers do when a server starts: Services another server wrote (kube-apiserver 1.32,
    /// whose allocators keep bitmaps kubeboot does not read) keep what they were given, and no
    /// new Service is handed the same. Returns how many were not held before.
    pub async fn repair(&self, services: &Store) -> Result<usize> {
        let page = services.list(None, &ListParams::default()).await?;
        let mut repaired = 0;
        for service in &page.items {
            for ip in cluster_ips(service) {
                if let Ok(ip) = ip.parse::<IpAddr>()
                    && self.ranges.iter().any(|net| net.contains(&ip))
                    && self.hold_ip(&ip, service, false).await?
                {
                    repaired += 1;
                }
            }
            for port in node_ports(service) {
                if self.in_node_port_range(port)
                    && self.hold_node_port(port, service, false).await?
                {
                    repaired += 1;
                }
            }
        }
        Ok(repaired)
    }

    fn in_node_port_range(&self, port: i64) -> bool {
        port >= self.node_port_base as i64
            && port < self.node_port_base as i64 + self.node_port_size as i64
    }

    async fn allocate_node_ports(
        &self,
        new: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<()> {
        if !wants_node_ports(new) {
            return Ok(());
        }
        let held: Vec<i64> = old.map(node_ports).unwrap_or_default();
        let old_ports: Vec<Value> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let snapshot = new.clone();
        let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        for (i, port) in ports.iter_mut().enumerate() {
            let mut requested = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            if requested == 0 {
                // An update that leaves nodePort out keeps the one the same port already holds.
                let same = old_ports.iter().find(|p| {
                    p.get("port") == port.get("port")
                        && p.get("protocol").or(Some(&json!("TCP")))
                            == port.get("protocol").or(Some(&json!("TCP")))
                });
                requested = same
                    .and_then(|p| p.get("nodePort"))
                    .and_then(Value::as_i64)
                    .filter(|n| held.contains(n))
                    .unwrap_or(0);
            }
            let field = format!("spec.ports[{i}].nodePort");
            let allocated = if requested > 0 {
                if held.contains(&requested) {
                    requested
                } else if !self.in_node_port_range(requested) {
                    return Err(Self::invalid(
                        &snapshot,
                        vec![FieldError::invalid(
                            field,
                            requested,
                            format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                self.node_port_base,
                                self.node_port_base as u32 + self.node_port_size - 1
                            ),
                        )],
                    ));
                } else if self.hold_node_port(requested, &snapshot, dry_run).await? {
                    requested
                } else {
                    return Err(Self::invalid(
                        &snapshot,
                        vec![FieldError::invalid(
                            field,
                            requested,
                            "provided port is already allocated",
                        )],
                    ));
                }
            } else {
                let start = random_u64() % self.node_port_size as u64;
                let mut found = None;
                for k in 0..self.node_port_size as u64 {
                    let candidate = self.node_port_base as i64
                        + ((start + k) % self.node_port_size as u64) as i64;
                    if self.hold_node_port(candidate, &snapshot, dry_run).await? {
                        found = Some(candidate);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    Self::invalid(
                        &snapshot,
                        vec![FieldError::invalid(field, 0, "range is full")],
                    )
                })?
            };
            if let Some(p) = port.as_object_mut() {
                p.insert("nodePort".into(), json!(allocated));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl StoreHooks for ServiceAllocator {
    async fn allocate(&self, new: &mut Value, old: Option<&Value>, dry_run: bool) -> Result<()> {
        if service_type(new) == "ExternalName" {
            return self.allocate_node_ports(new, old, dry_run).await;
        }
        let mut requested = spec_str(new, "clusterIP").to_string();
        if requested.is_empty()
            && let Some(old) = old
        {
            // An update that leaves clusterIP out keeps the old one (upstream's patchAllocatedValues).
            requested = spec_str(old, "clusterIP").to_string();
        }
        let held: Vec<String> = old.map(cluster_ips).unwrap_or_default();
        let ip = if requested == "None" {
            None
        } else if requested.is_empty() {
            let net = self
                .ranges
                .first()
                .expect("at least one service range")
                .to_owned();
            Some(self.allocate_ip(&net, new, dry_run).await?)
        } else if held.contains(&requested) {
            requested.parse().ok()
        } else {
            let field = "spec.clusterIPs[0]";
            let ip: IpAddr = requested.parse().map_err(|_| {
                Self::invalid(
                    new,
                    vec![FieldError::invalid(
                        field,
                        requested.as_str(),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )],
                )
            })?;
            let Some(net) = self.ranges.iter().find(|n| n.contains(&ip)) else {
                let ranges: Vec<String> = self.ranges.iter().map(|r| r.to_string()).collect();
                return Err(Self::invalid(
                    new,
                    vec![FieldError::invalid(
                        field,
                        requested.as_str(),
                        format!(
                            "provided IP is not in the valid range. The range of valid IPs is {}",
                            ranges.join(",")
                        ),
                    )],
                ));
            };
            let _ = net;
            if !self.hold_ip(&ip, new, dry_run).await? {
                return Err(Self::invalid(
                    new,
                    vec![FieldError::invalid(
                        field,
                        requested.as_str(),
                        "provided IP is already allocated",
                    )],
                ));
            }
            Some(ip)
        };
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            match ip {
                Some(ip) => {
                    spec.insert("clusterIP".into(), json!(ip.to_string()));
                    spec.insert("clusterIPs".into(), json!([ip.to_string()]));
                    spec.entry("ipFamilies")
                        .or_insert_with(|| json!([if ip.is_ipv4() { "IPv4" } else { "IPv6" }]));
                }
                None => {
                    spec.insert("clusterIP".into(), json!("None"));
                    spec.insert("clusterIPs".into(), json!(["None"]));
                    let family = if self.ranges.first().is_some_and(|r| r.addr().is_ipv4()) {
                        "IPv4"
                    } else {
                        "IPv6"
                    };
                    spec.entry("ipFamilies").or_insert_with(|| json!([family]));
                }
            }
            spec.entry("ipFamilyPolicy")
                .or_insert_with(|| json!("SingleStack"));
        }
        if let Err(e) = self.allocate_node_ports(new, old, dry_run).await {
            // Do not leak the IP this call took when the node ports fail.
            self.release(new, old).await;
            return Err(e);
        }
        Ok(())
    }

    async fn release(&self, obj: &Value, keep: Option<&Value>) {
        let keep_ips = keep.map(cluster_ips).unwrap_or_default();
        for ip in cluster_ips(obj)
            .into_iter()
            .filter(|ip| !keep_ips.contains(ip))
        {
            match self
                .ip_addresses
                .delete(None, &ip, &DeleteParams::default())
                .await
            {
                Ok(_) | Err(RegistryError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(%ip, error = %e, "releasing a service IP failed"),
            }
        }
        let keep_ports = keep.map(node_ports).unwrap_or_default();
        for port in node_ports(obj)
            .into_iter()
            .filter(|p| !keep_ports.contains(p))
        {
            match self.storage.delete(&self.node_port_key(port), None).await {
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => tracing::warn!(port, error = %e, "releasing a node port failed"),
            }
        }
    }
}
