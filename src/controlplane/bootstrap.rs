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
                    if let (Some(slot), Some(want)) = (next.pointer_mut(ptr), obj.pointer(ptr)) {
                        *slot = want.clone();
                    }
                }
                Ok(next)
            },
        )
        .await
        .map(|_| ())
}

impl KubernetesService {
    /// Creates or repairs the Service, the Endpoints and the EndpointSlice.
    pub async fn reconcile(
        &self,
        services: &Store,
        endpoints: &Store,
        slices: &Store,
    ) -> Result<(), String> {
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
            .map_err(|e| format!("the kubernetes Service: {e}"))?;
        if self.advertise.is_loopback() || self.advertise.is_unspecified() {
            // Endpoints may not hold loopback addresses (upstream validation); upstream's
            // reconciler fails the same way, so say it once and leave the endpoints out.
            tracing::warn!(advertise = %self.advertise, "not publishing endpoints of the kubernetes Service for a loopback advertise address");
            return Ok(());
        }
        let ports = json!([{"name": "https", "port": self.port, "protocol": "TCP"}]);
        let eps = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": self.advertise.to_string()}], "ports": ports}],
        });
        ensure(endpoints, eps, &["/subsets"])
            .await
            .map_err(|e| format!("the kubernetes Endpoints: {e}"))?;
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
            "addressType": if self.advertise.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{"addresses": [self.advertise.to_string()], "conditions": {"ready": true}}],
            "ports": ports,
        });
        ensure(slices, slice, &["/endpoints", "/ports"])
            .await
            .map_err(|e| format!("the kubernetes EndpointSlice: {e}"))
    }

    /// Removes this server from the endpoints so clients stop picking it while it drains.
    pub async fn withdraw(&self, endpoints: &Store) -> Result<(), String> {
        let result = endpoints
            .update_with(
                Some(NAMESPACE),
                NAME,
                UpdateTarget::Main,
                strict(),
                |current| {
                    let mut next = current.clone();
                    if let Some(o) = next.as_object_mut() {
                        o.remove("subsets");
                    }
                    Ok(next)
                },
            )
            .await;
        match result {
            Ok(_) | Err(RegistryError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}
