//! storage.k8s.io/v1 rules: StorageClass, CSIDriver, CSINode, VolumeAttachment and
//! CSIStorageCapacity defaults, the checks users meet most, and upstream's printer columns.

use crate::registry::errors::{ErrorList, FieldError};
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell, name_cell};
use crate::registry::validation::{immutable, qualified_name};
use k8s_openapi::api::storage::v1::{
    CSIDriver, CSINode, CSIStorageCapacity, StorageClass, VolumeAttachment,
};
use serde_json::{Value, json};

const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

fn boolean(name: &'static str, description: &'static str) -> Column {
    Column {
        type_: std::borrow::Cow::Borrowed("boolean"),
        ..Column::text(name, description)
    }
}

/// StorageClass: upstream's `SetDefaults_StorageClass`, `ValidateStorageClass(Update)`, printer.
pub struct StorageClassRules;

impl Rules<StorageClass> for StorageClassRules {
    const SHORT_NAMES: Names = &["sc"];

    fn default(&self, sc: &mut StorageClass) {
        sc.reclaim_policy.get_or_insert_with(|| "Delete".into());
        sc.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    }

    fn validate(&self, sc: &StorageClass) -> ErrorList {
        let mut errs = Vec::new();
        let p = sc.provisioner.as_str();
        if p.is_empty() {
            errs.push(FieldError::required("provisioner", p));
        } else if p.len() > 63 {
            errs.push(FieldError::too_long("provisioner", 63));
        } else {
            for msg in qualified_name(&p.to_lowercase()) {
                errs.push(FieldError::invalid("provisioner", p, msg));
            }
        }
        if let Some(r) = sc.reclaim_policy.as_deref()
            && !matches!(r, "Delete" | "Retain")
        {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                r,
                &["Delete", "Retain"],
            ));
        }
        if let Some(m) = sc.volume_binding_mode.as_deref()
            && !matches!(m, "Immediate" | "WaitForFirstConsumer")
        {
            errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m,
                &["Immediate", "WaitForFirstConsumer"],
            ));
        }
        errs
    }

    fn validate_update(&self, new: &StorageClass, old: &StorageClass) -> ErrorList {
        let mut errs = self.validate(new);
        if new.parameters != old.parameters {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if new.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if new.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errs.extend(immutable(
            Some(&json!(new.volume_binding_mode)),
            Some(&json!(old.volume_binding_mode)),
            "volumeBindingMode",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "Provisioner",
                "provisioner indicates the type of the provisioner.",
            ),
            Column::text(
                "ReclaimPolicy",
                "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
            ),
            Column::text(
                "VolumeBindingMode",
                "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
            ),
            Column::text(
                "AllowVolumeExpansion",
                "allowVolumeExpansion shows whether the storage class allow volume expand.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, sc: &StorageClass, raw: &Value) -> Vec<Value> {
        let annotations = sc.metadata.annotations.clone().unwrap_or_default();
        let is_default = [DEFAULT_CLASS, BETA_DEFAULT_CLASS]
            .iter()
            .any(|k| annotations.get(*k).map(String::as_str) == Some("true"));
        let mut name = sc.metadata.name.clone().unwrap_or_default();
        if is_default {
            name.push_str(" (default)");
        }
        vec![
            name.into(),
            sc.provisioner.clone().into(),
            sc.reclaim_policy
                .clone()
                .unwrap_or_else(|| "Delete".into())
                .into(),
            sc.volume_binding_mode
                .clone()
                .unwrap_or_else(|| "Immediate".into())
                .into(),
            json!(sc.allow_volume_expansion.unwrap_or(false)),
            age_cell(raw),
        ]
    }
}

/// CSIDriver: upstream's `SetDefaults_CSIDriver` and `printCSIDriver`.
pub struct CSIDriverRules;

impl Rules<CSIDriver> for CSIDriverRules {
    fn default(&self, d: &mut CSIDriver) {
        let s = &mut d.spec;
        s.attach_required.get_or_insert(true);
        s.pod_info_on_mount.get_or_insert(false);
        s.storage_capacity.get_or_insert(false);
        s.fs_group_policy
            .get_or_insert_with(|| "ReadWriteOnceWithFSType".into());
        s.requires_republish.get_or_insert(false);
        s.se_linux_mount.get_or_insert(false);
        if s.volume_lifecycle_modes.as_ref().is_none_or(Vec::is_empty) {
            s.volume_lifecycle_modes = Some(vec!["Persistent".into()]);
        }
    }

    fn validate_update(&self, new: &CSIDriver, old: &CSIDriver) -> ErrorList {
        let mut errs = Vec::new();
        errs.extend(immutable(
            Some(&json!(new.spec.attach_required)),
            Some(&json!(old.spec.attach_required)),
            "spec.attachRequired",
        ));
        errs.extend(immutable(
            Some(&json!(new.spec.volume_lifecycle_modes)),
            Some(&json!(old.spec.volume_lifecycle_modes)),
            "spec.volumeLifecycleModes",
        ));
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            boolean(
                "AttachRequired",
                "attachRequired indicates this CSI volume driver requires an attach operation.",
            ),
            boolean(
                "PodInfoOnMount",
                "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations.",
            ),
            boolean(
                "StorageCapacity",
                "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report.",
            ),
            Column::text(
                "TokenRequests",
                "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
            ),
            boolean(
                "RequiresRepublish",
                "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.",
            ),
            Column::text(
                "Modes",
                "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, d: &CSIDriver, raw: &Value) -> Vec<Value> {
        let s = &d.spec;
        let tokens = s.token_requests.as_ref().map_or_else(
            || "<unset>".to_string(),
            |t| {
                t.iter()
                    .map(|t| t.audience.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            },
        );
        let modes = s
            .volume_lifecycle_modes
            .clone()
            .unwrap_or_default()
            .join(",");
        vec![
            name_cell(raw),
            json!(s.attach_required.unwrap_or(true)),
            json!(s.pod_info_on_mount.unwrap_or(false)),
            json!(s.storage_capacity.unwrap_or(false)),
            tokens.into(),
            json!(s.requires_republish.unwrap_or(false)),
            (if modes.is_empty() {
                "<none>".into()
            } else {
                modes
            })
            .into(),
            age_cell(raw),
        ]
    }
}

/// CSINode: upstream's `printCSINode`.
pub struct CSINodeRules;

impl Rules<CSINode> for CSINodeRules {
    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::integer(
                "Drivers",
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, n: &CSINode, raw: &Value) -> Vec<Value> {
        vec![name_cell(raw), json!(n.spec.drivers.len()), age_cell(raw)]
    }
}

/// VolumeAttachment: attacher, node and exactly one source required; spec immutable; printer.
pub struct VolumeAttachmentRules;

impl Rules<VolumeAttachment> for VolumeAttachmentRules {
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];

    fn validate(&self, va: &VolumeAttachment) -> ErrorList {
        let mut errs = Vec::new();
        if va.spec.attacher.is_empty() {
            errs.push(FieldError::required("spec.attacher", ""));
        }
        if va.spec.node_name.is_empty() {
            errs.push(FieldError::required("spec.nodeName", ""));
        }
        let src = &va.spec.source;
        match (&src.persistent_volume_name, &src.inline_volume_spec) {
            (None, None) => errs.push(FieldError::required(
                "spec.source",
                "must specify exactly one of persistentVolumeName and inlineVolumeSpec",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                "spec.source",
                "must specify exactly one of persistentVolumeName and inlineVolumeSpec",
            )),
            _ => {}
        }
        errs
    }

    fn validate_update(&self, new: &VolumeAttachment, old: &VolumeAttachment) -> ErrorList {
        let mut errs = self.validate(new);
        if new.spec != old.spec {
            errs.push(FieldError::invalid(
                "spec",
                serde_json::to_value(&new.spec).unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column {
                format: std::borrow::Cow::Borrowed("name"),
                ..Column::text(
                    "Attacher",
                    "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().",
                )
            },
            Column::text(
                "PV",
                "persistentVolumeName represents the name of the persistent volume to attach.",
            ),
            Column::text(
                "Node",
                "nodeName represents the node that the volume should be attached to.",
            ),
            boolean(
                "Attached",
                "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher.",
            ),
            Column::AGE,
        ])
    }

    fn cells(&self, va: &VolumeAttachment, raw: &Value) -> Vec<Value> {
        vec![
            name_cell(raw),
            va.spec.attacher.clone().into(),
            va.spec
                .source
                .persistent_volume_name
                .clone()
                .unwrap_or_default()
                .into(),
            va.spec.node_name.clone().into(),
            json!(va.status.as_ref().is_some_and(|s| s.attached)),
            age_cell(raw),
        ]
    }
}

/// CSIStorageCapacity: storageClassName required; upstream's printer (no Age column).
pub struct CSIStorageCapacityRules;

impl Rules<CSIStorageCapacity> for CSIStorageCapacityRules {
    fn validate(&self, c: &CSIStorageCapacity) -> ErrorList {
        let mut errs = Vec::new();
        if c.storage_class_name.is_empty() {
            errs.push(FieldError::required("storageClassName", ""));
        }
        errs
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text(
                "StorageClassName",
                "storageClassName represents the name of the StorageClass that the reported capacity applies to.",
            ),
            Column::text(
                "Capacity",
                "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.",
            ),
        ])
    }

    fn cells(&self, c: &CSIStorageCapacity, raw: &Value) -> Vec<Value> {
        vec![
            name_cell(raw),
            c.storage_class_name.clone().into(),
            c.capacity
                .as_ref()
                .map_or_else(|| "<unset>".to_string(), |q| q.0.clone())
                .into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};
    use crate::registry::validation::NameRule;

    #[test]
    fn storage_classes_default_and_keep_their_provisioner() {
        let info = crate::registry::ResourceInfo {
            group: "storage.k8s.io".into(),
            version: "v1".into(),
            kind: "StorageClass".into(),
            resource: "storageclasses".into(),
            singular: "storageclass".into(),
            namespaced: false,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: std::borrow::Cow::Borrowed(&[]),
            subresources: Vec::new(),
            name_rule: NameRule::Dns1123Subdomain,
            scale: None,
            tracks_generation: false,
            delete_returns_object: false,
        };
        let s = Typed::<StorageClass, _>::new(info, StorageClassRules);
        let mut obj = s
            .decode(json!({
                "metadata": {"name": "standard", "annotations": {DEFAULT_CLASS: "true"}},
                "provisioner": "rancher.io/local-path"
            }))
            .unwrap()
            .object;
        s.default(&mut obj);
        assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
        let cells = s.cells(&obj);
        assert_eq!(cells[0], "standard (default)");
        assert_eq!(cells[2], "Delete");
        assert_eq!(cells[3], "Immediate");
        assert_eq!(cells[4], false);
        let mut new = obj.clone();
        new["provisioner"] = json!("other.io/x");
        let errs: Vec<String> = s
            .validate_update(&new, &obj)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["provisioner: Forbidden: updates to provisioner are forbidden."]
        );
        let mut missing = obj.clone();
        missing["provisioner"] = json!("");
        assert_eq!(
            s.validate(&missing)[0].to_string(),
            "provisioner: Required value"
        );
    }
}
