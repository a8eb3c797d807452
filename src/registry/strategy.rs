//! `Strategy`: what makes one kind different (schema, defaults, validation, columns, fields),
//! and `Typed`, the adapter that implements it for a k8s-openapi type plus a few typed rules.

use super::errors::ErrorList;
use super::table::{Column, age_cell, name_cell};
use super::validation::NameRule;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::borrow::Cow;
use std::marker::PhantomData;

/// A name that is static for built-in kinds and owned for custom resources.
pub type Name = Cow<'static, str>;
/// Verbs: a static list for served kinds, an owned one for resources of extension servers.
pub type Verbs = Cow<'static, [&'static str]>;
/// A static list of names: short names, categories, verbs.
pub type Names = &'static [&'static str];

/// Verbs of a subresource that reads and writes part of its object.
const SUB_VERBS: Names = &["get", "patch", "update"];

/// A subresource a kind serves, for discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// Name, e.g. "status" or "scale".
    pub name: &'static str,
    /// Group of the object the subresource speaks ("autoscaling" for scale).
    pub group: Name,
    /// Version of that object.
    pub version: Name,
    /// Kind of that object ("Scale" for scale, the parent's kind for status).
    pub kind: Name,
    /// Verbs.
    pub verbs: Verbs,
    /// Connected to a backend (pods/exec, nodes/proxy…) rather than reading or writing an
    /// object: such subresources have no object schema and no OpenAPI object paths.
    pub connect: bool,
}

impl SubresourceInfo {
    /// `status` of a kind: its spec/status split, speaking the kind itself.
    pub fn status(group: Name, version: Name, kind: Name) -> Self {
        SubresourceInfo {
            name: "status",
            group,
            version,
            kind,
            verbs: Cow::Borrowed(SUB_VERBS),
            connect: false,
        }
    }

    /// `scale`, speaking autoscaling/v1 Scale.
    pub fn scale() -> Self {
        SubresourceInfo {
            name: "scale",
            group: "autoscaling".into(),
            version: "v1".into(),
            kind: "Scale".into(),
            verbs: Cow::Borrowed(SUB_VERBS),
            connect: false,
        }
    }
}

/// Where the scale subresource reads and writes replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// JSON pointer to the desired replicas, e.g. `/spec/replicas`.
    pub spec_replicas: Name,
    /// JSON pointer to the observed replicas.
    pub status_replicas: Name,
    /// JSON pointer to the label selector (a LabelSelector object or a map); empty when none.
    pub selector: Name,
}

impl ScalePaths {
    /// Where the built-in workloads keep them: `spec.replicas`, `status.replicas`, `spec.selector`.
    pub const REPLICAS: ScalePaths = ScalePaths {
        spec_replicas: Cow::Borrowed("/spec/replicas"),
        status_replicas: Cow::Borrowed("/status/replicas"),
        selector: Cow::Borrowed("/spec/selector"),
    };
}

/// A subresource a built-in kind serves, as its [`Rules::SUBRESOURCES`] declare it.
#[derive(Debug, Clone)]
pub enum Sub {
    /// `status`: the spec/status split.
    Status,
    /// `scale`, reading and writing replicas at these paths.
    Scale(ScalePaths),
    /// `approval` (CertificateSigningRequests).
    Approval,
    /// `finalize` (namespaces).
    Finalize,
    /// `ephemeralcontainers` (pods): reads the object, writes its ephemeral containers only.
    EphemeralContainers,
    /// `resize` (pods): reads the object, writes its containers' resources only.
    Resize,
    /// A subresource that takes a POST of another kind and acts on its object, served by a
    /// [`super::rest::SubresourceCreater`] (serviceaccounts/token, pods/binding, pods/eviction).
    Create {
        /// The subresource's name.
        name: &'static str,
        /// Group of the object it takes.
        group: &'static str,
        /// Version of that object.
        version: &'static str,
        /// Kind of that object.
        kind: &'static str,
    },
    /// A subresource connected to a backend rather than stored (pods/log, exec, attach,
    /// portforward and proxy; nodes/proxy; services/proxy), served by an
    /// [`crate::endpoints::handlers::Connecter`]; `kind` is its options kind.
    Connect {
        /// The subresource's name.
        name: &'static str,
        /// The kind discovery names (PodExecOptions…).
        kind: &'static str,
        /// Its verbs.
        verbs: &'static [&'static str],
    },
}

