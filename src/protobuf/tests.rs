//! Tests of the protobuf codec: hand-built upstream bytes, round trips, zero handling, errors.

use super::*;
use serde_json::json;

fn round_trip(value: Value) {
    let bytes = encode(&value).unwrap_or_else(|e| panic!("encode {}: {e}", value["kind"]));
    assert!(bytes.starts_with(MAGIC));
    let decoded = decode(&bytes).unwrap_or_else(|e| panic!("decode {}: {e}", value["kind"]));
    assert_eq!(decoded, value, "round trip of {}", value["kind"]);
}

/// The bytes Go's `runtime/serializer/protobuf` writes for
/// `ConfigMap{ObjectMeta{Name: "foo", Namespace: "default"}, Data: {"a": "b"}}`, built by hand
/// from the field numbers of `generated.proto`: Go writes every non-pointer field, zero or not.
const UPSTREAM_CONFIG_MAP: &[u8] = &[
    b'k', b'8', b's', 0, // magic
    0x0a, 0x0f, // Unknown.typeMeta (1), 15 bytes
    0x0a, 0x02, b'v', b'1', // TypeMeta.apiVersion (1)
    0x12, 0x09, b'C', b'o', b'n', b'f', b'i', b'g', b'M', b'a', b'p', // TypeMeta.kind (2)
    0x12, 0x24, // Unknown.raw (2), 36 bytes: the ConfigMap message
    0x0a, 0x1a, // ConfigMap.metadata (1), 26 bytes
    0x0a, 0x03, b'f', b'o', b'o', // ObjectMeta.name (1)
    0x12, 0x00, // generateName (2) ""
    0x1a, 0x07, b'd', b'e', b'f', b'a', b'u', b'l', b't', // namespace (3)
    0x22, 0x00, // selfLink (4) ""
    0x2a, 0x00, // uid (5) ""
    0x32, 0x00, // resourceVersion (6) ""
    0x38, 0x00, // generation (7) 0
    0x42, 0x00, // creationTimestamp (8): zero Time, an empty message
    0x12, 0x06, // ConfigMap.data (2): one map entry, 6 bytes
    0x0a, 0x01, b'a', // key (1)
    0x12, 0x01, b'b', // value (2)
    0x1a, 0x00, // Unknown.contentEncoding (3) ""
    0x22, 0x00, // Unknown.contentType (4) ""
];

#[test]
fn config_map_bytes_as_upstream_writes_them_decode_to_the_json_upstream_serves() {
    let decoded = decode(UPSTREAM_CONFIG_MAP).unwrap();
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "foo", "namespace": "default", "creationTimestamp": null},
            "data": {"a": "b"}
        })
    );
    // Our encoding leaves out what is empty, and decodes to the same JSON.
    assert_eq!(decode(&encode(&decoded).unwrap()).unwrap(), decoded);
}

#[test]
fn encoding_writes_fields_in_number_order_with_sorted_map_keys_like_go() {
    let bytes = encode(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "foo"},
        "data": {"b": "2", "a": "1"}
    }))
    .unwrap();
    let expected: &[u8] = &[
        b'k', b'8', b's', 0, 0x0a, 0x0f, 0x0a, 0x02, b'v', b'1', 0x12, 0x09, b'C', b'o', b'n',
        b'f', b'i', b'g', b'M', b'a', b'p', 0x12, 0x17, 0x0a, 0x05, 0x0a, 0x03, b'f', b'o', b'o',
        0x12, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'1', 0x12, 0x06, 0x0a, 0x01, b'b', 0x12, 0x01,
        b'2', 0x1a, 0x00, 0x22, 0x00,
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn deployment_with_pod_template_quantities_intstr_and_probes_round_trips() {
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "5b4a2c1e-0000-4000-8000-000000000001",
            "resourceVersion": "42", "generation": 3, "creationTimestamp": "2024-01-02T03:04:05Z",
            "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "1", "empty": ""},
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}
            }]
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "args": ["-g", "daemon off;"],
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "prod"},
                            {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                            {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": false}}}
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1Gi"}
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 1,
                            "successThreshold": 1, "failureThreshold": 3
                        },
                        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
                        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "terminationGracePeriodSeconds": 0},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx", "readOnly": true}],
                        "imagePullPolicy": "IfNotPresent",
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 0, "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}}
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": "nginx", "defaultMode": 420,
                        "items": [{"key": "nginx.conf", "path": "nginx.conf"}]}}],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "automountServiceAccountToken": false,
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 300}],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}
                }
            }
        },
        "status": {
            "observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": "2024-01-02T03:04:05Z", "lastTransitionTime": "2024-01-02T03:04:05Z"}]
        }
    }));
}

