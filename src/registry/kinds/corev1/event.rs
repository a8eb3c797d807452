//! core/v1 Events: the columns `kubectl get events` shows (LAST SEEN, TYPE, REASON, OBJECT,
//! MESSAGE, then the wide ones) and upstream's event field selectors.

use super::{s, since};
use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules};
use crate::registry::table::{Column, human_duration};
use crate::registry::validation::{dns1123_subdomain, qualified_name};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde_json::{Value, json};

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const EV_LAST: &str = "The time at which the most recent occurrence of this event was recorded.";
const EV_TYPE: &str =
    "Type of this event (Normal, Warning), new types could be added in the future";
const EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
const EV_OBJECT: &str = "The object that this event is about.";
const EV_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers\\[2\\]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers\\[2\\]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const EV_SOURCE: &str =
    "The component reporting this event. Should be a short machine understandable string.";
const EV_MESSAGE: &str = "A human-readable description of the status of this operation.";
const EV_FIRST: &str =
    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
const EV_COUNT: &str = "The number of times this event has occurred.";

/// Rules of core/v1 Event.
pub struct EventRules;

fn micro_since(t: Option<&MicroTime>) -> String {
    match t {
        Some(t) => human_duration(super::now_secs() - t.0.as_second()),
        None => "<unknown>".into(),
    }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

/// Upstream's `legacyValidateEvent`, which every request applies on create and update (paths
/// are the internal type's, as upstream reports them: `reportingController`, `message`).
pub fn validate_event(ev: &Event) -> ErrorList {
    let mut errs = Vec::new();
    let ns = ev.metadata.namespace.as_deref().unwrap_or("");
    let involved_ns = s(&ev.involved_object.namespace);
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    let too_long = |field: &str, value: &str, max: usize, errs: &mut ErrorList| {
        if value.len() > max {
            errs.push(FieldError::invalid(
                field,
                "",
                format!("can have at most {max} characters"),
            ));
        }
    };
    if ev.event_time.is_none() {
        // Old-style events: the event lives in its object's namespace (or default).
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let controller = s(&ev.reporting_component);
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        for m in qualified_name(controller) {
            errs.push(FieldError::invalid("reportingController", controller, m));
        }
        let instance = s(&ev.reporting_instance);
        if instance.is_empty() {
            errs.push(FieldError::required("reportingInstance", ""));
        }
        too_long("reportingInstance", instance, 128, &mut errs);
        let action = s(&ev.action);
        if action.is_empty() {
            errs.push(FieldError::required("action", ""));
        }
        too_long("action", action, 128, &mut errs);
        let reason = s(&ev.reason);
        if reason.is_empty() {
            errs.push(FieldError::required("reason", ""));
        }
        too_long("reason", reason, 128, &mut errs);
        too_long("message", s(&ev.message), 1024, &mut errs);
    }
    for m in dns1123_subdomain(ns) {
        errs.push(FieldError::invalid("namespace", ns, m));
    }
    errs
}

impl Rules<Event> for EventRules {
    const SHORT_NAMES: Names = &["ev"];

    fn validate(&self, ev: &Event) -> ErrorList {
        validate_event(ev)
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::text("Last Seen", EV_LAST),
            Column::text("Type", EV_TYPE),
            Column::text("Reason", EV_REASON),
            Column::text("Object", EV_OBJECT),
            Column::wide("Subobject", EV_FIELD_PATH),
            Column::wide("Source", EV_SOURCE),
            Column::text("Message", EV_MESSAGE),
            Column::wide("First Seen", EV_FIRST),
            Column::wide("Count", EV_COUNT),
            Column {
                priority: 1,
                ..Column::NAME
            },
        ])
    }

    fn cells(&self, ev: &Event, _raw: &Value) -> Vec<Value> {
        let first = match &ev.first_timestamp {
            Some(t) => since(Some(t)),
            None => micro_since(ev.event_time.as_ref()),
        };
        let mut last = match &ev.last_timestamp {
            Some(t) => since(Some(t)),
            None => first.clone(),
        };
        let mut count = i64::from(ev.count.unwrap_or(0));
        if let Some(series) = &ev.series {
            last = micro_since(series.last_observed_time.as_ref());
            count = i64::from(series.count.unwrap_or(0));
        } else if count == 0 {
            // Singleton events of the new API carry no count.
            count = 1;
        }
        let obj = &ev.involved_object;
        let kind = s(&obj.kind).to_lowercase();
        let target = match s(&obj.name) {
            "" => kind,
            name => format!("{kind}/{name}"),
        };
        let source = ev.source.clone().unwrap_or_default();
        let component = first_non_empty(s(&source.component), s(&ev.reporting_component));
        let instance = first_non_empty(s(&source.host), s(&ev.reporting_instance));
        let source = if instance.is_empty() {
            component.to_string()
        } else {
            format!("{component}, {instance}")
        };
        vec![
            json!(last),
            json!(s(&ev.type_)),
            json!(s(&ev.reason)),
            json!(target),
            json!(s(&obj.field_path)),
            json!(source),
            json!(s(&ev.message).trim()),
            json!(first),
            json!(count),
            json!(ev.metadata.name.as_deref().unwrap_or("")),
        ]
    }

    fn field(&self, ev: &Event, field: &str) -> Option<String> {
        let o = &ev.involved_object;
        let source = ev.source.as_ref().map(|x| s(&x.component)).unwrap_or("");
        Some(
            match field {
                "involvedObject.kind" => s(&o.kind),
                "involvedObject.namespace" => s(&o.namespace),
                "involvedObject.name" => s(&o.name),
                "involvedObject.uid" => s(&o.uid),
                "involvedObject.apiVersion" => s(&o.api_version),
                "involvedObject.resourceVersion" => s(&o.resource_version),
                "involvedObject.fieldPath" => s(&o.field_path),
                "reason" => s(&ev.reason),
                "reportingComponent" => s(&ev.reporting_component),
                "source" => first_non_empty(source, s(&ev.reporting_component)),
                "type" => s(&ev.type_),
                _ => return None,
            }
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    #[test]
    fn events_must_live_in_their_objects_namespace() {
        let s = Typed::new(super::super::tests::info("Event", "events"), EventRules);
        let ok = json!({"metadata": {"name": "e", "namespace": "d"}, "involvedObject": {"kind": "Pod", "namespace": "d"}});
        assert!(s.validate(&ok).is_empty());
        let bad = json!({"metadata": {"name": "e", "namespace": "d"}, "involvedObject": {"kind": "Pod", "namespace": "x"}});
        assert_eq!(
            s.validate(&bad)[0].to_string(),
            r#"involvedObject.namespace: Invalid value: "x": does not match event.namespace"#
        );
        let new_style = json!({"metadata": {"name": "e", "namespace": "d"}, "eventTime": "2024-01-01T00:00:00.000000Z",
            "involvedObject": {"namespace": "d"}});
        let msgs: Vec<String> = s
            .validate(&new_style)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(msgs[0], "reportingController: Required value");
        assert!(msgs.contains(&"action: Required value".to_string()));
    }

    #[test]
    fn event_cells_name_the_object_and_source_and_fields_select_on_it() {
        let s = Typed::new(super::super::tests::info("Event", "events"), EventRules);
        let v = json!({"metadata": {"name": "p.1"}, "type": "Normal", "reason": "Scheduled",
            "message": " assigned \n", "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d"},
            "source": {"component": "scheduler"}});
        let cells = s.cells(&v);
        assert_eq!(cells[0], "<unknown>");
        assert_eq!(
            cells[1..],
            [
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/p"),
                json!(""),
                json!("scheduler"),
                json!("assigned"),
                json!("<unknown>"),
                json!(1),
                json!("p.1")
            ]
        );
        assert_eq!(s.columns().len(), cells.len());
        assert_eq!(s.field(&v, "involvedObject.name").as_deref(), Some("p"));
        assert_eq!(s.field(&v, "source").as_deref(), Some("scheduler"));
        let empty = json!({"metadata": {}, "involvedObject": {}});
        assert!(s.field(&empty, "involvedObject.kind").is_some());
        assert!(s.field(&empty, "bogus").is_none());
    }
}