/// The verbs of a proxy subresource, as upstream's discovery lists them.
pub const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

impl Sub {
    /// Whether `subs` has the status subresource.
    pub const fn has_status(subs: &[Sub]) -> bool {
        let mut i = 0;
        while i < subs.len() {
            if matches!(subs[i], Sub::Status) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// This subresource of the kind `group`/`version`/`kind`, as discovery lists it.
    pub fn info(
        &self,
        group: &'static str,
        version: &'static str,
        kind: &'static str,
    ) -> SubresourceInfo {
        let own = |name, verbs| SubresourceInfo {
            name,
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            verbs: Cow::Borrowed(verbs),
            connect: false,
        };
        match self {
            Sub::Status => SubresourceInfo::status(group.into(), version.into(), kind.into()),
            Sub::Scale(_) => SubresourceInfo::scale(),
            Sub::Approval => own("approval", SUB_VERBS),
            Sub::Finalize => own("finalize", &["update"]),
            Sub::EphemeralContainers => own("ephemeralcontainers", SUB_VERBS),
            Sub::Resize => own("resize", SUB_VERBS),
            Sub::Create {
                name,
                group,
                version,
                kind,
            } => SubresourceInfo {
                name,
                group: (*group).into(),
                version: (*version).into(),
                kind: (*kind).into(),
                verbs: Cow::Borrowed(&["create"]),
                connect: false,
            },
            Sub::Connect {
                name,
                kind: options,
                verbs,
            } => SubresourceInfo {
                name,
                group: group.into(),
                version: version.into(),
                kind: (*options).into(),
                verbs: Cow::Borrowed(verbs),
                connect: true,
            },
        }
    }
}

/// Verbs of an ordinary resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a custom resource, in the order apiextensions-apiserver's discovery lists them.
pub const CUSTOM_RESOURCE_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// Static facts about a kind: names, scope, discovery data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, "" for core.
    pub group: Name,
    /// Version.
    pub version: Name,
    /// Kind.
    pub kind: Name,
    /// Plural resource name.
    pub resource: Name,
    /// Singular resource name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: Vec<Name>,
    /// Categories, e.g. "all".
    pub categories: Vec<Name>,
    /// Verbs of the main resource.
    pub verbs: Verbs,
    /// Subresources served.
    pub subresources: Vec<SubresourceInfo>,
    /// Name validation.
    pub name_rule: NameRule,
    /// Scale subresource paths, when it has one.
    pub scale: Option<ScalePaths>,
    /// Whether metadata.generation counts spec changes.
    pub tracks_generation: bool,
    /// Whether DELETE answers with the deleted object rather than a Status (upstream's
    /// `ReturnDeletedObject`).
    pub delete_returns_object: bool,
}

impl ResourceInfo {
    /// Whether kube-apiserver itself serves this kind (not a custom resource or an aggregated
    /// API's).
    pub fn is_builtin(&self) -> bool {
        crate::storage::kube_apiserver_owns(&self.group)
            || matches!(
                &*self.group,
                "apiextensions.k8s.io" | "apiregistration.k8s.io"
            )
    }

    /// `apiVersion` of objects of this kind.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// The list kind, e.g. ConfigMapList.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    /// `Deployment.apps` or `ConfigMap`, as upstream qualifies kinds in messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
    /// The group/resource, for errors.
    pub fn group_resource(&self) -> super::errors::GroupResource {
        super::errors::GroupResource {
            group: self.group.to_string(),
            resource: self.resource.to_string(),
        }
    }
    /// Whether the status subresource exists (spec/status split).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s.name == "status")
    }
}

/// The result of decoding a request body against a kind's schema.
#[derive(Debug)]
pub struct Decoded {
    /// The object as the schema keeps it (unknown fields dropped).
    pub object: Value,
    /// Paths of fields the schema does not know, e.g. `spec.foo`.
    pub unknown_fields: Vec<String>,
}

