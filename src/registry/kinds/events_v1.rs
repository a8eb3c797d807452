//! events.k8s.io/v1 Events: another version of core/v1 Events, as upstream serves them. Both are
//! kept under the core resource's key prefix in the core/v1 form; this strategy converts on the
//! way in and out (upstream's `Convert_v1_Event_To_core_Event` and back), validates as upstream
//! does for requests of events.k8s.io/v1 (the legacy rules plus the strict ones) and shows and
//! selects through the core Event's columns and fields.

use super::corev1::validate_event;
use crate::registry::errors::{ErrorList, FieldError, RegistryError};
use crate::registry::strategy::{Decoded, Names, ResourceInfo, Rules, StorageConversion, Strategy};
use crate::registry::table::Column;
use crate::registry::validation::immutable;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Fields with another name in each version: (events.k8s.io/v1, core/v1).
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// Field selectors of events.k8s.io/v1 and the core field each selects (upstream's
/// `AddFieldLabelConversionsForEvent`).
const FIELD_LABELS: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
];

fn rename(m: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = m.remove(from) {
        m.insert(to.into(), v);
    }
}

/// Converts an events.k8s.io/v1 Event to core/v1 in place.
pub fn to_core(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    for (events, core) in RENAMED {
        rename(m, events, core);
    }
    m.insert("apiVersion".into(), "v1".into());
    // `regarding` is optional in events.k8s.io/v1, `involvedObject` required in core/v1.
    m.entry("involvedObject")
        .or_insert_with(|| Value::Object(Map::new()));
}

/// Converts a core/v1 Event to events.k8s.io/v1 in place.
pub fn from_core(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    for (events, core) in RENAMED {
        rename(m, core, events);
    }
    m.insert("apiVersion".into(), "events.k8s.io/v1".into());
}

fn core_form(obj: &Value) -> Value {
    let mut core = obj.clone();
    to_core(&mut core);
    core
}

fn typed_core(obj: &Value) -> Option<CoreEvent> {
    serde_json::from_value(core_form(obj)).ok()
}

fn series_errors(core: &Value) -> ErrorList {
    let mut errs = Vec::new();
    if let Some(series) = core.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if series.get("lastObservedTime").is_none_or(Value::is_null) {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errs
}

/// Whether a core field holds its Go zero value (upstream compares the internal structs).
fn unset(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    })
}

/// Upstream's `ValidateEventCreate` for events.k8s.io/v1 beyond the legacy rules.
fn strict_create(core: &Value) -> ErrorList {
    let mut errs = series_errors(core);
    if unset(core.get("eventTime")).is_none() {
        errs.push(FieldError::required("eventTime", ""));
    }
    let ty = core.get("type").and_then(Value::as_str).unwrap_or("");
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    for (field, path) in [
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
    ] {
        if unset(core.get(field)).is_some() {
            errs.push(FieldError::invalid(path, "", "needs to be unset"));
        }
    }
    let source = core.get("source");
    let set = |k: &str| {
        source
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if set("component") || set("host") {
        errs.push(FieldError::invalid("source", "", "needs to be unset"));
    }
    errs
}

/// Upstream's `ValidateEventUpdate` for events.k8s.io/v1 beyond the legacy rules: a changed
/// series must be valid and everything else is immutable (paths of the internal type).
fn strict_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = Vec::new();
    if unset(new.get("series")) != unset(old.get("series")) {
        errs.extend(series_errors(new));
    }
    for (field, path) in [
        ("involvedObject", "involvedObject"),
        ("reason", "reason"),
        ("message", "message"),
        ("source", "source"),
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ] {
        errs.extend(immutable(
            unset(new.get(field)),
            unset(old.get(field)),
            path,
        ));
    }
    errs
}

/// The facts of events.k8s.io/v1 Events; [`EventsV1`] does the rest, on the JSON form.
pub struct EventRules;

impl Rules<Event> for EventRules {
    const SHORT_NAMES: Names = &["ev"];
}

/// The events.k8s.io/v1 Event kind: this version's schema decodes, the core Event's rules print
/// and select the converted objects.
pub fn kind() -> super::Kind {
    super::Kind::new::<Event>(Arc::new(EventsV1::new(
        super::strategy(EventRules),
        super::strategy(super::corev1::EventRules),
    )))
}

