//! The LimitRanger admission plugin, as upstream's: a new pod's containers get the default
//! requests and limits of the namespace's LimitRanges (noted in the `kubernetes.io/limit-ranger`
//! annotation), then pods and claims are checked against their minimums, maximums and
//! limit-to-request ratios, every violation named in upstream's words.

use super::{Attributes, Mutating, Operation, Result, Validating};
use crate::quota::Amount;
use crate::registry::Store;
use crate::registry::store::ListParams;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The plugin, reading LimitRanges from their store.
pub struct LimitRanger {
    ranges: Arc<Store>,
}

impl LimitRanger {
    /// Reads LimitRanges from `ranges`.
    pub fn new(ranges: Arc<Store>) -> Self {
        Self { ranges }
    }

    /// The `spec.limits` items of the namespace's LimitRanges of `ty`.
    async fn items(&self, namespace: &str, ty: &str) -> Result<Vec<Value>> {
        let ranges = self
            .ranges
            .list(Some(namespace), &ListParams::default())
            .await?;
        Ok(ranges
            .items
            .iter()
            .flat_map(|r| r["spec"]["limits"].as_array().cloned().unwrap_or_default())
            .filter(|l| l["type"] == ty)
            .collect())
    }
}

/// Which write the plugin looks at: a pod's creation, or a claim's creation or update.
fn subject(a: &Attributes<'_>) -> Option<&'static str> {
    if !a.resource.group.is_empty() || !a.subresource.is_empty() {
        return None;
    }
    match (&*a.resource.resource, a.operation) {
        ("pods", Operation::Create) => Some("pods"),
        ("persistentvolumeclaims", Operation::Create | Operation::Update) => {
            Some("persistentvolumeclaims")
        }
        _ => None,
    }
}

/// A quantity printed as upstream's `Quantity.String()` prints it.
fn shown(q: &str, resource: &str) -> String {
    Amount::parse(q).map_or_else(|| q.to_string(), |a| a.format(resource))
}

#[async_trait::async_trait]
impl Mutating for LimitRanger {
    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, a: &Attributes<'_>, object: Option<&mut Value>) -> Result {
        let (Some("pods"), Some(ns), Some(pod)) = (subject(a), a.namespace, object) else {
            return Ok(());
        };
        let items = self.items(ns, "Container").await?;
        if items.is_empty() {
            return Ok(());
        }
        let mut defaults = (Map::new(), Map::new());
        for item in &items {
            for (k, v) in item["defaultRequest"].as_object().into_iter().flatten() {
                defaults.0.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for (k, v) in item["default"].as_object().into_iter().flatten() {
                defaults.1.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut notes = Vec::new();
        for (field, what) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            for c in pod["spec"][field].as_array_mut().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or("").to_string();
                let resources = c
                    .as_object_mut()
                    .map(|c| c.entry("resources").or_insert_with(|| json!({})));
                let Some(resources) = resources else { continue };
                for (kind, defaults, noun) in [
                    ("requests", &defaults.0, "request"),
                    ("limits", &defaults.1, "limit"),
                ] {
                    let mut set: Vec<String> = Vec::new();
                    for (k, v) in defaults {
                        let own = resources
                            .as_object_mut()
                            .map(|r| r.entry(kind).or_insert_with(|| json!({})));
                        if let Some(own) = own.and_then(Value::as_object_mut)
                            && !own.contains_key(k)
                        {
                            own.insert(k.clone(), v.clone());
                            set.push(k.clone());
                        }
                    }
                    if !set.is_empty() {
                        set.sort();
                        notes.push(format!("{} {noun} for {what} {name}", set.join(", ")));
                    }
                }
            }
        }
        if !notes.is_empty() {
            if pod["metadata"]
                .get("annotations")
                .is_none_or(|v| !v.is_object())
            {
                pod["metadata"]["annotations"] = json!({});
            }
            pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] =
                json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
        }
        Ok(())
    }
}