/// What one kind does differently; everything else is the generic store's.
pub trait Strategy: Send + Sync {
    /// Static facts.
    fn info(&self) -> &ResourceInfo;
    /// Checks the body against the kind's schema; `Err` is a 400 message.
    fn decode(&self, obj: Value) -> Result<Decoded, String>;
    /// Resets fields clients may not set on create (e.g. status), before defaulting.
    fn prepare_for_create(&self, _obj: &mut Value) {}
    /// Records the requester of a create, for kinds that keep it (upstream's PrepareForCreate
    /// reading the user from the request context).
    fn prepare_for_create_by(&self, _obj: &mut Value, _user: &crate::auth::UserInfo) {}
    /// Carries over fields a main-resource update may not change.
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}
    /// Narrows an update through `subresource` (its owned fields already merged onto the stored
    /// object) to what that subresource may change, e.g. pods/resize to container resources.
    fn prepare_for_subresource_update(&self, _subresource: &str, _new: &mut Value, _old: &Value) {}
    /// Fills defaults.
    fn default(&self, _obj: &mut Value) {}
    /// Kind-specific validation of a new object.
    fn validate(&self, _obj: &Value) -> ErrorList {
        Vec::new()
    }
    /// Kind-specific validation of an update.
    fn validate_update(&self, new: &Value, _old: &Value) -> ErrorList {
        self.validate(new)
    }
    /// Kind-specific validation of an update through `subresource` (status, ephemeralcontainers…).
    fn validate_subresource_update(
        &self,
        _subresource: &str,
        new: &Value,
        old: &Value,
    ) -> ErrorList {
        self.validate_update(new, old)
    }
    /// Whether an update without resourceVersion is allowed (upstream: most kinds).
    fn allow_unconditional_update(&self) -> bool {
        true
    }
    /// Whether something beyond metadata.finalizers keeps the object from being deleted
    /// (namespaces: `spec.finalizers`).
    fn blocks_deletion(&self, _obj: &Value) -> bool {
        false
    }
    /// Marks an object whose deletion is pending (namespaces: phase Terminating).
    fn prepare_for_delete(&self, _obj: &mut Value) {}
    /// The grace period of a graceful deletion (pods on a node, which their kubelet deletes),
    /// given the request's `gracePeriodSeconds`; `None` deletes at once.
    fn deletion_grace_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }
    /// Table columns (Name first).
    fn columns(&self) -> Vec<Column> {
        vec![Column::NAME, Column::AGE]
    }
    /// Table cells, one per column.
    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![name_cell(obj), age_cell(obj)]
    }
    /// The value of a selectable field beyond metadata.name/namespace; `None` means unsupported.
    fn field(&self, _obj: &Value, _field: &str) -> Option<String> {
        None
    }
    /// Whether metadata.generation counts spec changes.
    fn tracks_generation(&self) -> bool {
        self.info().tracks_generation
    }
    /// The field types server-side apply merges by; `None` means the built-in kind's own.
    fn field_types(&self) -> Option<super::managed_fields::TypeRef> {
        None
    }
    /// Whether PATCH accepts strategic merge patches (custom resources: no, as upstream).
    fn supports_strategic_merge(&self) -> bool {
        true
    }
    /// Whether responses may be protobuf (`application/vnd.kubernetes.protobuf`); custom
    /// resources have no protobuf messages, so upstream never serves them that way.
    fn serves_protobuf(&self) -> bool {
        true
    }
    /// Whether objects read back from kube-apiserver's protobuf may lack defaults: upstream
    /// defaults every object it decodes from etcd, and stores some without them (a claim's
    /// status, reset after defaulting, without its `Pending` phase; a Job without the labels
    /// its template gets after defaulting). kubeboot defaults before it writes, so only these
    /// kinds pay for defaulting on read.
    fn defaults_stored(&self) -> bool {
        false
    }
    /// Whether list items leave out apiVersion/kind: typed lists do, as Go omits their empty
    /// TypeMeta; custom resources' unstructured items keep theirs, as upstream.
    fn typed_list_items(&self) -> bool {
        self.serves_protobuf()
    }
    /// How objects convert to and from the form kept in storage; `None` when stored objects
    /// are this version's objects as they are, which lets lists splice the stored bytes.
    fn storage_conversion(&self) -> Option<&dyn StorageConversion> {
        None
    }
    /// The group and resource whose storage (key prefix and watch cache) holds this kind's
    /// objects: its own, unless it is another version of a resource kept under another group,
    /// as events.k8s.io Events are core Events (converted by [`Strategy::storage_conversion`]).
    fn storage_resource(&self) -> (&str, &str) {
        let info = self.info();
        (&info.group, &info.resource)
    }
}

