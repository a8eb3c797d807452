//! The API groups kubeboot serves itself, with upstream's priorities: one table that orders the
//! groups of discovery and gives the local APIServices their `groupPriorityMinimum` and
//! `versionPriority` (upstream's `apiVersionPriorities` in kube-apiserver's aggregator config).

/// One built-in API group and the priorities of its APIServices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiGroup {
    /// The group's name; "" is the core group.
    pub name: &'static str,
    /// `groupPriorityMinimum`: discovery lists groups from the highest down.
    pub priority: i32,
    /// `versionPriority` of the versions `versions` does not name.
    pub version_priority: i32,
    /// Versions whose `versionPriority` differs from `version_priority`.
    pub versions: &'static [(&'static str, i32)],
}

impl ApiGroup {
    /// A group whose versions all have upstream's usual version priority, 15.
    const fn new(name: &'static str, priority: i32) -> Self {
        ApiGroup {
            name,
            priority,
            version_priority: 15,
            versions: &[],
        }
    }

    /// The `versionPriority` of `version` of this group.
    pub fn version_priority(&self, version: &str) -> i32 {
        self.versions
            .iter()
            .find(|(v, _)| *v == version)
            .map_or(self.version_priority, |(_, p)| *p)
    }
}

/// The built-in groups, highest priority first and by name among equals: the order of /apis.
pub const BUILTIN: &[ApiGroup] = &[
    ApiGroup {
        version_priority: 1,
        ..ApiGroup::new("", 18000)
    },
    ApiGroup::new("apiregistration.k8s.io", 18000),
    ApiGroup::new("apps", 17800),
    ApiGroup::new("events.k8s.io", 17750),
    ApiGroup::new("authentication.k8s.io", 17700),
    ApiGroup::new("authorization.k8s.io", 17600),
    ApiGroup {
        versions: &[("v2", 30)],
        ..ApiGroup::new("autoscaling", 17500)
    },
    ApiGroup::new("batch", 17400),
    ApiGroup::new("certificates.k8s.io", 17300),
    ApiGroup::new("networking.k8s.io", 17200),
    ApiGroup::new("policy", 17100),
    ApiGroup::new("rbac.authorization.k8s.io", 17000),
    ApiGroup::new("storage.k8s.io", 16800),
    ApiGroup::new("admissionregistration.k8s.io", 16700),
    ApiGroup::new("apiextensions.k8s.io", 16700),
    ApiGroup::new("scheduling.k8s.io", 16600),
    ApiGroup::new("coordination.k8s.io", 16500),
    ApiGroup::new("node.k8s.io", 16300),
    ApiGroup::new("discovery.k8s.io", 16200),
    ApiGroup {
        versions: &[("v1", 21)],
        ..ApiGroup::new("flowcontrol.apiserver.k8s.io", 16100)
    },
];

/// The `groupPriorityMinimum` upstream gives the groups of CustomResourceDefinitions.
pub const CUSTOM_GROUP_PRIORITY: i32 = 1000;
/// The `versionPriority` upstream gives the versions of CustomResourceDefinitions.
pub const CUSTOM_VERSION_PRIORITY: i32 = 100;

/// The built-in group named `name`, if it is one.
pub fn builtin(name: &str) -> Option<&'static ApiGroup> {
    BUILTIN.iter().find(|g| g.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_listed_by_priority_then_name_once_each() {
        for pair in BUILTIN.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                (-a.priority, a.name) < (-b.priority, b.name),
                "{} before {}",
                a.name,
                b.name
            );
        }
    }

    #[test]
    fn every_built_in_kind_is_in_a_listed_group() {
        for strategy in crate::registry::kinds::builtin() {
            let info = strategy.info();
            assert!(
                builtin(&info.group).is_some(),
                "{} is in an unlisted group",
                info.qualified_kind()
            );
        }
    }

    #[test]
    fn version_priorities_are_upstreams() {
        let core = builtin("").unwrap();
        assert_eq!((core.priority, core.version_priority("v1")), (18000, 1));
        let autoscaling = builtin("autoscaling").unwrap();
        assert_eq!(autoscaling.version_priority("v2"), 30);
        assert_eq!(autoscaling.version_priority("v1"), 15);
        assert!(builtin("example.com").is_none());
    }
}
