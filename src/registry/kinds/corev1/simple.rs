//! Small core/v1 kinds: Endpoints, ServiceAccounts, LimitRanges and ResourceQuotas, with their
//! defaults (endpoint port protocol, limit range item defaults) and upstream's columns.

use super::s;
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell};
use k8s_openapi::api::core::v1::{Endpoints, LimitRange, ResourceQuota, ServiceAccount};
use serde_json::{Value, json};
use std::collections::BTreeMap;

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";

/// Rules of core/v1 Endpoints.
pub struct EndpointsRules;
/// Rules of core/v1 ServiceAccount.
pub struct ServiceAccountRules;
/// Rules of core/v1 LimitRange.
pub struct LimitRangeRules;
/// Rules of core/v1 ResourceQuota.
pub struct ResourceQuotaRules;

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Value {
    json!(meta.name.as_deref().unwrap_or(""))
}

/// Upstream's `formatEndpoints`: up to three `ip:port`, then `+ N more...`.
fn format_endpoints(ep: &Endpoints) -> String {
    let subsets = ep.subsets.clone().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut count = 0;
    for ss in &subsets {
        for port in ss.ports.iter().flatten() {
            for addr in ss.addresses.iter().flatten() {
                if list.len() < 3 {
                    let host = if addr.ip.contains(':') {
                        format!("[{}]", addr.ip)
                    } else {
                        addr.ip.clone()
                    };
                    list.push(format!("{host}:{}", port.port));
                }
                count += 1;
            }
        }
    }
    let joined = list.join(",");
    if count > 3 {
        format!("{joined} + {} more...", count - 3)
    } else {
        joined
    }
}

impl Rules<Endpoints> for EndpointsRules {
    const SHORT_NAMES: Names = &["ep"];

    fn default(&self, ep: &mut Endpoints) {
        for ss in ep.subsets.iter_mut().flatten() {
            for p in ss.ports.iter_mut().flatten() {
                if s(&p.protocol).is_empty() {
                    p.protocol = Some("TCP".into());
                }
            }
        }
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Endpoints", EP_SUBSETS),
            Column::AGE,
        ])
    }

    fn cells(&self, ep: &Endpoints, raw: &Value) -> Vec<Value> {
        vec![
            name(&ep.metadata),
            json!(format_endpoints(ep)),
            age_cell(raw),
        ]
    }
}

impl Rules<ServiceAccount> for ServiceAccountRules {
    const SHORT_NAMES: Names = &["sa"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Create {
        name: "token",
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
    }];

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Secrets", SA_SECRETS),
            Column::AGE,
        ])
    }

    fn cells(&self, sa: &ServiceAccount, raw: &Value) -> Vec<Value> {
        let n = sa.secrets.as_ref().map_or(0, Vec::len);
        vec![name(&sa.metadata), json!(n), age_cell(raw)]
    }
}

impl Rules<LimitRange> for LimitRangeRules {
    const SHORT_NAMES: Names = &["limits"];

    fn default(&self, lr: &mut LimitRange) {
        for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
            if item.type_ != "Container" {
                continue;
            }
            // As upstream: default limit from max, default request from default limit, then min.
            let max = item.max.clone().unwrap_or_default();
            let min = item.min.clone().unwrap_or_default();
            let default = item.default.get_or_insert_with(BTreeMap::new);
            for (k, v) in max {
                default.entry(k).or_insert(v);
            }
            let default = default.clone();
            let request = item.default_request.get_or_insert_with(BTreeMap::new);
            for (k, v) in default.into_iter().chain(min) {
                request.entry(k).or_insert(v);
            }
        }
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![Column::NAME, Column::CREATED_AT])
    }

    fn cells(&self, lr: &LimitRange, raw: &Value) -> Vec<Value> {
        let created = raw
            .pointer("/metadata/creationTimestamp")
            .cloned()
            .unwrap_or(Value::String(String::new()));
        vec![name(&lr.metadata), created]
    }
}

impl Rules<ResourceQuota> for ResourceQuotaRules {
    const SHORT_NAMES: Names = &["quota"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const TRACKS_GENERATION: bool = false;

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::AGE,
            Column::text(
                "Request",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            Column::text(
                "Limit",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
        ])
    }

    fn cells(&self, rq: &ResourceQuota, raw: &Value) -> Vec<Value> {
        let st = rq.status.clone().unwrap_or_default();
        let used = st.used.unwrap_or_default();
        let (mut requests, mut limits) = (Vec::new(), Vec::new());
        for (res, hard) in st.hard.iter().flatten() {
            let u = used.get(res).map(|q| q.0.as_str()).unwrap_or("0");
            let entry = format!("{res}: {u}/{}", hard.0);
            if res.split('.').count() > 1 && res.starts_with("limits.") {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
        vec![
            name(&rq.metadata),
            age_cell(raw),
            json!(requests.join(", ")),
            json!(limits.join(", ")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    #[test]
    fn endpoints_list_three_addresses_then_count_the_rest() {
        let s = Typed::new(
            super::super::tests::info("Endpoints", "endpoints"),
            EndpointsRules,
        );
        let addrs: Vec<Value> = (1..=5)
            .map(|i| json!({"ip": format!("10.0.0.{i}")}))
            .collect();
        let mut v = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": addrs, "ports": [{"port": 80}]}]});
        s.default(&mut v);
        assert_eq!(v["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            s.cells(&v)[1],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."
        );
        assert_eq!(s.cells(&json!({"metadata": {"name": "e"}}))[1], "<none>");
    }

    #[test]
    fn quotas_split_requests_and_limits_and_limit_ranges_default_from_max() {
        let q = Typed::new(
            super::super::tests::info("ResourceQuota", "resourcequotas"),
            ResourceQuotaRules,
        );
        let v = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
            "used": {"pods": "3"}}});
        let cells = q.cells(&v);
        assert_eq!(cells[2], "pods: 3/10, requests.cpu: 0/1");
        assert_eq!(cells[3], "limits.cpu: 0/2");
        let l = Typed::new(
            super::super::tests::info("LimitRange", "limitranges"),
            LimitRangeRules,
        );
        let mut v = json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "1Mi"}}]}});
        l.default(&mut v);
        assert_eq!(v["spec"]["limits"][0]["default"], json!({"cpu": "1"}));
        assert_eq!(
            v["spec"]["limits"][0]["defaultRequest"],
            json!({"cpu": "1", "memory": "1Mi"})
        );
        let sa = Typed::new(
            super::super::tests::info("ServiceAccount", "serviceaccounts"),
            ServiceAccountRules,
        );
        assert_eq!(sa.cells(&json!({"metadata": {"name": "default"}}))[1], 0);
    }
}
