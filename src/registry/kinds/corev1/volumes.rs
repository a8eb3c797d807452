//! PersistentVolumes and PersistentVolumeClaims: upstream's defaults (phase Pending, reclaim
//! Retain, volume mode Filesystem), columns, and the legacy `name` field selector.

use super::s;
use crate::registry::strategy::{Names, Rules, Sub};
use crate::registry::table::{Column, age_cell};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use serde_json::{Value, json};

// Column descriptions: the docs of the fields behind the columns, which upstream's printers
// take from `SwaggerDoc()`.
const PV_CAPACITY: &str = "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity";
const PV_ACCESS_MODES: &str = "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes";
const PV_RECLAIM: &str = "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming";
const PV_PHASE: &str = "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase";
const PV_CLAIM: &str = "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding";
const PV_REASON: &str = "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.";
const PV_VOLUME_MODE: &str = "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.";
const PVC_PHASE: &str = "phase represents the current phase of PersistentVolumeClaim.";
const PVC_VOLUME_NAME: &str =
    "volumeName is the binding reference to the PersistentVolume backing this claim.";
const PVC_CAPACITY: &str = "capacity represents the actual resources of the underlying volume.";
const PVC_ACCESS_MODES: &str = "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1";
const PVC_VOLUME_MODE: &str = "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.";

/// Rules of core/v1 PersistentVolume.
pub struct PersistentVolumeRules;
/// Rules of core/v1 PersistentVolumeClaim.
pub struct PersistentVolumeClaimRules;

const STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Upstream's `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: Option<&Vec<String>>) -> String {
    let modes = modes.cloned().unwrap_or_default();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| modes.iter().any(|x| x == m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn storage_class(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec_class: Option<&String>,
) -> String {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(STORAGE_CLASS_ANNOTATION))
        .or(spec_class)
        .cloned()
        .unwrap_or_default()
}

fn unset(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "<unset>".into())
}

impl Rules<PersistentVolume> for PersistentVolumeRules {
    const SHORT_NAMES: Names = &["pv"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const TRACKS_GENERATION: bool = false;

    fn default(&self, pv: &mut PersistentVolume) {
        let spec = pv.spec.get_or_insert_with(Default::default);
        if s(&spec.persistent_volume_reclaim_policy).is_empty() {
            spec.persistent_volume_reclaim_policy = Some("Retain".into());
        }
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
        let status = pv.status.get_or_insert_with(Default::default);
        if s(&status.phase).is_empty() {
            status.phase = Some("Pending".into());
        }
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Capacity", PV_CAPACITY),
            Column::text("Access Modes", PV_ACCESS_MODES),
            Column::text("Reclaim Policy", PV_RECLAIM),
            Column::text("Status", PV_PHASE),
            Column::text("Claim", PV_CLAIM),
            Column::text("StorageClass", "StorageClass of the pv"),
            Column::text("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
            Column::text("Reason", PV_REASON),
            Column::AGE,
            Column::wide("VolumeMode", PV_VOLUME_MODE),
        ])
    }

    fn cells(&self, pv: &PersistentVolume, raw: &Value) -> Vec<Value> {
        let spec = pv.spec.clone().unwrap_or_default();
        let status = pv.status.clone().unwrap_or_default();
        let claim = spec
            .claim_ref
            .as_ref()
            .map(|c| format!("{}/{}", s(&c.namespace), s(&c.name)))
            .unwrap_or_default();
        let capacity = spec
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .map(|q| q.0.clone())
            .unwrap_or_else(|| "0".into());
        let phase = if pv.metadata.deletion_timestamp.is_some() {
            "Terminating"
        } else {
            s(&status.phase)
        };
        vec![
            json!(pv.metadata.name.as_deref().unwrap_or("")),
            json!(capacity),
            json!(access_modes(spec.access_modes.as_ref())),
            json!(s(&spec.persistent_volume_reclaim_policy)),
            json!(phase),
            json!(claim),
            json!(storage_class(
                &pv.metadata,
                spec.storage_class_name.as_ref()
            )),
            json!(unset(spec.volume_attributes_class_name.as_ref())),
            json!(s(&status.reason)),
            age_cell(raw),
            json!(unset(spec.volume_mode.as_ref())),
        ]
    }