#[test]
fn secret_with_binary_data_round_trips_as_base64() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tls", "namespace": "kube-system"},
        "type": "kubernetes.io/tls",
        "immutable": false,
        "data": {
            "tls.crt": BASE64.encode([0u8, 1, 2, 0xfe, 0xff, b'\n']),
            "tls.key": BASE64.encode(b"-----BEGIN PRIVATE KEY-----"),
            "empty": ""
        }
    }));
}

#[test]
fn pod_with_timestamps_and_statuses_round_trips() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0", "namespace": "default",
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "deletionTimestamp": "2024-02-03T04:05:06Z",
            "deletionGracePeriodSeconds": 0,
            "finalizers": ["example.com/keep"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                "uid": "5b4a2c1e-0000-4000-8000-000000000002", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
                "resources": {}, "stdin": true}],
            "nodeName": "node-1",
            "hostNetwork": true,
            "priority": 0,
            "securityContext": {"fsGroup": 2000, "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}]}
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}],
            "startTime": "2024-01-02T03:04:06Z",
            "qosClass": "BestEffort",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:09Z"}
            ],
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 0, "started": false,
                "image": "busybox:latest", "imageID": "docker.io/library/busybox@sha256:00",
                "containerID": "containerd://abc",
                "state": {"running": {"startedAt": "2024-01-02T03:04:08Z"}},
                "lastState": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": "2024-01-02T03:00:00Z", "finishedAt": "2024-01-02T03:04:00Z"}}
            }]
        }
    }));
}

#[test]
fn events_with_micro_time_keep_microseconds() {
    round_trip(json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.17a", "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.123456Z",
        "series": {"count": 2, "lastObservedTime": "2024-01-02T03:05:00.000001Z"},
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "action": "Pulling",
        "reason": "Pulling",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web-0", "fieldPath": "spec.containers{app}"},
        "note": "Pulling image",
        "type": "Normal"
    }));
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.17b", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
        "reason": "Started", "message": "Started container app",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:06Z",
        "count": 1, "type": "Normal", "eventTime": null,
        "reportingComponent": "kubelet", "reportingInstance": "node-1"
    }));
}

#[test]
fn micro_time_is_truncated_to_microseconds_and_time_to_seconds() {
    let value = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "creationTimestamp": "2024-01-02T03:04:05.999Z"},
        "spec": {"renewTime": "2024-01-02T03:04:05.123456789+02:00", "leaseTransitions": 0}
    });
    let decoded = decode(&encode(&value).unwrap()).unwrap();
    assert_eq!(
        decoded["metadata"]["creationTimestamp"],
        "2024-01-02T03:04:05Z"
    );
    assert_eq!(decoded["spec"]["renewTime"], "2024-01-02T01:04:05.123456Z");
    assert_eq!(decoded["spec"]["leaseTransitions"], 0);
}

