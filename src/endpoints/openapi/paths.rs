//! The `paths` of the OpenAPI documents: one operation per resource verb, with the query
//! parameters, bodies, responses and `x-kubernetes-*` extensions upstream's installer gives them.

use super::definitions::{
    API_RESOURCE_LIST, DELETE_OPTIONS, Definitions, Format, PATCH, STATUS, WATCH_EVENT,
};
use crate::registry::ResourceInfo;
use serde_json::{Map, Value, json};

/// JSON type of a parameter.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Bool => "boolean",
        }
    }
}

/// One query or path parameter.
#[derive(Debug)]
struct Param {
    name: &'static str,
    ty: Ty,
    description: &'static str,
}

const fn p(name: &'static str, ty: Ty, description: &'static str) -> Param {
    Param {
        name,
        ty,
        description,
    }
}

const PRETTY: Param = p(
    "pretty",
    Ty::Str,
    "If 'true', then the output is pretty printed.",
);
const DRY_RUN: Param = p(
    "dryRun",
    Ty::Str,
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = p(
    "fieldManager",
    Ty::Str,
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
);
const FIELD_VALIDATION: Param = p(
    "fieldValidation",
    Ty::Str,
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: ignores unknown and duplicate fields. - Warn: sends a warning for each unknown or duplicate field through the standard warning response header (the default). - Strict: fails the request with a BadRequest error if any unknown or duplicate field is found.",
);
const FORCE: Param = p(
    "force",
    Ty::Bool,
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);
const ALLOW_WATCH_BOOKMARKS: Param = p(
    "allowWatchBookmarks",
    Ty::Bool,
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may ignore this flag and send bookmarks at their discretion. If this is not a watch, this field is ignored.",
);
const CONTINUE: Param = p(
    "continue",
    Ty::Str,
    "The continue option should be set when retrieving more results from the server: the continue value of a previous list result with identical query parameters. An expired continue value gets a 410 ResourceExpired error. This field is not supported when watch is true.",
);
const FIELD_SELECTOR: Param = p(
    "fieldSelector",
    Ty::Str,
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = p(
    "labelSelector",
    Ty::Str,
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = p(
    "limit",
    Ty::Int,
    "limit is a maximum number of responses to return for a list call. If more items exist, the server sets the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. This field is not supported if watch is true.",
);
const RESOURCE_VERSION: Param = p(
    "resourceVersion",
    Ty::Str,
    "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const RESOURCE_VERSION_MATCH: Param = p(
    "resourceVersionMatch",
    Ty::Str,
    "resourceVersionMatch determines how resourceVersion is applied to list calls. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const SEND_INITIAL_EVENTS: Param = p(
    "sendInitialEvents",
    Ty::Bool,
    "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream begins with synthetic events to produce the current state of objects in the collection, followed by a BOOKMARK event annotated with \"k8s.io/initial-events-end\": \"true\".",
);
const TIMEOUT_SECONDS: Param = p(
    "timeoutSeconds",
    Ty::Int,
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
const WATCH: Param = p(
    "watch",
    Ty::Bool,
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);
const GRACE_PERIOD_SECONDS: Param = p(
    "gracePeriodSeconds",
    Ty::Int,
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used.",
);
const ORPHAN_DEPENDENTS: Param = p(
    "orphanDependents",
    Ty::Bool,
    "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned. Either this field or PropagationPolicy may be set, but not both.",
);
const PROPAGATION_POLICY: Param = p(
    "propagationPolicy",
    Ty::Str,
    "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
);
const NAMESPACE: Param = p(
    "namespace",
    Ty::Str,
    "object name and auth scope, such as for teams and projects",
);

const LIST_PARAMS: &[&Param] = &[
    &ALLOW_WATCH_BOOKMARKS,
    &CONTINUE,
    &FIELD_SELECTOR,
    &LABEL_SELECTOR,
    &LIMIT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
    &WATCH,
];
const WRITE_PARAMS: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
const PATCH_PARAMS: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
const DELETE_PARAMS: &[&Param] = &[
    &DRY_RUN,
    &GRACE_PERIOD_SECONDS,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[&Param] = &[
    &CONTINUE,
    &DRY_RUN,
    &FIELD_SELECTOR,
    &GRACE_PERIOD_SECONDS,
    &LABEL_SELECTOR,
    &LIMIT,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
];

/// The media types kubeboot reads request bodies in (protobuf comes later, see DESIGN.md).
const CONSUMES: &[&str] = &["*/*"];
/// The patch types `endpoints::patch` implements.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// The patch types of custom resources, which have no strategic merge patch.
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];
const PRODUCES: &[&str] = &["application/json", "application/yaml"];
const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/yaml",
];
const PRODUCES_WATCH: &[&str] = &["application/json", "application/json;stream=watch"];

/// What an operation takes as its body.
#[derive(Debug)]
enum Body {
    None,
    /// An object of a definition, required.
    Object(String),
    /// A patch of one of these patch types.
    Patch(&'static [&'static str]),
    /// Optional DeleteOptions.
    DeleteOptions,
}

/// One operation of a path.
#[derive(Debug)]
struct Operation {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    gvk: Option<(String, String, String)>,
    query: &'static [&'static Param],
    body: Body,
    response: String,
    codes: &'static [u16],
    produces: &'static [&'static str],
}