/// Conversion between the version a strategy serves and the form its objects are stored in.
pub trait StorageConversion: Send + Sync {
    /// Converts an object of the served version to the stored form (custom resources: the
    /// storage version's apiVersion, or what their conversion webhook answers).
    fn encode(&self, obj: &mut Value) -> Result<(), super::RegistryError>;
    /// Converts a stored object to the served version (and applies read-time defaults).
    fn decode(&self, obj: &mut Value) -> Result<(), super::RegistryError>;
    /// Converts the stored objects of a list page, all at once where the conversion can (one
    /// ConversionReview for the page, as upstream).
    fn decode_all(&self, objs: &mut [Value]) -> Result<(), super::RegistryError> {
        objs.iter_mut().try_for_each(|o| self.decode(o))
    }
}

/// What makes the kind of k8s-openapi type `T` more than its schema: the facts it is registered
/// with (constants) and typed hooks (methods). Every constant has upstream's usual value and
/// every method a do-nothing default.
pub trait Rules<T>: Send + Sync + 'static {
    /// `kubectl` short names, e.g. `po`.
    const SHORT_NAMES: Names = &[];
    /// Categories, e.g. `all`.
    const CATEGORIES: Names = &[];
    /// Subresources served beside the main resource.
    const SUBRESOURCES: &'static [Sub] = &[];
    /// Verbs of the main resource.
    const VERBS: Names = ALL_VERBS;
    /// How object names are validated.
    const NAME_RULE: NameRule = NameRule::Dns1123Subdomain;
    /// Whether metadata.generation counts spec changes: by default, kinds with a spec/status
    /// split do; those whose upstream strategy never bumps it (pods, nodes, services, …) say no.
    const TRACKS_GENERATION: bool = Sub::has_status(Self::SUBRESOURCES);
    /// Whether DELETE answers with the deleted object rather than a Status.
    const DELETE_RETURNS_OBJECT: bool = false;
    /// See [`Strategy::defaults_stored`].
    const DEFAULTS_STORED: bool = false;
    /// Where the kind embeds an ObjectMeta (a template's `metadata`), as `/`-separated paths
    /// with `*` for every item of a list. Go writes such a struct whole, its unset
    /// `creationTimestamp` as `null`; k8s-openapi leaves both out, so defaulting puts them back.
    const EMBEDDED_METADATA: &'static [&'static str] = &[];

    /// See [`Strategy::prepare_for_create`].
    fn prepare_for_create(&self, _obj: &mut T) {}
    /// See [`Strategy::prepare_for_create_by`].
    fn prepare_for_create_by(&self, _obj: &mut T, _user: &crate::auth::UserInfo) {}
    /// See [`Strategy::prepare_for_update`].
    fn prepare_for_update(&self, _new: &mut T, _old: &T) {}
    /// See [`Strategy::prepare_for_subresource_update`].
    fn prepare_for_subresource_update(&self, _subresource: &str, _new: &mut T, _old: &T) {}
    /// See [`Strategy::default`].
    fn default(&self, _obj: &mut T) {}
    /// See [`Strategy::validate`].
    fn validate(&self, _obj: &T) -> ErrorList {
        Vec::new()
    }
    /// See [`Strategy::validate_update`].
    fn validate_update(&self, new: &T, _old: &T) -> ErrorList {
        self.validate(new)
    }
    /// See [`Strategy::validate_subresource_update`].
    fn validate_subresource_update(&self, _subresource: &str, new: &T, old: &T) -> ErrorList {
        self.validate_update(new, old)
    }
    /// See [`Strategy::allow_unconditional_update`].
    fn allow_unconditional_update(&self) -> bool {
        true
    }
    /// Columns between Name and the kind's own end; `None` keeps Name and Age.
    fn columns(&self) -> Option<Vec<Column>> {
        None
    }
    /// Cells for [`Rules::columns`], one per column.
    fn cells(&self, _obj: &T, _raw: &Value) -> Vec<Value> {
        Vec::new()
    }
    /// See [`Strategy::field`].
    fn field(&self, _obj: &T, _field: &str) -> Option<String> {
        None
    }
    /// See [`Strategy::deletion_grace_period`].
    fn deletion_grace_period(&self, _obj: &T, _requested: Option<i64>) -> Option<i64> {
        None
    }
    /// See [`Strategy::blocks_deletion`].
    fn blocks_deletion(&self, _obj: &T) -> bool {
        false
    }
    /// See [`Strategy::prepare_for_delete`]; on the stored JSON, so it keeps every field.
    fn prepare_for_delete(&self, _obj: &mut Value) {}
    /// Whether stored objects may be in an older version, as kube-apiserver writes some kinds
    /// (CRDs as apiextensions.k8s.io/v1beta1); [`Rules::upgrade_stored`] converts them on read.
    const UPGRADES_STORED: bool = false;
    /// Converts a stored object of an older version to this kind's version.
    fn upgrade_stored(&self, _obj: &mut Value) -> Result<(), String> {
        Ok(())
    }
}