/// The events.k8s.io/v1 Event strategy: `typed` (the k8s-openapi schema of this version) decodes
/// requests; `core` (the core/v1 Event strategy) prints and selects the converted object.
pub struct EventsV1 {
    typed: Arc<dyn Strategy>,
    core: Arc<dyn Strategy>,
}

impl EventsV1 {
    /// The strategy over this version's schema and the core Event's strategy.
    pub fn new(typed: Arc<dyn Strategy>, core: Arc<dyn Strategy>) -> Self {
        Self { typed, core }
    }
}

impl Strategy for EventsV1 {
    fn info(&self) -> &ResourceInfo {
        self.typed.info()
    }
    fn decode(&self, obj: Value) -> Result<Decoded, String> {
        self.typed.decode(obj)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        let Some(typed) = typed_core(obj) else {
            return Vec::new();
        };
        let mut errs = validate_event(&typed);
        errs.extend(strict_create(&core_form(obj)));
        errs
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let Some(typed) = typed_core(new) else {
            return Vec::new();
        };
        let mut errs = validate_event(&typed);
        errs.extend(strict_update(&core_form(new), &core_form(old)));
        errs
    }
    fn columns(&self) -> Vec<Column> {
        self.core.columns()
    }
    fn cells(&self, obj: &Value) -> Vec<Value> {
        self.core.cells(&core_form(obj))
    }
    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        let (_, core_field) = FIELD_LABELS.iter().find(|(label, _)| *label == field)?;
        self.core.field(&core_form(obj), core_field)
    }
    fn storage_conversion(&self) -> Option<&dyn StorageConversion> {
        Some(self)
    }
    fn storage_resource(&self) -> (&str, &str) {
        self.core.storage_resource()
    }
}

