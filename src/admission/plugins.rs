//! The plugins by name, in upstream's fixed order (`AllOrderedPlugins`): of those enabled,
//! each mutating one in order, then (after the object's validation) each validating one.

use super::certificates::Certificates;
use super::default_class::DefaultClass;
use super::defaults::{
    AlwaysDeny, AlwaysPullImages, DefaultTolerationSeconds, DenyServiceExternalIPs,
    ExtendedResourceToleration, LimitPodHardAntiAffinityTopology, StorageObjectInUseProtection,
    TaintNodesByCondition,
};
use super::event_rate_limit::EventRateLimit;
use super::image_policy::ImagePolicyWebhook;
use super::limit_ranger::LimitRanger;
use super::namespace_exists::{NamespaceAutoProvision, NamespaceExists};
use super::owner_references::OwnerReferencesPermissionEnforcement;
use super::pod_node_selector::PodNodeSelector;
use super::pod_toleration_restriction::PodTolerationRestriction;
use super::priority::Priority;
use super::pvc_resize::PersistentVolumeClaimResize;
use super::runtime_class::RuntimeClass;
use super::{
    AdmissionConfig, Chain, MutatingWebhooks, NamespaceLifecycle, NodeRestriction, PodSecurity,
    ResourceQuotaAdmission, ServiceAccountAdmission, ValidatingPolicies, ValidatingWebhooks,
    WebhookContext,
};
use crate::auth::Authorizer;
use crate::registry::StoreFactory;
use crate::registry::informer::Informer;
use std::sync::Arc;

/// Upstream's order of every admission plugin.
pub const ORDER: &[&str] = &[
    "AlwaysAdmit",
    "NamespaceAutoProvision",
    "NamespaceLifecycle",
    "NamespaceExists",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "TaintNodesByCondition",
    "AlwaysPullImages",
    "ImagePolicyWebhook",
    "PodSecurity",
    "PodNodeSelector",
    "Priority",
    "DefaultTolerationSeconds",
    "PodTolerationRestriction",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "DenyServiceExternalIPs",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
    "AlwaysDeny",
];

/// The plugins kubeboot runs (AlwaysAdmit admits everything, so it is one too).
pub const IMPLEMENTED: &[&str] = &[
    "AlwaysAdmit",
    "AlwaysDeny",
    "AlwaysPullImages",
    "CertificateApproval",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
    "DenyServiceExternalIPs",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "ImagePolicyWebhook",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "MutatingAdmissionWebhook",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "NamespaceLifecycle",
    "NodeRestriction",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "PodNodeSelector",
    "PodSecurity",
    "PodTolerationRestriction",
    "Priority",
    "ResourceQuota",
    "RuntimeClass",
    "ServiceAccount",
    "StorageObjectInUseProtection",
    "TaintNodesByCondition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
];