/// A [`Strategy`] for k8s-openapi type `T` with rules `R`.
pub struct Typed<T, R> {
    info: ResourceInfo,
    rules: R,
    _type: PhantomData<fn() -> T>,
}

impl<T, R> Typed<T, R> {
    /// A strategy with these facts and rules.
    pub fn new(info: ResourceInfo, rules: R) -> Self {
        Self {
            info,
            rules,
            _type: PhantomData,
        }
    }
}

fn to_typed<T: DeserializeOwned>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

fn to_value<T: Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).expect("k8s-openapi types always serialize");
    whole_floats_as_integers(&mut v);
    v
}

/// Writes whole floats (`0.0`) as integers (`0`), as Go's encoding/json writes a float64: a
/// CRD schema's `minimum: 0` must read back as it was written, or an apply of the same
/// manifest would see a changed value.
fn whole_floats_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// Writes `metadata: {creationTimestamp: null}` at the end of `path` (see
/// [`Rules::EMBEDDED_METADATA`]), below fields that exist; a missing parent stays missing.
fn null_creation_timestamps(v: &mut Value, path: &[&str]) {
    match path {
        [] => {}
        ["metadata"] => {
            if let Some(parent) = v.as_object_mut() {
                let meta = parent
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(meta) = meta.as_object_mut() {
                    meta.entry("creationTimestamp").or_insert(Value::Null);
                }
            }
        }
        ["*", rest @ ..] => {
            for item in v.as_array_mut().into_iter().flatten() {
                null_creation_timestamps(item, rest);
            }
        }
        [field, rest @ ..] => {
            if let Some(child) = v.get_mut(*field) {
                null_creation_timestamps(child, rest);
            }
        }
    }
}

/// Applies a typed mutation to a JSON object, keeping it unchanged when it does not decode.
fn with_typed<T: DeserializeOwned + Serialize>(obj: &mut Value, f: impl FnOnce(&mut T)) {
    if let Some(mut t) = to_typed::<T>(obj) {
        f(&mut t);
        *obj = to_value(&t);
    }
}

