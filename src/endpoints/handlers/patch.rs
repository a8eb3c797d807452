//! PATCH (upstream's `PatchResource`): JSON, merge and strategic merge patches applied to the
//! current object in the store's read-modify-write loop, and server-side apply, which creates
//! the object when it does not exist.

use super::admit::AdmissionPoint;
use super::body;
use super::scale::{self, SCALE_KIND};
use super::scope::RequestScope;
use crate::admission::{Operation, Options};
use crate::endpoints::patch::{self as patches, PatchType};
use crate::endpoints::status::ApiError;
use crate::endpoints::{Body, Response};
use crate::registry::managed_fields::{
    self, ApplyError, ApplyRequest, Operation as FieldsOperation,
};
use crate::registry::store::{UpdateTarget, now_rfc3339};
use crate::registry::{FieldError, RegistryError, ResourceInfo};
use http::StatusCode;
use serde_json::Value;

/// The patch types a PATCH may carry, as upstream lists them in its 415.
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
];

/// A 422 about the request's PatchOptions, as upstream's `ValidatePatchOptions`.
fn patch_options_invalid(error: FieldError) -> ApiError {
    RegistryError::Invalid {
        group: "meta.k8s.io".into(),
        qualified_kind: "PatchOptions.meta.k8s.io".into(),
        kind: "PatchOptions".into(),
        name: String::new(),
        errors: vec![error],
    }
    .into()
}

/// `?force=`, which only apply patches may carry (upstream `ValidatePatchOptions`).
fn force(scope: &RequestScope<'_>, apply: bool) -> Result<bool, ApiError> {
    match scope.query.get("force") {
        None => Ok(false),
        Some(_) if !apply => Err(patch_options_invalid(FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        ))),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid force: {v:?}"))),
    }
}

/// Applies a patch body of Content-Type `content_type` to `original`, an object of `kind`
/// (group, version, kind), whose schema strategic merge patches follow.
fn patch_object(
    original: &Value,
    bytes: &[u8],
    content_type: &str,
    (group, version, kind): (&str, &str, &str),
) -> Result<Value, ApiError> {
    let media = body::media_type(content_type);
    let patch_type = PatchType::from_content_type(media)
        .ok_or_else(|| ApiError::unsupported_media_type(media, PATCH_TYPES))?;
    let schema = patches::schema_for_kind(group, version, kind);
    patches::apply_patch(patch_type, original, bytes, schema.as_ref()).map_err(ApiError::from)
}

/// The admission of a patch (or apply) of the object the request names.
fn patch_admission<'a>(
    scope: &'a RequestScope<'a>,
    dry_run: bool,
    force: bool,
) -> AdmissionPoint<'a> {
    scope.admission(
        Operation::Update,
        scope.name(),
        dry_run,
        Options::Patch {
            field_manager: scope.requested_field_manager(),
            force,
        },
    )
}

/// Serves a patch of the object, of `status` or `approval`, or of `scale`.
pub(super) async fn patch(scope: &RequestScope<'_>, body: Body) -> Result<Response, ApiError> {
    let (store, ns, name) = (&scope.store, scope.namespace, scope.name());
    let ri = store.info();
    let manager = scope.field_manager();
    let content_type = scope.content_type.as_str();
    if PatchType::from_content_type(body::media_type(content_type)).is_none() {
        return Err(ApiError::route_unsupported_media_type());
    }
    if scope.subresource() == "scale" {
        let mut opts = scope.write_options(manager, FieldsOperation::Update)?;
        let bytes = body::read(body).await?;
        let admission = patch_admission(scope, opts.dry_run, false);
        opts.admission = Some(&admission);
        let out = scale::write(
            store,
            ns,
            name,
            move |current| patch_object(current, &bytes, content_type, SCALE_KIND),
            opts,
        )
        .await?;
        return Ok(scope.render_plain(&out));
    }
    let mut opts = scope.write_options(manager.clone(), FieldsOperation::Update)?;
    let bytes = body::read(body).await?;
    // Custom resources have no patch strategies, so upstream refuses strategic merge for them.
    let patch_type = PatchType::from_content_type(content_type);
    if patch_type == Some(PatchType::StrategicMerge) && !store.strategy().supports_strategic_merge()
    {
        return Err(ApiError::unsupported_media_type(
            body::media_type(content_type),
            &PATCH_TYPES[..3],
        ));
    }
    let target = UpdateTarget::for_subresource(scope.subresource())
        .ok_or_else(|| ApiError::method_not_allowed(&ri.group, &ri.resource))?;
    let is_apply = patch_type == Some(PatchType::Apply);
    let force = force(scope, is_apply)?;
    if is_apply {
        // Appliers must name themselves; the User-Agent is not enough.
        if scope.requested_field_manager().is_empty() {
            return Err(patch_options_invalid(FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )));
        }
        opts.writer = Some(store.writer(manager, FieldsOperation::Apply, scope.subresource()));
        let (config, warnings) = body::decode_apply_config(&bytes, opts.field_validation)?;
        return apply(scope, target, &config, force, opts, warnings).await;
    }
    let admission = patch_admission(scope, opts.dry_run, force);
    opts.admission = Some(&admission);
    let kind = (&*ri.group, &*ri.version, &*ri.kind);
    let out = store
        .update_with(ns, name, target, opts, |current| {
            patch_object(current, &bytes, content_type, kind)
        })
        .await?;
    Ok(scope.render(out.value, StatusCode::OK, &out.warnings))
}

