//! The proxy table: which group/versions extension servers serve, where they are, and how to
//! reach them. The registration controller fills it from the APIService informer; the
//! availability controller resolves addresses and marks targets available.

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One remote APIService.
#[derive(Debug)]
pub struct Target {
    /// APIService name, e.g. `v1beta1.metrics.k8s.io`.
    pub name: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// The Service port (spec.service.port, default 443).
    pub port: u16,
    /// TLS settings: the CA bundle (PEM) or skip verification.
    pub ca_bundle: Option<Vec<u8>>,
    /// spec.insecureSkipTLSVerify.
    pub insecure: bool,
    /// spec.groupPriorityMinimum.
    pub group_priority: i32,
    /// spec.versionPriority.
    pub version_priority: i32,
    /// Where the availability controller last found the service, and whether it answered.
    pub state: RwLock<TargetState>,
}

/// What the availability controller last saw.
#[derive(Debug, Default, Clone)]
pub struct TargetState {
    /// host:port to connect to.
    pub address: Option<(String, u16)>,
    /// Whether the last check passed.
    pub available: bool,
}

impl Target {
    /// The target of an APIService with `spec.service`; `None` for local ones.
    pub fn from_apiservice(a: &APIService) -> Option<Self> {
        let spec = a.spec.as_ref()?;
        let svc = spec.service.as_ref()?;
        Some(Self {
            name: a.metadata.name.clone().unwrap_or_default(),
            namespace: svc.namespace.clone().unwrap_or_default(),
            service: svc.name.clone().unwrap_or_default(),
            port: svc.port.unwrap_or(443).clamp(1, 65535) as u16,
            ca_bundle: spec.ca_bundle.as_ref().map(|b| b.0.clone()),
            insecure: spec.insecure_skip_tls_verify.unwrap_or(false),
            group_priority: spec.group_priority_minimum,
            version_priority: spec.version_priority,
            state: RwLock::default(),
        })
    }

    /// The TLS server name upstream verifies: `<service>.<namespace>.svc`.
    pub fn server_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }

    /// Whether `other` points at the same service with the same TLS settings.
    fn same_as(&self, other: &Target) -> bool {
        self.namespace == other.namespace
            && self.service == other.service
            && self.port == other.port
            && self.ca_bundle == other.ca_bundle
            && self.insecure == other.insecure
            && self.group_priority == other.group_priority
            && self.version_priority == other.version_priority
    }

    /// The current state.
    pub fn state(&self) -> TargetState {
        self.state.read().expect("target poisoned").clone()
    }
}

/// A group and a version.
pub type GroupVersion = (String, String);

/// Remote targets by (group, version).
#[derive(Default, Clone)]
pub struct Routes(Arc<RwLock<HashMap<GroupVersion, Arc<Target>>>>);

impl Routes {
    /// The target serving group/version, if an extension server does.
    pub fn get(&self, group: &str, version: &str) -> Option<Arc<Target>> {
        self.0
            .read()
            .expect("routes poisoned")
            .get(&(group.to_string(), version.to_string()))
            .cloned()
    }

    /// Every remote target.
    pub fn all(&self) -> Vec<(GroupVersion, Arc<Target>)> {
        let routes = self.0.read().expect("routes poisoned");
        routes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Replaces the table with the remote APIServices in `apiservices`, keeping the state of
    /// targets that did not change; returns the group/versions that are no longer remote.
    pub fn sync(&self, apiservices: &[Arc<APIService>]) -> Vec<GroupVersion> {
        let mut routes = self.0.write().expect("routes poisoned");
        let mut next = HashMap::new();
        for a in apiservices {
            let Some(spec) = a.spec.as_ref() else {
                continue;
            };
            let Some(target) = Target::from_apiservice(a) else {
                continue;
            };
            let key = (
                spec.group.clone().unwrap_or_default(),
                spec.version.clone().unwrap_or_default(),
            );
            let target = match routes.get(&key) {
                Some(old) if old.same_as(&target) => old.clone(),
                _ => Arc::new(target),
            };
            next.insert(key, target);
        }
        let gone = routes
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        *routes = next;
        gone
    }
}