/// The chain of the `enabled` plugins, reading what they need from `storage` and asking
/// `authorizer` where they authorize.
pub fn chain(
    enabled: &[String],
    storage: &Arc<dyn StoreFactory>,
    authorizer: &Arc<Authorizer>,
    config: &AdmissionConfig,
) -> Chain {
    let store = |group: &str, resource: &str| storage.builtin_store(group, resource);
    let started = std::cell::RefCell::new(Vec::new());
    let follow = |store| {
        let informer = Informer::start(store);
        started.borrow_mut().push(informer.clone());
        informer
    };
    let informer = |group: &str, resource: &str| follow(store(group, resource));
    let webhooks = Arc::new(WebhookContext::new(
        store("", "namespaces"),
        store("", "services"),
        store("discovery.k8s.io", "endpointslices"),
        authorizer.clone(),
        storage.equivalents(),
    ));
    let mut chain = Chain::default();
    for name in ORDER.iter().filter(|n| enabled.iter().any(|e| e == *n)) {
        chain = match *name {
            "NamespaceAutoProvision" => chain.with_mutating(Arc::new(NamespaceAutoProvision::new(
                store("", "namespaces"),
            ))),
            "NamespaceLifecycle" => {
                chain.with_mutating(Arc::new(NamespaceLifecycle::new(store("", "namespaces"))))
            }
            "NamespaceExists" => {
                chain.with_validating(Arc::new(NamespaceExists::new(store("", "namespaces"))))
            }
            "LimitPodHardAntiAffinityTopology" => {
                chain.with_validating(Arc::new(LimitPodHardAntiAffinityTopology))
            }
            "LimitRanger" => {
                let plugin = Arc::new(LimitRanger::new(store("", "limitranges")));
                chain.with_mutating(plugin.clone()).with_validating(plugin)
            }
            "ServiceAccount" => chain.with_mutating(Arc::new(ServiceAccountAdmission::new(store(
                "",
                "serviceaccounts",
            )))),
            "NodeRestriction" => chain.with_validating(Arc::new(NodeRestriction::new(
                store("", "pods"),
                store("", "nodes"),
            ))),
            "TaintNodesByCondition" => chain.with_mutating(Arc::new(TaintNodesByCondition)),
            "AlwaysPullImages" => chain.with_mutating(Arc::new(AlwaysPullImages)),
            "PodSecurity" => chain.with_validating(Arc::new(PodSecurity::new(
                store("", "namespaces"),
                store("", "pods"),
                config.pod_security.clone(),
            ))),
            "Priority" => {
                let plugin = Arc::new(Priority::new(store("scheduling.k8s.io", "priorityclasses")));
                chain.with_mutating(plugin.clone()).with_validating(plugin)
            }
            "PodNodeSelector" => {
                let plugin = Arc::new(PodNodeSelector::new(
                    store("", "namespaces"),
                    config.pod_node_selector.clone(),
                ));
                chain.with_mutating(plugin.clone()).with_validating(plugin)
            }
            "DefaultTolerationSeconds" => chain.with_mutating(Arc::new(DefaultTolerationSeconds)),
            "PodTolerationRestriction" => {
                let plugin = Arc::new(PodTolerationRestriction::new(
                    store("", "namespaces"),
                    config.pod_toleration_restriction.clone(),
                ));
                chain.with_mutating(plugin.clone()).with_validating(plugin)
            }
            "ExtendedResourceToleration" => {
                chain.with_mutating(Arc::new(ExtendedResourceToleration))
            }
            // Validation refuses ImagePolicyWebhook without a configuration whose backend's
            // kubeconfig reads.
            "ImagePolicyWebhook" => match config.image_policy.as_ref().map(|c| (c, c.client())) {
                Some((c, Ok(client))) => {
                    chain.with_validating(Arc::new(ImagePolicyWebhook::new(c, client)))
                }
                _ => {
                    tracing::error!(
                        "ImagePolicyWebhook has no usable configuration; not running it"
                    );
                    chain
                }
            },
            // Validation refuses EventRateLimit without a valid configuration.
            "EventRateLimit" => {
                chain.with_validating(Arc::new(EventRateLimit::new(&config.event_rate_limit)))
            }
            "DefaultStorageClass" => chain.with_mutating(Arc::new(DefaultClass::storage(store(
                "storage.k8s.io",
                "storageclasses",
            )))),
            "OwnerReferencesPermissionEnforcement" => {
                chain.with_validating(Arc::new(OwnerReferencesPermissionEnforcement::new(
                    authorizer.clone(),
                    storage.equivalents(),
                )))
            }
            "StorageObjectInUseProtection" => {
                chain.with_mutating(Arc::new(StorageObjectInUseProtection))
            }
            "PersistentVolumeClaimResize" => chain.with_validating(Arc::new(
                PersistentVolumeClaimResize::new(store("storage.k8s.io", "storageclasses")),
            )),
            "RuntimeClass" => chain.with_mutating(Arc::new(RuntimeClass::new(store(
                "node.k8s.io",
                "runtimeclasses",
            )))),
            "CertificateApproval" => {
                chain.with_validating(Arc::new(Certificates::approval(authorizer.clone())))
            }
            "CertificateSigning" => {
                chain.with_validating(Arc::new(Certificates::signing(authorizer.clone())))
            }
            "CertificateSubjectRestriction" => chain.with_validating(Arc::new(
                Certificates::subject_restriction(authorizer.clone()),
            )),
            "DefaultIngressClass" => chain.with_mutating(Arc::new(DefaultClass::ingress(store(
                "networking.k8s.io",
                "ingressclasses",
            )))),
            "DenyServiceExternalIPs" => chain.with_validating(Arc::new(DenyServiceExternalIPs)),
            "MutatingAdmissionWebhook" => chain.with_mutating(Arc::new(MutatingWebhooks::new(
                informer(
                    "admissionregistration.k8s.io",
                    "mutatingwebhookconfigurations",
                ),
                webhooks.clone(),
            ))),
            "ValidatingAdmissionPolicy" => {
                chain.with_validating(Arc::new(ValidatingPolicies::new(
                    informer(
                        "admissionregistration.k8s.io",
                        "validatingadmissionpolicies",
                    ),
                    informer(
                        "admissionregistration.k8s.io",
                        "validatingadmissionpolicybindings",
                    ),
                    store("", "namespaces"),
                    storage.clone(),
                    authorizer.clone(),
                )))
            }
            "ValidatingAdmissionWebhook" => {
                chain.with_validating(Arc::new(ValidatingWebhooks::new(
                    informer(
                        "admissionregistration.k8s.io",
                        "validatingwebhookconfigurations",
                    ),
                    webhooks.clone(),
                )))
            }
            "ResourceQuota" => {
                let quotas = store("", "resourcequotas");
                chain.with_validating(Arc::new(ResourceQuotaAdmission::new(
                    follow(quotas.clone()),
                    quotas,
                )))
            }
            "AlwaysDeny" => chain.with_validating(Arc::new(AlwaysDeny)),
            // AlwaysAdmit admits; the others are warned of as not implemented.
            _ => chain,
        }
        .named(name);
    }
    chain.with_informers(started.take())
}