#[test]
fn many_built_in_kinds_and_lists_round_trip() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"},
                          {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP", "appProtocol": "http"}]},
            "status": {"loadBalancer": {}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "default"},
            "automountServiceAccountToken": false, "secrets": [{"name": "default-token"}]}),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p"}}],
                "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "spec": {"podCIDR": "10.244.0.0/24", "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"}, "allocatable": {"cpu": "1900m"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1", "osImage": "Debian",
                    "containerRuntimeVersion": "containerd://1.7", "kubeletVersion": "v1.33.0", "kubeProxyVersion": "",
                    "operatingSystem": "linux", "architecture": "amd64"}}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data", "type": ""},
                "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard", "volumeMode": "Filesystem"},
            "status": {"phase": "Available"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""}}),
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc", "namespace": "default"},
            "spec": {"replicas": 0, "selector": {"app": "rc"}, "template": {"metadata": {"labels": {"app": "rc"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "default"},
            "spec": {"hard": {"pods": "10", "requests.cpu": "4"}}, "status": {"hard": {"pods": "10"}, "used": {"pods": "0"}}}),
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "default"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]}}),
        json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "pt", "namespace": "default"},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7", "continue": "abc", "remainingItemCount": 0},
            "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}, "binaryData": {"b": "AAE="}}, {"metadata": {"name": "b"}}]}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
            "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}],
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"k": "v"}}, "template": {"metadata": {"labels": {"k": "v"}},
                "spec": {"containers": [{"name": "c", "image": "i"}], "hostNetwork": true}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
            "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}}),
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "ds-1", "namespace": "kube-system"},
            "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
            "spec": {"backoffLimit": 0, "completions": 1, "parallelism": 1, "ttlSecondsAfterFinished": 0, "suspend": false,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}},
            "status": {"startTime": "2024-01-02T03:04:05Z", "succeeded": 1, "ready": 0}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 0, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}}}),
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 0}, "status": {"replicas": 3, "selector": "app=web"}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}},
            "status": {"currentReplicas": 1, "desiredReplicas": 1}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}]}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
            "spec": {"holderIdentity": "node-1_abc", "leaseDurationSeconds": 15, "acquireTime": "2024-01-02T03:04:05.000000Z",
                "renewTime": "2024-01-02T03:04:15.500000Z", "leaseTransitions": 0}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "default"},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": false, "serving": true},
                "nodeName": "node-1", "zone": "a", "targetRef": {"kind": "Pod", "name": "web-0"}}],
            "ports": [{"name": "", "port": 80, "protocol": "TCP"}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
                "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 0, "endPort": 0, "protocol": "TCP"}],
                "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb", "namespace": "default"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}}),
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-0", "namespace": "default"},
            "deleteOptions": {"gracePeriodSeconds": 0}}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": false, "parameters": {"type": "local"}}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "csi.example.com"},
            "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent"]}}),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "low"},
            "value": 0, "preemptionPolicy": "Never", "description": "low"}),
        json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc",
            "overhead": {"podFixed": {"memory": "120Mi"}}, "scheduling": {"nodeSelector": {"sandbox": "true"}}}),
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "csr"},
            "spec": {"request": BASE64.encode(b"-----BEGIN CERTIFICATE REQUEST-----"), "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"], "expirationSeconds": 600, "extra": {"scopes": ["a", "b"]}, "username": "alice"},
            "status": {"conditions": [{"type": "Approved", "status": "True", "lastUpdateTime": "2024-01-02T03:04:05Z"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
            "webhooks": [{"name": "v.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None", "timeoutSeconds": 5,
                "clientConfig": {"service": {"namespace": "default", "name": "wh", "path": "/validate", "port": 443},
                    "caBundle": BASE64.encode([1u8, 2, 3])},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "*"}],
                "matchConditions": [{"name": "not-system", "expression": "true"}]}]}),
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": "pods \"x\" not found", "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404}),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
            "preconditions": {"uid": "u"}, "dryRun": ["All"]}),
        json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": "9"}, "items": []}),
    ];
    for object in objects {
        // An empty list is not on the wire, so it decodes as absent.
        let mut expected = object.clone();
        if expected["items"] == json!([]) {
            expected.as_object_mut().unwrap().remove("items");
        }
        let decoded = decode(&encode(&object).unwrap()).unwrap();
        assert_eq!(decoded, expected, "round trip of {}", object["kind"]);
    }
}

#[test]
fn zero_values_of_non_pointer_fields_are_dropped_and_of_pointer_fields_kept() {
    let decoded = decode(
        &encode(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": 0},
            "spec": {"replicas": 0, "paused": false, "minReadySeconds": 0, "selector": {}, "template": {
                "spec": {"containers": [{"name": "c", "image": "", "ports": [{"containerPort": 0, "hostPort": 0}]}]}}}
        }))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 0, "selector": {}, "template": {
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0}]}]}}}
        })
    );
}

#[test]
fn watch_events_carry_their_object_as_an_embedded_protobuf_body() {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
    let event =
        json!({"apiVersion": "v1", "kind": "WatchEvent", "type": "ADDED", "object": object});
    let bytes = encode(&event).unwrap();
    assert!(
        bytes.windows(4).filter(|w| w == MAGIC).count() == 2,
        "the object is a nested protobuf body"
    );
    assert_eq!(decode(&bytes).unwrap(), event);
}

#[test]
fn bodies_without_the_magic_prefix_are_rejected() {
    let err = decode(b"{\"kind\":\"ConfigMap\"}").unwrap_err();
    assert!(matches!(err, ProtobufError::MissingMagic));
    assert!(
        err.to_string()
            .contains("does not appear to be a protobuf message")
    );
}

#[test]
fn truncated_bodies_are_rejected_as_unexpected_eof() {
    let err = decode(&UPSTREAM_CONFIG_MAP[..30]).unwrap_err();
    assert!(matches!(err, ProtobufError::UnexpectedEof), "{err}");
}