/// Upstream's 500 for an apply configuration with `unknown` fields, as structured-merge-diff
/// words it (paths with a leading dot; list items by index here).
fn untyped_apply(config: &Value, ri: &ResourceInfo, unknown: &[String]) -> ApiError {
    let meta = |field: &str| {
        config
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut errors: Vec<String> = unknown
        .iter()
        .map(|f| format!(".{f}: field not declared in schema"))
        .collect();
    errors.sort();
    let errors = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    ApiError {
        details: None,
        ..ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            format!(
                "failed to create typed patch object ({}/{}; {}, Kind={}): {errors}",
                meta("namespace"),
                meta("name"),
                ri.api_version(),
                ri.kind
            ),
        )
    }
}

fn apply_error(e: ApplyError) -> RegistryError {
    match e {
        ApplyError::Conflicts(c) => RegistryError::ApplyConflict(c),
        ApplyError::BadRequest(m) => RegistryError::BadRequest(m),
        other => RegistryError::Internal(other.to_string()),
    }
}

/// Server-side apply: merges `config` into the live object with field ownership, or creates
/// it (on the main resource) when it does not exist, each with its own admission.
async fn apply(
    scope: &RequestScope<'_>,
    target: UpdateTarget,
    config: &Value,
    force: bool,
    mut opts: crate::registry::store::WriteOptions<'_>,
    decode_warnings: Vec<String>,
) -> Result<Response, ApiError> {
    let warned = |later: &[String]| [decode_warnings.as_slice(), later].concat();
    let (store, ns, name) = (&scope.store, scope.namespace, scope.name());
    let ri = store.info();
    let writer = opts.writer.clone().expect("apply has a writer");
    let config_name = config.pointer("/metadata/name").and_then(Value::as_str);
    if let Some(n) = config_name
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if let (true, Some(req_ns), Some(obj_ns)) = (
        ri.namespaced,
        ns,
        config
            .pointer("/metadata/namespace")
            .and_then(Value::as_str),
    ) && !obj_ns.is_empty()
        && obj_ns != req_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    // structured-merge-diff cannot type a configuration with fields the schema lacks: upstream
    // fails such an apply whatever the field validation.
    let unknown = store
        .strategy()
        .decode(config.clone())
        .map(|d| d.unknown_fields)
        .unwrap_or_default();
    if !unknown.is_empty() {
        return Err(untyped_apply(config, ri, &unknown));
    }
    let now = now_rfc3339();
    let request = ApplyRequest {
        config,
        force,
        scope: target.scope(ri.has_status()),
        kind: &ri.kind,
        now: &now,
    };
    let update_admission = patch_admission(scope, opts.dry_run, force);
    // Upstream turns the PatchOptions of an apply that creates into CreateOptions.
    let create_admission = scope.admission(
        Operation::Create,
        name,
        opts.dry_run,
        Options::Create {
            field_manager: scope.requested_field_manager(),
        },
    );
    // A create racing this apply makes the create fail; the second round updates it.
    for _ in 0..2 {
        opts.admission = Some(&update_admission);
        let updated = store
            .update_with(ns, name, target, opts.clone(), |current| {
                managed_fields::apply(Some(current), &writer, request).map_err(apply_error)
            })
            .await;
        match updated {
            Ok(out) => return Ok(scope.render(out.value, StatusCode::OK, &warned(&out.warnings))),
            Err(RegistryError::NotFound { .. }) if target == UpdateTarget::Main => {}
            Err(e) => return Err(e.into()),
        }
        if config_name.is_none() {
            return Err(ApiError::bad_request(format!(
                "the name of the object () does not match the name on the URL ({name})"
            )));
        }
        let obj = managed_fields::apply(None, &writer, request)
            .map_err(|e| ApiError::from(apply_error(e)))?;
        opts.admission = Some(&create_admission);
        match store.create(ns, obj, opts.clone()).await {
            Ok(out) => {
                return Ok(scope.render(out.value, StatusCode::CREATED, &warned(&out.warnings)));
            }
            Err(RegistryError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RegistryError::Conflict {
        resource: ri.group_resource(),
        name: name.into(),
        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
    .into())
}
