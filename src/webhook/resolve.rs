//! Where a Service's traffic goes, for webhooks referenced by `service`: an ExternalName's host,
//! else a ready endpoint of the port, else (for Services that are not ClusterIP) the cluster IP —
//! as the aggregator routes, since without kube-proxy a cluster IP leads nowhere.

use crate::registry::Store;
use crate::registry::selectors::LabelSelector;
use crate::registry::store::ListParams;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::sync::Arc;

/// Reads Services and EndpointSlices from their stores.
pub struct ServiceResolver {
    /// The Services.
    pub services: Arc<Store>,
    /// The EndpointSlices.
    pub endpoint_slices: Arc<Store>,
}

impl ServiceResolver {
    /// The address of Service `namespace/name`'s port `port`; the error in upstream's words.
    pub async fn resolve(
        &self,
        namespace: &str,
        name: &str,
        port: u16,
    ) -> Result<(String, u16), String> {
        let service: Service = self
            .services
            .get_as(Some(namespace), name)
            .await
            .map_err(|e| e.to_string())?;
        let spec = service.spec.unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok((spec.external_name.unwrap_or_default(), port));
        }
        let Some(service_port) = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.port == i32::from(port))
        else {
            return Err(format!("no service port {port} found for service {name:?}"));
        };
        let port_name = service_port.name.clone().unwrap_or_default();
        let params = ListParams {
            labels: LabelSelector::parse(&format!("kubernetes.io/service-name={name}"))?,
            ..ListParams::default()
        };
        let slices = self
            .endpoint_slices
            .list(Some(namespace), &params)
            .await
            .map_err(|e| e.to_string())?;
        let slices: Vec<EndpointSlice> = slices
            .items
            .into_iter()
            .filter_map(|s| serde_json::from_value(s).ok())
            .collect();
        if let Some(address) = ready_endpoint(&slices, &port_name) {
            return Ok(address);
        }
        match spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None") {
            Some(ip) if !matches!(spec.type_.as_deref(), None | Some("ClusterIP")) => {
                Ok((ip, port))
            }
            _ => Err(format!("no endpoints available for service {name:?}")),
        }
    }
}

/// The first ready address of `slices` with the port named `port_name` (as a Service's port
/// names its endpoints' port), as upstream's endpoint resolver picks one.
pub fn ready_endpoint(slices: &[EndpointSlice], port_name: &str) -> Option<(String, u16)> {
    slices.iter().find_map(|slice| {
        let endpoint_port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)?;
        let ready = slice
            .endpoints
            .iter()
            .find(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))?;
        let address = ready.addresses.first()?;
        Some((address.clone(), endpoint_port.clamp(1, 65535) as u16))
    })
}
