//! discovery.k8s.io/v1 rules: EndpointSlice address type (required, immutable), port
//! defaults and upstream's printer.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::Rules;
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::immutable;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

/// EndpointSlice: addressType required and immutable; port defaults; upstream's printer.
pub struct EndpointSliceRules;

/// Upstream's `listWithMoreString`: three items, then "+ N more...", `<unset>` when empty.
fn list_with_more(items: Vec<String>) -> String {
    let count = items.len();
    let shown = items.into_iter().take(3).collect::<Vec<_>>().join(",");
    if count > 3 {
        format!("{shown} + {} more...", count - 3)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

impl Rules<EndpointSlice> for EndpointSliceRules {
    fn default(&self, es: &mut EndpointSlice) {
        for p in es.ports.iter_mut().flatten() {
            p.name.get_or_insert_with(String::new);
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    fn validate(&self, es: &EndpointSlice) -> ErrorList {
        let mut errs = Vec::new();
        match es.address_type.as_str() {
            "" => errs.push(FieldError::required("addressType", "")),
            "IPv4" | "IPv6" | "FQDN" => {}
            other => errs.push(FieldError::not_supported(
                "addressType",
                other,
                &["FQDN", "IPv4", "IPv6"],
            )),
        }
        for (i, ep) in es.endpoints.iter().enumerate() {
            if ep.addresses.is_empty() {
                errs.push(FieldError::required(
                    format!("endpoints[{i}].addresses"),
                    "must contain at least 1 address",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &EndpointSlice, old: &EndpointSlice) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(immutable(
            Some(&json!(new.address_type)),
            Some(&json!(old.address_type)),
            "addressType",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "AddressType",
                "addressType specifies the type of address carried by this EndpointSlice.",
            ),
            Column::text(
                "Ports",
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            Column::text(
                "Endpoints",
                "endpoints is a list of unique endpoints in this slice.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, es: &EndpointSlice, raw: &Value) -> Vec<Value> {
        let ports = es
            .ports
            .iter()
            .flatten()
            .map(|p| match (p.port, p.name.as_deref()) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            })
            .collect();
        let addresses = es
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        vec![
            name_cell(raw),
            es.address_type.clone().into(),
            list_with_more(ports).into(),
            list_with_more(addresses).into(),
            age_cell(raw),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    fn strategy<T, R>(rules: R) -> Typed<T, R> {
        super::super::test_support::strategy("discovery.k8s.io", "Thing", rules)
    }

    #[test]
    fn endpoint_slices_need_an_address_type_and_print_ports_and_addresses() {
        let s = strategy::<EndpointSlice, _>(EndpointSliceRules);
        let obj = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
        assert!(s.validate(&obj).is_empty());
        let cells = s.cells(&obj);
        assert_eq!(cells[2], "80");
        assert_eq!(cells[3], "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");
        let mut new = obj.clone();
        new["addressType"] = json!("IPv6");
        assert_eq!(s.validate_update(&new, &obj).len(), 1);
        let mut empty = obj;
        empty["addressType"] = json!("");
        assert_eq!(
            s.validate(&empty)[0].to_string(),
            "addressType: Required value"
        );
    }
}