/// Paths of fields present in `input` but dropped by the schema (`normalized`).
pub fn unknown_fields(input: &Value, normalized: &Value, path: &str, out: &mut Vec<String>) {
    match (input, normalized) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(nv) => unknown_fields(v, nv, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, nv)) in a.iter().zip(b).enumerate() {
                unknown_fields(v, nv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

impl<T, R> Strategy for Typed<T, R>
where
    T: DeserializeOwned + Serialize + Send + Sync + 'static,
    R: Rules<T>,
{
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn decode(&self, obj: Value) -> Result<Decoded, String> {
        let typed: T = serde_path_to_error::deserialize(&obj).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let where_ = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: {where_}{inner}",
                kind = self.info.kind,
                version = self.info.version
            )
        })?;
        let normalized = to_value(&typed);
        let mut unknown = Vec::new();
        unknown_fields(&obj, &normalized, "", &mut unknown);
        Ok(Decoded {
            object: normalized,
            unknown_fields: unknown,
        })
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        with_typed::<T>(obj, |t| self.rules.prepare_for_create(t));
    }

    fn prepare_for_create_by(&self, obj: &mut Value, user: &crate::auth::UserInfo) {
        with_typed::<T>(obj, |t| self.rules.prepare_for_create_by(t, user));
    }

    fn prepare_for_subresource_update(&self, subresource: &str, new: &mut Value, old: &Value) {
        if let Some(old) = to_typed::<T>(old) {
            with_typed::<T>(new, |t| {
                self.rules
                    .prepare_for_subresource_update(subresource, t, &old)
            });
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(old) = to_typed::<T>(old) {
            with_typed::<T>(new, |t| self.rules.prepare_for_update(t, &old));
        }
    }

    fn default(&self, obj: &mut Value) {
        with_typed::<T>(obj, |t| self.rules.default(t));
        for path in R::EMBEDDED_METADATA {
            let segments: Vec<&str> = path.split('/').collect();
            null_creation_timestamps(obj, &segments);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        to_typed::<T>(obj)
            .map(|t| self.rules.validate(&t))
            .unwrap_or_default()
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        match (to_typed::<T>(new), to_typed::<T>(old)) {
            (Some(n), Some(o)) => self.rules.validate_update(&n, &o),
            _ => Vec::new(),
        }
    }

    fn validate_subresource_update(
        &self,
        subresource: &str,
        new: &Value,
        old: &Value,
    ) -> ErrorList {
        match (to_typed::<T>(new), to_typed::<T>(old)) {
            (Some(n), Some(o)) => self.rules.validate_subresource_update(subresource, &n, &o),
            _ => Vec::new(),
        }
    }

    fn allow_unconditional_update(&self) -> bool {
        self.rules.allow_unconditional_update()
    }

    fn columns(&self) -> Vec<Column> {
        self.rules
            .columns()
            .unwrap_or_else(|| vec![Column::NAME, Column::AGE])
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        if self.rules.columns().is_none() {
            return vec![name_cell(obj), age_cell(obj)];
        }
        match to_typed::<T>(obj) {
            Some(t) => self.rules.cells(&t, obj),
            None => vec![name_cell(obj)],
        }
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        to_typed::<T>(obj).and_then(|t| self.rules.field(&t, field))
    }

    fn deletion_grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        to_typed::<T>(obj).and_then(|t| self.rules.deletion_grace_period(&t, requested))
    }

    fn blocks_deletion(&self, obj: &Value) -> bool {
        to_typed::<T>(obj).is_some_and(|t| self.rules.blocks_deletion(&t))
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        self.rules.prepare_for_delete(obj)
    }

    fn storage_conversion(&self) -> Option<&dyn StorageConversion> {
        R::UPGRADES_STORED.then_some(self as &dyn StorageConversion)
    }

    fn defaults_stored(&self) -> bool {
        R::DEFAULTS_STORED
    }
}

/// Objects are written in this kind's version and read from older ones it upgrades.
impl<T, R> StorageConversion for Typed<T, R>
where
    T: DeserializeOwned + Serialize + Send + Sync + 'static,
    R: Rules<T>,
{
    fn encode(&self, _obj: &mut Value) -> Result<(), super::RegistryError> {
        Ok(())
    }

    fn decode(&self, obj: &mut Value) -> Result<(), super::RegistryError> {
        self.rules
            .upgrade_stored(obj)
            .map_err(super::RegistryError::Internal)
    }
}
