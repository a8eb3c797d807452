//! The bootstrap controller: the `kubernetes` Service in `default` and its endpoints pointing at
//! this server, as upstream's bootstrap controller and endpoint reconciler keep them.

use crate::registry::store::{FieldValidation, UpdateTarget, WriteOptions};
use crate::registry::{RegistryError, Store};
use serde_json::{Value, json};
use std::net::IpAddr;

/// Where clients inside the cluster reach this server.
#[derive(Debug, Clone)]
pub struct KubernetesService {
    /// The Service's cluster IP (first address of the service range).
    pub cluster_ip: IpAddr,
    /// This server's advertise address.
    pub advertise: IpAddr,
    /// This server's secure port.
    pub port: u16,
}

const NAMESPACE: &str = "default";
const NAME: &str = "kubernetes";

fn strict() -> WriteOptions<'static> {
    WriteOptions {
        dry_run: false,
        field_validation: FieldValidation::Strict,
        ..Default::default()
    }
}

/// Creates `obj` or, when it exists, replaces the fields `fields` (JSON pointers) that differ.
async fn ensure(store: &Store, obj: Value, fields: &[&str]) -> Result<(), RegistryError> {
    // Read first, as upstream's reconciler: a create of an existing Service would fail on its
    // already-allocated cluster IP before the store could answer AlreadyExists.
    let exists = match store.get(Some(NAMESPACE), NAME).await {
        Ok(_) => true,
        Err(RegistryError::NotFound { .. }) => false,
        Err(e) => return Err(e),
    };
    if !exists {
        match store.create(Some(NAMESPACE), obj.clone(), strict()).await {
            Ok(_) => return Ok(()),
            // Another API server created it meanwhile: repair it below.
            Err(RegistryError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    store
        .update_with(
            Some(NAMESPACE),
            NAME,
            UpdateTarget::Main,
            strict(),
            |current| {
                let mut next = current.clone();
                for ptr in fields {
                    let Some(want) = obj.pointer(ptr) else {
                        continue;
                    };
                    match next.pointer_mut(ptr) {
                        Some(slot) => *slot = want.clone(),
                        // Absent (a withdrawn server removed it): put it back.
                        None => {
                            let (parent, leaf) = ptr.rsplit_once('/').unwrap_or(("", ptr));
                            if let Some(o) = next.pointer_mut(parent).and_then(Value::as_object_mut)
                            {
                                o.insert(leaf.to_string(), want.clone());
                            }
                        }
                    }
                }
                Ok(next)
            },
        )
        .await
        .map(|_| ())
}

impl KubernetesService {
    /// Creates or repairs the Service.
    pub async fn ensure_service(&self, services: &Store) -> Result<(), String> {
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP", "clusterIP": self.cluster_ip.to_string(), "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}],
            },
        });
        ensure(services, service, &["/spec/ports"])
            .await
            .map_err(|e| format!("the kubernetes Service: {e}"))
    }

    /// Whether this server's address may be published (not loopback or unspecified).
    pub fn publishes(&self) -> bool {
        !(self.advertise.is_loopback() || self.advertise.is_unspecified())
    }

    /// Sets the Endpoints and EndpointSlice to `servers` (of this server's address family).
    pub async fn publish(
        &self,
        endpoints: &Store,
        slices: &Store,
        servers: &[IpAddr],
    ) -> Result<(), String> {
        let servers: Vec<String> = servers
            .iter()
            .filter(|ip| ip.is_ipv4() == self.advertise.is_ipv4())
            .map(IpAddr::to_string)
            .collect();
        let ports = json!([{"name": "https", "port": self.port, "protocol": "TCP"}]);
        let addresses: Vec<Value> = servers.iter().map(|ip| json!({"ip": ip})).collect();
        let subsets = if servers.is_empty() {
            json!([])
        } else {
            json!([{"addresses": addresses, "ports": ports}])
        };
        let eps = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": subsets,
        });
        ensure(endpoints, eps, &["/subsets"])
            .await
            .map_err(|e| format!("the kubernetes Endpoints: {e}"))?;
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
            "addressType": if self.advertise.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": servers.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>(),
            "ports": ports,
        });
        ensure(slices, slice, &["/endpoints", "/ports"])
            .await
            .map_err(|e| format!("the kubernetes EndpointSlice: {e}"))
    }
}