    fn field(&self, pv: &PersistentVolume, field: &str) -> Option<String> {
        // Upstream keeps this legacy alias of metadata.name for compatibility.
        (field == "name").then(|| pv.metadata.name.clone().unwrap_or_default())
    }
}

impl Rules<PersistentVolumeClaim> for PersistentVolumeClaimRules {
    const SHORT_NAMES: Names = &["pvc"];
    const SUBRESOURCES: &'static [Sub] = &[Sub::Status];
    const TRACKS_GENERATION: bool = false;
    // kube-apiserver resets the status after defaulting, so a claim it wrote has no phase.
    const DEFAULTS_STORED: bool = true;

    fn default(&self, pvc: &mut PersistentVolumeClaim) {
        let spec = pvc.spec.get_or_insert_with(Default::default);
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
        let status = pvc.status.get_or_insert_with(Default::default);
        if s(&status.phase).is_empty() {
            status.phase = Some("Pending".into());
        }
    }

    fn columns(&self) -> Option<Vec<Column>> {
        Some(vec![
            Column::NAME,
            Column::text("Status", PVC_PHASE),
            Column::text("Volume", PVC_VOLUME_NAME),
            Column::text("Capacity", PVC_CAPACITY),
            Column::text("Access Modes", PVC_ACCESS_MODES),
            Column::text("StorageClass", "StorageClass of the pvc"),
            Column::text("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
            Column::AGE,
            Column::wide("VolumeMode", PVC_VOLUME_MODE),
        ])
    }

    fn cells(&self, pvc: &PersistentVolumeClaim, raw: &Value) -> Vec<Value> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let status = pvc.status.clone().unwrap_or_default();
        let phase = if pvc.metadata.deletion_timestamp.is_some() {
            "Terminating"
        } else {
            s(&status.phase)
        };
        let (capacity, modes) = if s(&spec.volume_name).is_empty() {
            (String::new(), String::new())
        } else {
            (
                status
                    .capacity
                    .as_ref()
                    .and_then(|c| c.get("storage"))
                    .map(|q| q.0.clone())
                    .unwrap_or_else(|| "0".into()),
                access_modes(status.access_modes.as_ref()),
            )
        };
        vec![
            json!(pvc.metadata.name.as_deref().unwrap_or("")),
            json!(phase),
            json!(s(&spec.volume_name)),
            json!(capacity),
            json!(modes),
            json!(storage_class(
                &pvc.metadata,
                spec.storage_class_name.as_ref()
            )),
            json!(unset(spec.volume_attributes_class_name.as_ref())),
            age_cell(raw),
            json!(unset(spec.volume_mode.as_ref())),
        ]
    }

    fn field(&self, pvc: &PersistentVolumeClaim, field: &str) -> Option<String> {
        (field == "name").then(|| pvc.metadata.name.clone().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategy::{Strategy, Typed};

    #[test]
    fn volumes_and_claims_get_defaults_and_show_upstreams_cells() {
        let pv = Typed::new(
            super::super::tests::info("PersistentVolume", "persistentvolumes"),
            PersistentVolumeRules,
        );
        let mut v = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "hostPath": {"path": "/x"},
            "claimRef": {"namespace": "d", "name": "c"}, "storageClassName": "fast"}});
        pv.default(&mut v);
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["status"]["phase"], "Pending");
        let cells = pv.cells(&v);
        assert_eq!(
            cells[1..9],
            [
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Pending"),
                json!("d/c"),
                json!("fast"),
                json!("<unset>"),
                json!("")
            ]
        );
        assert_eq!(cells[10], "Filesystem");
        let pvc = Typed::new(
            super::super::tests::info("PersistentVolumeClaim", "persistentvolumeclaims"),
            PersistentVolumeClaimRules,
        );
        let mut c = json!({"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        pvc.default(&mut c);
        assert_eq!(
            pvc.cells(&c)[1..5],
            [json!("Pending"), json!(""), json!(""), json!("")]
        );
        assert_eq!(pvc.field(&c, "name").as_deref(), Some("c"));
    }
}