/// One path with its path parameters and operations.
#[derive(Debug)]
struct PathItem {
    path: String,
    /// Description of the `name` parameter, when the path has one.
    name: Option<String>,
    namespaced: bool,
    operations: Vec<Operation>,
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `""` → `Core`, as upstream's operation
/// ids spell groups.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `apps_v1`, `rbacAuthorization_v1`, `core_v1`: upstream's tag of a group-version.
fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// The URL prefix of a group-version: `/api/v1` or `/apis/<group>/<version>`.
pub(super) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The definitions the operations of one resource refer to.
#[derive(Debug)]
pub(super) struct ResourceDefinitions {
    /// The kind's definition.
    pub(super) object: String,
    /// The definition of its list.
    pub(super) list: String,
    /// The definition of each subresource's object by subresource name; subresources without
    /// one get no paths.
    pub(super) subresources: Vec<(&'static str, String)>,
    /// A custom resource: upstream's CRD builder publishes no watch paths, offers no strategic
    /// merge patch and tags subresource operations with the resource's own kind.
    pub(super) custom: bool,
}

impl ResourceDefinitions {
    /// Those of a built-in kind; None when no type is known for it.
    pub(super) fn builtin(info: &ResourceInfo, definitions: &Definitions) -> Option<Self> {
        let object = definitions.definition_of(&info.group, &info.version, &info.kind)?;
        let subresources = info
            .subresources
            .iter()
            .filter(|sub| !sub.connect)
            .filter_map(|sub| {
                let definition = definitions.definition_of(&sub.group, &sub.version, &sub.kind)?;
                Some((sub.name, definition.to_string()))
            })
            .collect();
        Some(ResourceDefinitions {
            object: object.to_string(),
            list: format!("{object}List"),
            subresources,
            custom: false,
        })
    }
}

/// The paths of one group-version.
pub(super) struct GroupVersionPaths {
    group: String,
    version: String,
    items: Vec<PathItem>,
}

impl GroupVersionPaths {
    /// The operations of `resources` (all of one group-version), each with the definitions its
    /// operations refer to; `discovery` adds the group-version's `get…APIResources` path, which
    /// upstream publishes for built-in groups only.
    pub(super) fn new(
        group: &str,
        version: &str,
        resources: &[(&ResourceInfo, ResourceDefinitions)],
        discovery: bool,
    ) -> Self {
        let gv = format!("{}{}", group_camel(group), capitalize(version));
        let prefix = prefix(group, version);
        let mut items = Vec::new();
        if discovery {
            items.push(PathItem {
                path: format!("{prefix}/"),
                name: None,
                namespaced: false,
                operations: vec![Operation {
                    method: "get",
                    action: "",
                    id: format!("get{gv}APIResources"),
                    description: "get available resources".into(),
                    gvk: None,
                    query: &[],
                    body: Body::None,
                    response: API_RESOURCE_LIST.into(),
                    codes: &[200],
                    produces: PRODUCES,
                }],
            });
        }
        for (info, definitions) in resources {
            items.extend(resource_paths(&gv, &prefix, info, definitions));
        }
        GroupVersionPaths {
            group: group.into(),
            version: version.into(),
            items,
        }
    }

