//! `Attributes`: what admission knows about a request (upstream's `admission.Attributes`).

use crate::auth::UserInfo;
use crate::registry::ResourceInfo;
use serde_json::{Map, Value, json};

/// The operation admission sees, as upstream's `admission.Operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create, or an apply that creates.
    Create,
    /// An update, patch or apply of an existing object, or a write to a subresource.
    Update,
    /// A delete, or each delete of a deletecollection.
    Delete,
    /// A connection to a proxy-style subresource (exec, attach, portforward, proxy).
    Connect,
}

impl Operation {
    /// Upstream's name, as AdmissionReview carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// The options the request carried (upstream's CreateOptions, UpdateOptions, PatchOptions or
/// DeleteOptions), as far as admission may look at them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Options<'a> {
    /// A create, or an apply that creates.
    Create {
        /// Who writes, for managedFields.
        field_manager: &'a str,
    },
    /// An update (PUT).
    Update {
        /// Who writes, for managedFields.
        field_manager: &'a str,
    },
    /// A patch or an apply.
    Patch {
        /// Who writes, for managedFields.
        field_manager: &'a str,
        /// `?force=` of an apply.
        force: bool,
    },
    /// A delete.
    Delete {
        /// `propagationPolicy`.
        propagation_policy: Option<&'a str>,
        /// `gracePeriodSeconds`.
        grace_period_seconds: Option<i64>,
    },
    /// A connect (exec, attach, port-forward, proxy): its options are the object.
    Connect,
}

impl Options<'_> {
    /// The options object (meta.k8s.io/v1) AdmissionReview carries, with `dry_run` as `dryRun`.
    pub fn to_value(&self, dry_run: bool) -> Value {
        let (kind, mut options) = match self {
            Options::Connect => return Value::Null,
            Options::Create { field_manager } => ("CreateOptions", manager(field_manager)),
            Options::Update { field_manager } => ("UpdateOptions", manager(field_manager)),
            Options::Patch {
                field_manager,
                force,
            } => {
                let mut o = manager(field_manager);
                if *force {
                    o["force"] = json!(true);
                }
                ("PatchOptions", o)
            }
            Options::Delete {
                propagation_policy,
                grace_period_seconds,
            } => {
                let mut o = json!({});
                if let Some(p) = propagation_policy {
                    o["propagationPolicy"] = json!(p);
                }
                if let Some(g) = grace_period_seconds {
                    o["gracePeriodSeconds"] = json!(g);
                }
                ("DeleteOptions", o)
            }
        };
        options["kind"] = json!(kind);
        options["apiVersion"] = json!("meta.k8s.io/v1");
        if dry_run {
            options["dryRun"] = json!(["All"]);
        }
        options
    }
}

fn manager(field_manager: &str) -> Value {
    if field_manager.is_empty() {
        json!({})
    } else {
        json!({ "fieldManager": field_manager })
    }
}

/// One request as admission sees it. The object itself travels beside the attributes, so
/// that mutating plugins can change it.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    /// What the request does.
    pub operation: Operation,
    /// The resource written: group, version, kind, plural name, scope.
    pub resource: &'a ResourceInfo,
    /// The subresource written (`status`, `scale`…), empty for the main resource.
    pub subresource: &'a str,
    /// The request's namespace; `None` at the cluster scope.
    pub namespace: Option<&'a str>,
    /// The object's name; empty for a create with generateName and for deletecollection,
    /// as upstream.
    pub name: &'a str,
    /// The stored object an update or delete changes.
    pub old_object: Option<&'a Value>,
    /// Who asks.
    pub user: &'a UserInfo,
    /// Whether the request is a dry run (`?dryRun=All`).
    pub dry_run: bool,
    /// The request's options.
    pub options: Options<'a>,
    /// Where plugins leave warnings for the client.
    pub warnings: &'a Warnings,
    /// Where plugins leave annotations for the request's audit event.
    pub annotations: &'a crate::audit::Annotations,
}