/// The violations of one item's bounds by `requests` and `limits` of one `what` (Container,
/// Pod, PersistentVolumeClaim), in upstream's words and order (min, max, ratio per resource).
fn violations(item: &Value, what: &str, requests: &Value, limits: &Value, errs: &mut Vec<String>) {
    let get = |list: &Value, k: &str| list[k].as_str().map(str::to_string);
    let amount = |q: &Option<String>| q.as_deref().and_then(Amount::parse);
    let mut keys: Vec<String> = ["min", "max", "maxLimitRequestRatio"]
        .iter()
        .flat_map(|b| {
            item[*b]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
        })
        .collect();
    keys.sort();
    keys.dedup();
    for k in &keys {
        let (req, lim) = (get(requests, k), get(limits, k));
        if let Some(min) = item["min"][k].as_str() {
            let enforced = shown(min, k);
            match (&req, amount(&req), amount(&lim)) {
                (None, _, _) => errs.push(format!(
                    "minimum {k} usage per {what} is {enforced}.  No request is specified"
                )),
                (Some(r), Some(rv), _) if Amount::parse(min).is_some_and(|m| rv < m) => {
                    errs.push(format!(
                        "minimum {k} usage per {what} is {enforced}, but request is {}",
                        shown(r, k)
                    ))
                }
                (_, _, Some(lv)) if Amount::parse(min).is_some_and(|m| lv < m) => {
                    errs.push(format!(
                        "minimum {k} usage per {what} is {enforced}, but limit is {}",
                        shown(lim.as_deref().unwrap_or(""), k)
                    ))
                }
                _ => {}
            }
        }
        if let Some(max) = item["max"][k].as_str() {
            let enforced = shown(max, k);
            let over = |v: Option<Amount>| v.zip(Amount::parse(max)).is_some_and(|(v, m)| v > m);
            if what == "PersistentVolumeClaim" {
                if over(amount(&req)) {
                    errs.push(format!(
                        "maximum {k} usage per {what} is {enforced}, but request is {}",
                        shown(req.as_deref().unwrap_or(""), k)
                    ));
                }
            } else if lim.is_none() {
                errs.push(format!(
                    "maximum {k} usage per {what} is {enforced}.  No limit is specified"
                ));
            } else if over(amount(&lim)) {
                errs.push(format!(
                    "maximum {k} usage per {what} is {enforced}, but limit is {}",
                    shown(lim.as_deref().unwrap_or(""), k)
                ));
            } else if over(amount(&req)) {
                errs.push(format!(
                    "maximum {k} usage per {what} is {enforced}, but request is {}",
                    shown(req.as_deref().unwrap_or(""), k)
                ));
            }
        }
        if let Some(ratio) = item["maxLimitRequestRatio"][k].as_str() {
            let enforced = shown(ratio, k);
            match (amount(&req), amount(&lim)) {
                (None, _) | (Some(Amount(0)), _) => errs.push(format!(
                    "{k} max limit to request ratio per {what} is {enforced}, but no request is specified or request is 0"
                )),
                (_, None) | (_, Some(Amount(0))) => errs.push(format!(
                    "{k} max limit to request ratio per {what} is {enforced}, but no limit is specified or limit is 0"
                )),
                (Some(r), Some(l)) => {
                    let observed = l.0 as f64 / r.0 as f64;
                    let allowed = Amount::parse(ratio).map_or(0.0, |m| m.0 as f64 / 1000.0);
                    if observed > allowed {
                        errs.push(format!(
                            "{k} max limit to request ratio per {what} is {enforced}, but provided ratio is {observed:.6}"
                        ));
                    }
                }
            }
        }
    }
}

/// A container's (or a pod's summed) requests and limits.
fn sum(containers: &[Value], kind: &str) -> Value {
    let mut total: std::collections::BTreeMap<String, Amount> = Default::default();
    for c in containers {
        for (k, v) in c["resources"][kind].as_object().into_iter().flatten() {
            if let Some(a) = v.as_str().and_then(Amount::parse) {
                let t = total.entry(k.clone()).or_default();
                *t = *t + a;
            }
        }
    }
    Value::Object(
        total
            .into_iter()
            .map(|(k, v)| {
                let s = v.format(&k);
                (k, json!(s))
            })
            .collect(),
    )
}

#[async_trait::async_trait]
impl Validating for LimitRanger {
    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Update)
    }

    async fn validate(&self, a: &Attributes<'_>, object: Option<&Value>) -> Result {
        let (Some(subject), Some(ns), Some(obj)) = (subject(a), a.namespace, object) else {
            return Ok(());
        };
        let mut errs = Vec::new();
        if subject == "pods" {
            let containers: Vec<Value> = ["initContainers", "containers"]
                .iter()
                .flat_map(|f| obj["spec"][*f].as_array().cloned().unwrap_or_default())
                .collect();
            for item in self.items(ns, "Container").await? {
                for c in &containers {
                    let r = &c["resources"];
                    violations(&item, "Container", &r["requests"], &r["limits"], &mut errs);
                }
            }
            let main: Vec<Value> = obj["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for item in self.items(ns, "Pod").await? {
                violations(
                    &item,
                    "Pod",
                    &sum(&main, "requests"),
                    &sum(&main, "limits"),
                    &mut errs,
                );
            }
        } else {
            for item in self.items(ns, "PersistentVolumeClaim").await? {
                let r = &obj["spec"]["resources"];
                violations(
                    &item,
                    "PersistentVolumeClaim",
                    &r["requests"],
                    &r["limits"],
                    &mut errs,
                );
            }
        }
        match errs.len() {
            0 => Ok(()),
            1 => Err(a.forbidden(errs.remove(0))),
            _ => Err(a.forbidden(format!("[{}]", errs.join(", ")))),
        }
    }
}