#[test]
fn unknown_kinds_are_rejected_with_the_kind_and_version_named() {
    let err = encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no kind \"Widget\" is registered for version \"example.com/v1\""
    );
}

#[test]
fn values_that_do_not_fit_the_schema_name_their_path() {
    let err = encode(
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.replicas: an integer is required, got \"three\""
    );
}

#[test]
fn unknown_fields_on_the_wire_are_skipped() {
    // ConfigMap field 99 (varint) does not exist; Go skips unknown fields too.
    let mut raw = vec![0x0a, 0x03, 0x0a, 0x01, b'x'];
    wire::put_varint_field(&mut raw, 99, 7);
    let mut type_meta = Vec::new();
    wire::put_bytes(&mut type_meta, 1, b"v1");
    wire::put_bytes(&mut type_meta, 2, b"ConfigMap");
    let mut body = MAGIC.to_vec();
    wire::put_bytes(&mut body, 1, &type_meta);
    wire::put_bytes(&mut body, 2, &raw);
    assert_eq!(
        decode(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    );
}

#[test]
fn nested_messages_of_any_length_get_their_varint_length_spliced_in_place() {
    // Values of 127, 128, 20 000 and 3 MB cross the one-, two-, three- and four-byte lengths.
    for size in [0, 100, 127, 128, 300, 16_383, 16_384, 20_000, 3_000_000] {
        round_trip(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "big", "labels": {"a": "b"}},
            "data": {"k": "x".repeat(size)}
        }));
    }
    // A map entry of 200 bytes: key 0x12 (field 2), length 0xc9 0x01 (201 = 2 + 199).
    let bytes =
        encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "y".repeat(194)}}))
            .unwrap();
    let entry = [0x12, 0xc8, 0x01, 0x0a, 0x01, b'k', 0x12, 0xc2, 0x01];
    assert!(bytes.windows(entry.len()).any(|w| w == entry), "{bytes:?}");
}

#[test]
fn watch_frames_are_length_prefixed_bare_watch_events_around_the_objects_body() {
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "resourceVersion": "7"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 1 (7)", "reason": "Expired", "code": 410});
    let bookmark = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"resourceVersion": "9",
        "annotations": {"k8s.io/initial-events-end": "true"}}});
    let mut stream = Vec::new();
    encode_watch_frame(&mut stream, "ADDED", &object).unwrap();
    let first_len = stream.len();
    encode_watch_frame(&mut stream, "BOOKMARK", &bookmark).unwrap();
    encode_watch_frame(&mut stream, "ERROR", &status).unwrap();

    // Frame 1 byte by byte: length, WatchEvent.type (1), WatchEvent.object (2) holding
    // RawExtension.raw (1) holding the object's own k8s\0-prefixed body.
    let body = encode(&object).unwrap();
    let mut expected = vec![0x0a, 5];
    expected.extend_from_slice(b"ADDED");
    expected.extend_from_slice(&[0x12, body.len() as u8 + 2, 0x0a, body.len() as u8]);
    expected.extend_from_slice(&body);
    assert!(body.len() < 120);
    assert_eq!(&stream[..4], &(expected.len() as u32).to_be_bytes());
    assert_eq!(&stream[4..first_len], &expected[..]);

    let frames = split_watch_frames(&stream).unwrap();
    let events: Vec<(String, Value)> = frames
        .iter()
        .map(|f| decode_watch_event(f).unwrap())
        .collect();
    assert_eq!(
        events,
        vec![
            ("ADDED".to_string(), object),
            ("BOOKMARK".to_string(), bookmark),
            ("ERROR".to_string(), status)
        ]
    );
    assert!(matches!(
        split_watch_frames(&stream[..stream.len() - 1]),
        Err(ProtobufError::UnexpectedEof)
    ));
}

#[test]
fn custom_resource_definitions_round_trip_with_their_schemas() {
    round_trip(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "creationTimestamp": null},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": false, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": false,
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "x-kubernetes-validations": [{"rule": "self.size >= 0", "message": "size"}],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0, "maximum": 10.5, "default": 3},
                                "mode": {"type": "string", "enum": ["a", "b"]},
                                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "closed": {"type": "object", "additionalProperties": false},
                                "any": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                "deps": {"type": "object", "dependencies": {"a": ["b"], "c": {"required": ["d"]}}}
                            }
                        }
                    }
                }}
            }]
        },
        "status": {"storedVersions": ["v1"], "acceptedNames": {"plural": "widgets", "kind": "Widget"}}
    }));
}