/// Warnings admission gives the client as `Warning` headers (upstream's `warning.AddWarning`):
/// in the order given, each once.
#[derive(Debug, Default)]
pub struct Warnings(std::sync::Mutex<Vec<String>>);

impl Warnings {
    /// Adds `warning` unless it is empty or already given.
    pub fn add(&self, warning: impl Into<String>) {
        let warning = warning.into();
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !warning.is_empty() && !all.contains(&warning) {
            all.push(warning);
        }
    }

    /// The warnings given so far, leaving none.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Attributes<'_> {
    /// Whether the request writes the main resource (no subresource) `resource` of `group`.
    pub fn writes(&self, group: &str, resource: &str) -> bool {
        self.resource.group == group
            && self.resource.resource == resource
            && self.subresource.is_empty()
    }

    /// Upstream's `admission.NewForbidden`: the request's object is forbidden, for `message`.
    pub fn forbidden(&self, message: String) -> crate::registry::RegistryError {
        crate::registry::RegistryError::Forbidden {
            resource: crate::registry::errors::GroupResource {
                group: self.resource.group.to_string(),
                resource: self.resource.resource.to_string(),
            },
            name: self.name.to_string(),
            message,
            cause: None,
        }
    }

    /// The AdmissionRequest of the request with its `object` (absent for deletes): what
    /// webhooks are sent, and what policies and matchConditions see as `request`.
    pub fn request(&self, uid: &str, object: Option<&Value>) -> Value {
        let a = self;
        let info = a.resource;
        let (group, version, kind) = a.kind();
        let gvk = json!({"group": group, "version": version, "kind": kind});
        let gvr = json!({"group": info.group, "version": info.version, "resource": info.resource});
        let mut user = Map::new();
        user.insert("username".into(), json!(a.user.name));
        if !a.user.uid.is_empty() {
            user.insert("uid".into(), json!(a.user.uid));
        }
        if !a.user.groups.is_empty() {
            user.insert("groups".into(), json!(a.user.groups));
        }
        if !a.user.extra.is_empty() {
            user.insert("extra".into(), json!(a.user.extra));
        }
        let mut r = Map::new();
        r.insert("uid".into(), json!(uid));
        r.insert("kind".into(), gvk.clone());
        r.insert("resource".into(), gvr.clone());
        if !a.subresource.is_empty() {
            r.insert("subResource".into(), json!(a.subresource));
            r.insert("requestSubResource".into(), json!(a.subresource));
        }
        r.insert("requestKind".into(), gvk);
        r.insert("requestResource".into(), gvr);
        if !a.name.is_empty() {
            r.insert("name".into(), json!(a.name));
        }
        if let Some(ns) = a.namespace {
            r.insert("namespace".into(), json!(ns));
        }
        r.insert("operation".into(), json!(a.operation.as_str()));
        r.insert("userInfo".into(), Value::Object(user));
        r.insert("object".into(), object.cloned().unwrap_or(Value::Null));
        r.insert(
            "oldObject".into(),
            a.old_object.cloned().unwrap_or(Value::Null),
        );
        r.insert("dryRun".into(), json!(a.dry_run));
        r.insert("options".into(), a.options.to_value(false));
        Value::Object(r)
    }

    /// The group, version and kind of the object the request speaks: the subresource's
    /// (Scale for `scale`), else the resource's, as upstream's `GetKind`.
    pub fn kind(&self) -> (&str, &str, &str) {
        let info = self.resource;
        match info
            .subresources
            .iter()
            .find(|s| s.name == self.subresource)
        {
            Some(sub) => (&sub.group, &sub.version, &sub.kind),
            None => (&info.group, &info.version, &info.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_carry_upstreams_kinds_and_dry_run() {
        let create = Options::Create {
            field_manager: "kubectl-create",
        };
        assert_eq!(
            create.to_value(true),
            json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                "fieldManager": "kubectl-create", "dryRun": ["All"]})
        );
        let delete = Options::Delete {
            propagation_policy: Some("Foreground"),
            grace_period_seconds: None,
        };
        assert_eq!(
            delete.to_value(false),
            json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
                "propagationPolicy": "Foreground"})
        );
    }
}