impl StorageConversion for EventsV1 {
    fn encode(&self, obj: &mut Value) -> Result<(), RegistryError> {
        to_core(obj);
        Ok(())
    }
    fn decode(&self, obj: &mut Value) -> Result<(), RegistryError> {
        from_core(obj);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::builtin;
    use serde_json::json;

    fn events_v1() -> Arc<dyn Strategy> {
        builtin()
            .into_iter()
            .find(|k| k.info().group == "events.k8s.io" && k.info().resource == "events")
            .unwrap()
    }

    fn full_v1() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "d"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2024-01-01T00:01:00.000000Z"},
            "reportingController": "kubelet", "reportingInstance": "node-1",
            "action": "Pulling", "reason": "Pulled", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "d", "fieldPath": "spec.containers{c}"},
            "related": {"kind": "Node", "name": "node-1"},
            "note": "pulled image",
            "deprecatedSource": {"component": "kubelet", "host": "node-1"},
            "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2024-01-01T00:01:00Z",
            "deprecatedCount": 3
        })
    }

    #[test]
    fn events_v1_and_core_v1_convert_field_by_field_and_round_trip() {
        let v1 = full_v1();
        let mut core = v1.clone();
        to_core(&mut core);
        assert_eq!(
            core,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "p.1", "namespace": "d"},
                "eventTime": "2024-01-01T00:00:00.000000Z",
                "series": {"count": 3, "lastObservedTime": "2024-01-01T00:01:00.000000Z"},
                "reportingComponent": "kubelet", "reportingInstance": "node-1",
                "action": "Pulling", "reason": "Pulled", "type": "Normal",
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "fieldPath": "spec.containers{c}"},
                "related": {"kind": "Node", "name": "node-1"},
                "message": "pulled image",
                "source": {"component": "kubelet", "host": "node-1"},
                "firstTimestamp": "2024-01-01T00:00:00Z",
                "lastTimestamp": "2024-01-01T00:01:00Z",
                "count": 3
            })
        );
        // Both forms are valid objects of their version.
        serde_json::from_value::<CoreEvent>(core.clone()).unwrap();
        let mut back = core.clone();
        from_core(&mut back);
        assert_eq!(back, v1);
        serde_json::from_value::<k8s_openapi::api::events::v1::Event>(back).unwrap();
        // A core Event written the legacy way reads as events.k8s.io/v1 and back unchanged.
        let legacy = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d"}, "reason": "Started",
            "message": "started", "source": {"component": "kubelet"}, "count": 1, "type": "Normal"});
        let mut v1 = legacy.clone();
        from_core(&mut v1);
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "started");
        assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
        assert_eq!(v1["deprecatedCount"], 1);
        assert!(v1.get("involvedObject").is_none() && v1.get("message").is_none());
        to_core(&mut v1);
        assert_eq!(v1, legacy);
        // `regarding` is optional in events.k8s.io/v1 but core/v1 needs an involvedObject.
        let mut bare = json!({"metadata": {"name": "e"}});
        to_core(&mut bare);
        assert_eq!(bare["involvedObject"], json!({}));
    }

    #[test]
    fn the_store_keeps_events_v1_in_the_core_form_under_the_core_prefix() {
        let s = events_v1();
        assert_eq!(s.storage_resource(), ("", "events"));
        assert_eq!(s.info().group, "events.k8s.io");
        let mut obj = full_v1();
        let conversion = s.storage_conversion().expect("events.k8s.io converts");
        conversion.encode(&mut obj).unwrap();
        assert_eq!(obj["apiVersion"], "v1");
        assert_eq!(obj["involvedObject"]["name"], "p");
        conversion.decode(&mut obj).unwrap();
        assert_eq!(obj, full_v1());
    }

    #[test]
    fn events_v1_validates_strictly_on_create_and_freezes_fields_on_update() {
        let s = events_v1();
        let msgs = |errs: ErrorList| errs.iter().map(ToString::to_string).collect::<Vec<_>>();
        // The deprecated fields must be unset on create through events.k8s.io/v1.
        let errs = msgs(s.validate(&full_v1()));
        assert!(errs.contains(&r#"source: Invalid value: "": needs to be unset"#.to_string()));
        assert!(errs.contains(&r#"count: Invalid value: "": needs to be unset"#.to_string()));
        let mut ok = full_v1();
        for k in [
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ] {
            ok.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(msgs(s.validate(&ok)), Vec::<String>::new());
        let bare = json!({"metadata": {"name": "e", "namespace": "default"}, "regarding": {}});
        let errs = msgs(s.validate(&bare));
        assert!(
            errs.contains(&"eventTime: Required value".to_string()),
            "{errs:?}"
        );
        assert!(errs.contains(&r#"type: Invalid value: "": has invalid value: "#.to_string()));
        let mut series = ok.clone();
        series["series"]["count"] = json!(1);
        assert_eq!(
            msgs(s.validate(&series)),
            [r#"series.count: Invalid value: "": should be at least 2"#]
        );
        // Updates: legacy rules, a changed series must be valid, the rest is immutable.
        let mut new = ok.clone();
        new["series"] = json!({"count": 4, "lastObservedTime": "2024-01-01T00:02:00.000000Z"});
        assert!(s.validate_update(&new, &ok).is_empty());
        new["note"] = json!("changed");
        new["reportingController"] = json!("other");
        assert_eq!(
            msgs(s.validate_update(&new, &ok)),
            [
                r#"message: Invalid value: "changed": field is immutable"#,
                r#"reportingController: Invalid value: "other": field is immutable"#
            ]
        );
    }

    #[test]
    fn events_v1_prints_and_selects_through_the_core_event() {
        let s = events_v1();
        let core = builtin()
            .into_iter()
            .find(|k| k.info().group.is_empty() && k.info().resource == "events")
            .unwrap();
        let v1 = full_v1();
        let mut as_core = v1.clone();
        to_core(&mut as_core);
        assert_eq!(s.columns().len(), core.columns().len());
        assert_eq!(s.cells(&v1), core.cells(&as_core));
        assert_eq!(s.field(&v1, "regarding.name").as_deref(), Some("p"));
        assert_eq!(
            s.field(&v1, "reportingController").as_deref(),
            Some("kubelet")
        );
        assert_eq!(s.field(&v1, "type").as_deref(), Some("Normal"));
        assert!(s.field(&v1, "involvedObject.name").is_none());
        assert!(s.field(&v1, "note").is_none());
    }
}