    /// The definition names the operations refer to.
    pub(super) fn referenced(&self) -> Vec<String> {
        let mut names: Vec<String> = vec![STATUS.into(), DELETE_OPTIONS.into(), PATCH.into()];
        for item in &self.items {
            for op in &item.operations {
                names.push(op.response.clone());
                if let Body::Object(d) = &op.body {
                    names.push(d.clone());
                }
            }
        }
        names
    }

    /// Renders the paths into `out` for `format`.
    pub(super) fn render(&self, format: Format, out: &mut Map<String, Value>) {
        let tag = tag(&self.group, &self.version);
        for item in &self.items {
            let mut rendered = Map::new();
            let mut params = Vec::new();
            if let Some(name) = &item.name {
                params.push(path_param(format, "name", name));
            }
            if item.namespaced {
                params.push(path_param(format, NAMESPACE.name, NAMESPACE.description));
            }
            params.push(query_param(format, &PRETTY));
            rendered.insert("parameters".into(), Value::Array(params));
            for op in &item.operations {
                rendered.insert(op.method.into(), render_operation(op, format, &tag));
            }
            out.insert(item.path.clone(), Value::Object(rendered));
        }
    }
}

/// Every path of one resource: collection, item, watch and subresource paths.
fn resource_paths(
    gv: &str,
    prefix: &str,
    info: &ResourceInfo,
    definitions: &ResourceDefinitions,
) -> Vec<PathItem> {
    let definition = definitions.object.as_str();
    let patch_types = if definitions.custom {
        CUSTOM_PATCH_TYPES
    } else {
        PATCH_TYPES
    };
    let kind = &*info.kind;
    let gvk = Some((
        info.group.to_string(),
        info.version.to_string(),
        info.kind.to_string(),
    ));
    let has = |verb: &str| info.verbs.contains(&verb);
    let scope = if info.namespaced { "Namespaced" } else { "" };
    let list = definitions.list.clone();
    let (collection, watch_collection) = if info.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", info.resource),
            format!("{prefix}/watch/namespaces/{{namespace}}/{}", info.resource),
        )
    } else {
        (
            format!("{prefix}/{}", info.resource),
            format!("{prefix}/watch/{}", info.resource),
        )
    };
    let name = Some(format!("name of the {kind}"));
    let op = |method, action, id: String, description: String| Operation {
        method,
        action,
        id,
        description,
        gvk: gvk.clone(),
        query: &[],
        body: Body::None,
        response: definition.to_string(),
        codes: &[200],
        produces: PRODUCES,
    };
    let mut items = Vec::new();

    let mut ops = Vec::new();
    if has("list") {
        ops.push(Operation {
            query: LIST_PARAMS,
            response: list.clone(),
            produces: PRODUCES_LIST,
            ..op(
                "get",
                "list",
                format!("list{gv}{scope}{kind}"),
                format!("list or watch objects of kind {kind}"),
            )
        });
    }
    if has("create") {
        ops.push(Operation {
            query: WRITE_PARAMS,
            body: Body::Object(definition.into()),
            codes: &[200, 201, 202],
            ..op(
                "post",
                "post",
                format!("create{gv}{scope}{kind}"),
                format!("create a {kind}"),
            )
        });
    }
    if has("deletecollection") {
        ops.push(Operation {
            query: DELETE_COLLECTION_PARAMS,
            body: Body::DeleteOptions,
            response: STATUS.into(),
            ..op(
                "delete",
                "deletecollection",
                format!("delete{gv}Collection{scope}{kind}"),
                format!("delete collection of {kind}"),
            )
        });
    }
    items.push(PathItem {
        path: collection.clone(),
        name: None,
        namespaced: info.namespaced,
        operations: ops,
    });

    let mut ops = Vec::new();
    if has("get") {
        ops.push(op(
            "get",
            "get",
            format!("read{gv}{scope}{kind}"),
            format!("read the specified {kind}"),
        ));
    }
    if has("update") {
        ops.push(Operation {
            query: WRITE_PARAMS,
            body: Body::Object(definition.into()),
            codes: &[200, 201],
            ..op(
                "put",
                "put",
                format!("replace{gv}{scope}{kind}"),
                format!("replace the specified {kind}"),
            )
        });
    }
    if has("patch") {
        ops.push(Operation {
            query: PATCH_PARAMS,
            body: Body::Patch(patch_types),
            codes: &[200, 201],
            ..op(
                "patch",
                "patch",
                format!("patch{gv}{scope}{kind}"),
                format!("partially update the specified {kind}"),
            )
        });
    }
    if has("delete") {
        ops.push(Operation {
            query: DELETE_PARAMS,
            body: Body::DeleteOptions,
            response: STATUS.into(),
            codes: &[200, 202],
            ..op(
                "delete",
                "delete",
                format!("delete{gv}{scope}{kind}"),
                format!("delete a {kind}"),
            )
        });
    }
    items.push(PathItem {
        path: format!("{collection}/{{name}}"),
        name: name.clone(),
        namespaced: info.namespaced,
        operations: ops,
    });

    for sub in &info.subresources {
        let Some((_, sub_definition)) = definitions
            .subresources
            .iter()
            .find(|(name, _)| *name == sub.name)
        else {
            continue;
        };
        let suffix = capitalize(sub.name);
        let sub_gvk = if definitions.custom {
            gvk.clone()
        } else {
            Some((
                sub.group.to_string(),
                sub.version.to_string(),
                sub.kind.to_string(),
            ))
        };
        let sub_op = |method, action, verb: &str, what: &str| Operation {
            gvk: sub_gvk.clone(),
            response: sub_definition.to_string(),
            ..op(
                method,
                action,
                format!("{verb}{gv}{scope}{kind}{suffix}"),
                format!("{what} {} of the specified {kind}", sub.name),
            )
        };
        let mut ops = Vec::new();
        for verb in sub.verbs.iter() {
            match *verb {
                "get" => ops.push(sub_op("get", "get", "read", "read")),
                "update" => ops.push(Operation {
                    query: WRITE_PARAMS,
                    body: Body::Object(sub_definition.clone()),
                    codes: &[200, 201],
                    ..sub_op("put", "put", "replace", "replace")
                }),
                "patch" => ops.push(Operation {
                    query: PATCH_PARAMS,
                    body: Body::Patch(patch_types),
                    codes: &[200, 201],
                    ..sub_op("patch", "patch", "patch", "partially update")
                }),
                // Subresources taking a POST of their own kind (pods/binding,
                // serviceaccounts/token), as upstream's `createCoreV1NamespacedPodBinding`.
                "create" => ops.push(Operation {
                    query: WRITE_PARAMS,
                    body: Body::Object(sub_definition.clone()),
                    codes: &[200, 201, 202],
                    gvk: sub_gvk.clone(),
                    response: sub_definition.to_string(),
                    ..op(
                        "post",
                        "post",
                        format!("create{gv}{scope}{kind}{suffix}"),
                        format!("create {} of a {kind}", sub.name),
                    )
                }),
                _ => {}
            }
        }
        items.push(PathItem {
            path: format!("{collection}/{{name}}/{}", sub.name),
            name: name.clone(),
            namespaced: info.namespaced,
            operations: ops,
        });
    }

    if has("list") && info.namespaced {
        items.push(PathItem {
            path: format!("{prefix}/{}", info.resource),
            name: None,
            namespaced: false,
            operations: vec![Operation {
                query: LIST_PARAMS,
                response: list.clone(),
                produces: PRODUCES_LIST,
                ..op(
                    "get",
                    "list",
                    format!("list{gv}{kind}ForAllNamespaces"),
                    format!("list or watch objects of kind {kind}"),
                )
            }],
        });
    }
    if has("watch") && !definitions.custom {
        let watch = |action, id: String, description: String| Operation {
            query: LIST_PARAMS,
            response: WATCH_EVENT.into(),
            produces: PRODUCES_WATCH,
            ..op("get", action, id, description)
        };
        items.push(PathItem {
            path: watch_collection.clone(),
            name: None,
            namespaced: info.namespaced,
            operations: vec![watch(
                "watchlist",
                format!("watch{gv}{scope}{kind}List"),
                format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
            )],
        });
        items.push(PathItem {
            path: format!("{watch_collection}/{{name}}"),
            name,
            namespaced: info.namespaced,
            operations: vec![watch(
                "watch",
                format!("watch{gv}{scope}{kind}"),
                format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
            )],
        });
        if info.namespaced {
            items.push(PathItem {
                path: format!("{prefix}/watch/{}", info.resource),
                name: None,
                namespaced: false,
                operations: vec![watch(
                    "watchlist",
                    format!("watch{gv}{kind}ListForAllNamespaces"),
                    format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
                )],
            });
        }
    }
    items.retain(|item| !item.operations.is_empty());
    items
}

fn path_param(format: Format, name: &str, description: &str) -> Value {
    let mut param = json!({
        "description": description,
        "in": "path",
        "name": name,
        "required": true,
    });
    set_type(&mut param, format, Ty::Str);
    param
}

fn query_param(format: Format, param: &Param) -> Value {
    let mut rendered = json!({
        "description": param.description,
        "in": "query",
        "name": param.name,
    });
    set_type(&mut rendered, format, param.ty);
    rendered
}

/// Swagger 2.0 types parameters inline, OpenAPI 3.0 through a schema.
fn set_type(param: &mut Value, format: Format, ty: Ty) {
    let typed = json!({"type": ty.name(), "uniqueItems": true});
    match format {
        Format::V2 => {
            param["type"] = typed["type"].clone();
            param["uniqueItems"] = json!(true);
        }
        Format::V3 => param["schema"] = typed,
    }
}

fn code_description(code: u16) -> &'static str {
    match code {
        201 => "Created",
        202 => "Accepted",
        _ => "OK",
    }
}

fn render_operation(op: &Operation, format: Format, tag: &str) -> Value {
    let mut rendered = json!({
        "description": op.description,
        "operationId": op.id,
        "tags": [tag],
    });
    let mut params: Vec<Value> = op.query.iter().map(|p| query_param(format, p)).collect();
    let (body, body_types, required) = match &op.body {
        Body::None => (None, CONSUMES, false),
        Body::Object(d) => (Some(d.as_str()), CONSUMES, true),
        Body::Patch(types) => (Some(PATCH), *types, true),
        Body::DeleteOptions => (Some(DELETE_OPTIONS), CONSUMES, false),
    };
    let mut responses = Map::new();
    for code in op.codes {
        let schema = format.reference(&op.response);
        let response = match format {
            Format::V2 => json!({"description": code_description(*code), "schema": schema}),
            Format::V3 => {
                let content: Map<String, Value> = op
                    .produces
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": schema})))
                    .collect();
                json!({"content": content, "description": code_description(*code)})
            }
        };
        responses.insert(code.to_string(), response);
    }
    match format {
        Format::V2 => {
            if let Some(definition) = body {
                params.push(json!({
                    "in": "body",
                    "name": "body",
                    "required": required,
                    "schema": format.reference(definition),
                }));
                rendered["consumes"] = json!(body_types);
            } else {
                rendered["consumes"] = json!(CONSUMES);
            }
            rendered["produces"] = json!(op.produces);
            rendered["schemes"] = json!(["https"]);
            responses.insert("401".into(), json!({"description": "Unauthorized"}));
        }
        Format::V3 => {
            if let Some(definition) = body {
                let content: Map<String, Value> = body_types
                    .iter()
                    .map(|t| {
                        (
                            t.to_string(),
                            json!({"schema": format.reference(definition)}),
                        )
                    })
                    .collect();
                let mut request_body = json!({"content": content});
                if required {
                    request_body["required"] = json!(true);
                }
                rendered["requestBody"] = request_body;
            }
        }
    }
    if !params.is_empty() {
        rendered["parameters"] = Value::Array(params);
    }
    rendered["responses"] = Value::Object(responses);
    if !op.action.is_empty() {
        rendered["x-kubernetes-action"] = json!(op.action);
    }
    if let Some((group, version, kind)) = &op.gvk {
        rendered["x-kubernetes-group-version-kind"] =
            json!({"group": group, "kind": kind, "version": version});
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_camel_cased_as_upstream_operation_ids_spell_them() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("apps"), "Apps");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(
            group_camel("flowcontrol.apiserver.k8s.io"),
            "FlowcontrolApiserver"
        );
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("", "v1"), "core_v1");
    }
}
