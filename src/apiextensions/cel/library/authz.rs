//! Upstream's authorizer library (`k8s.io/apiserver/pkg/cel/library/authz.go`), which
//! ValidatingAdmissionPolicy and webhook matchConditions see as `authorizer`:
//! `authorizer.path(p).check(verb)`, `authorizer.group(g).resource(r).namespace(ns).name(n)
//! .subresource(s).check(verb)`, `authorizer.serviceAccount(ns, name)`, and the decision's
//! `allowed()`, `reason()`, `errored()` and `error()`. Who decides is the caller's
//! [`AuthzChecker`], so that this environment knows nothing of the server's authorizers.

use super::{CelResult, Overload, opaque, ret, string_of, values};
use ::cel::common::types::{STRING_TYPE, Type};
use ::cel::common::value::CowVal;
use ::cel::objects::Opaque;
use ::cel::{Env, ExecutionError, Value};
use std::sync::Arc;

const AUTHORIZER: &str = "kubernetes.authorization.Authorizer";
const PATH_CHECK: &str = "kubernetes.authorization.PathCheck";
const GROUP_CHECK: &str = "kubernetes.authorization.GroupCheck";
const RESOURCE_CHECK: &str = "kubernetes.authorization.ResourceCheck";
const DECISION: &str = "kubernetes.authorization.Decision";

/// One authorization question an expression asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzQuery {
    /// Asked for this service account (namespace, name) rather than the request's user.
    pub service_account: Option<(String, String)>,
    /// A non-resource path; `None` for a resource check.
    pub path: Option<String>,
    /// The API group.
    pub group: String,
    /// The resource.
    pub resource: String,
    /// The subresource.
    pub subresource: String,
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The verb.
    pub verb: String,
}

/// What the authorizer answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Why, as the authorizer says.
    pub reason: String,
    /// What went wrong deciding, if anything.
    pub error: Option<String>,
}

/// Decides the questions of one request's expressions.
pub trait AuthzChecker: Send + Sync {
    /// Answers `query`.
    fn check(&self, query: &AuthzQuery) -> AuthzDecision;
}

/// An authorizer, path check, group check or resource check: the question so far.
#[derive(Clone)]
struct Check {
    checker: Arc<dyn AuthzChecker>,
    query: AuthzQuery,
    type_name: &'static str,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:?})", self.type_name, self.query)
    }
}

impl PartialEq for Check {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.checker), Arc::as_ptr(&other.checker))
            && self.query == other.query
            && self.type_name == other.type_name
    }
}

impl Eq for Check {}

impl Opaque for Check {
    fn runtime_type_name(&self) -> &str {
        self.type_name
    }
}

impl Opaque for AuthzDecision {
    fn runtime_type_name(&self) -> &str {
        DECISION
    }
}

/// The `authorizer` variable: questions asked for the request's user, decided by `checker`.
pub fn authorizer(checker: Arc<dyn AuthzChecker>) -> Value {
    Value::Opaque(Arc::new(Check {
        checker,
        query: AuthzQuery::default(),
        type_name: AUTHORIZER,
    }))
}

/// The `authorizer.requestResource` variable: a resource check of the request's own resource.
pub fn request_resource(checker: Arc<dyn AuthzChecker>, query: AuthzQuery) -> Value {
    Value::Opaque(Arc::new(Check {
        checker,
        query,
        type_name: RESOURCE_CHECK,
    }))
}

/// Registers the authorizer library's functions.
pub(super) fn register(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    let t = |name: &'static str| Type::new_opaque_type(name);
    env.add_member_overload(
        "path",
        "authorizer_path",
        t(AUTHORIZER),
        vec![STRING_TYPE],
        path,
    )?;
    env.add_member_overload(
        "group",
        "authorizer_group",
        t(AUTHORIZER),
        vec![STRING_TYPE],
        group,
    )?;
    env.add_member_overload(
        "serviceAccount",
        "authorizer_serviceaccount",
        t(AUTHORIZER),
        vec![STRING_TYPE, STRING_TYPE],
        service_account,
    )?;
    env.add_member_overload(
        "resource",
        "groupcheck_resource",
        t(GROUP_CHECK),
        vec![STRING_TYPE],
        resource,
    )?;
    for (function, id, op) in [
        (
            "subresource",
            "resourcecheck_subresource",
            subresource as Overload,
        ),
        ("namespace", "resourcecheck_namespace", namespace),
        ("name", "resourcecheck_name", name),
    ] {
        env.add_member_overload(function, id, t(RESOURCE_CHECK), vec![STRING_TYPE], op)?;
    }
    env.add_member_overload(
        "check",
        "pathcheck_check",
        t(PATH_CHECK),
        vec![STRING_TYPE],
        check,
    )?;
    env.add_member_overload(
        "check",
        "resourcecheck_check",
        t(RESOURCE_CHECK),
        vec![STRING_TYPE],
        check,
    )?;
    env.add_member_overload("allowed", "decision_allowed", t(DECISION), vec![], allowed)?;
    env.add_member_overload("reason", "decision_reason", t(DECISION), vec![], reason)?;
    env.add_member_overload("errored", "decision_errored", t(DECISION), vec![], errored)?;
    env.add_member_overload("error", "decision_error", t(DECISION), vec![], error)?;
    Ok(())
}

/// The receiver, a check.
fn receiver<'a>(v: &'a Value, function: &str) -> Result<&'a Check, ExecutionError> {
    opaque::<Check>(v, function)
}

/// The receiver with its question changed by `f`, as a check of type `type_name`.
fn next<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    type_name: &'static str,
    f: impl FnOnce(&mut AuthzQuery, &[Value]) -> Result<(), ExecutionError>,
) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let mut check = receiver(&args[0], function)?.clone();
    f(&mut check.query, &args[1..])?;
    check.type_name = type_name;
    ret(Value::Opaque(Arc::new(check)))
}

fn path<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "path", PATH_CHECK, |q, a| {
        q.path = Some(string_of(&a[0], "path")?.to_string());
        Ok(())
    })
}

fn group<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "group", GROUP_CHECK, |q, a| {
        q.group = string_of(&a[0], "group")?.to_string();
        Ok(())
    })
}

fn service_account<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "serviceAccount", AUTHORIZER, |q, a| {
        q.service_account = Some((
            string_of(&a[0], "serviceAccount")?.to_string(),
            string_of(&a[1], "serviceAccount")?.to_string(),
        ));
        Ok(())
    })
}

fn resource<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "resource", RESOURCE_CHECK, |q, a| {
        q.resource = string_of(&a[0], "resource")?.to_string();
        Ok(())
    })
}

fn subresource<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "subresource", RESOURCE_CHECK, |q, a| {
        q.subresource = string_of(&a[0], "subresource")?.to_string();
        Ok(())
    })
}

fn namespace<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "namespace", RESOURCE_CHECK, |q, a| {
        q.namespace = string_of(&a[0], "namespace")?.to_string();
        Ok(())
    })
}

fn name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    next(args, "name", RESOURCE_CHECK, |q, a| {
        q.name = string_of(&a[0], "name")?.to_string();
        Ok(())
    })
}

fn check<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let check = receiver(&args[0], "check")?;
    let mut query = check.query.clone();
    query.verb = string_of(&args[1], "check")?.to_string();
    let decision = check.checker.check(&query);
    ret(Value::Opaque(Arc::new(decision)))
}

fn decision_of<'a>(v: &'a Value, function: &str) -> Result<&'a AuthzDecision, ExecutionError> {
    opaque::<AuthzDecision>(v, function)
}

fn allowed<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(decision_of(&args[0], "allowed")?.allowed))
}

fn reason<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let reason = decision_of(&args[0], "reason")?.reason.clone();
    ret(Value::String(Arc::new(reason)))
}

fn errored<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(
        decision_of(&args[0], "errored")?.error.is_some(),
    ))
}

fn error<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let error = decision_of(&args[0], "error")?
        .error
        .clone()
        .unwrap_or_default();
    ret(Value::String(Arc::new(error)))
}

#[cfg(test)]
mod tests {
    use super::super::env;
    use super::*;
    use std::sync::Mutex;

    /// Allows what `alice` may do by the rules of the test: get pods in `team`, and `/healthz`.
    #[derive(Default)]
    struct Rules(Mutex<Vec<AuthzQuery>>);

    impl AuthzChecker for Rules {
        fn check(&self, query: &AuthzQuery) -> AuthzDecision {
            self.0.lock().unwrap().push(query.clone());
            let allowed = query.service_account.is_none()
                && (query.path.as_deref() == Some("/healthz")
                    || query.resource == "pods"
                        && query.namespace == "team"
                        && query.verb == "get");
            AuthzDecision {
                allowed,
                reason: if allowed {
                    "rule".into()
                } else {
                    String::new()
                },
                error: (query.resource == "broken").then(|| "unreachable".into()),
            }
        }
    }

    #[test]
    fn expressions_ask_the_checker_what_they_build() {
        let rules = Arc::new(Rules::default());
        let checker: Arc<dyn AuthzChecker> = rules.clone();
        let own = AuthzQuery {
            resource: "pods".into(),
            namespace: "team".into(),
            name: "web".into(),
            ..Default::default()
        };
        let eval = |source: &str| {
            let program = env().compile(source).unwrap();
            let mut ctx = ::cel::Context::with_env(env().clone());
            ctx.add_variable_from_value("authorizer", authorizer(checker.clone()));
            ctx.add_variable_from_value(
                "authorizer.requestResource",
                request_resource(checker.clone(), own.clone()),
            );
            program.execute(&ctx)
        };
        for (source, want) in [
            (
                "authorizer.group('').resource('pods').namespace('team').check('get').allowed()",
                true,
            ),
            (
                "authorizer.group('').resource('pods').namespace('other').check('get').allowed()",
                false,
            ),
            ("authorizer.path('/healthz').check('get').allowed()", true),
            (
                "authorizer.path('/healthz').check('get').reason() == 'rule'",
                true,
            ),
            (
                "authorizer.serviceAccount('team', 'bot').group('').resource('pods').namespace('team').check('get').allowed()",
                false,
            ),
            (
                "authorizer.group('x').resource('broken').check('get').errored()",
                true,
            ),
            (
                "authorizer.group('x').resource('broken').check('get').error() == 'unreachable'",
                true,
            ),
            ("authorizer.requestResource.check('get').allowed()", true),
            (
                "authorizer.requestResource.subresource('status').name('db').check('update').allowed()",
                false,
            ),
        ] {
            assert_eq!(eval(source), Ok(Value::Bool(want)), "{source}");
        }
        let asked = rules.0.lock().unwrap();
        assert_eq!(
            asked[4].service_account,
            Some(("team".to_string(), "bot".to_string()))
        );
        assert_eq!(
            asked[8],
            AuthzQuery {
                subresource: "status".into(),
                name: "db".into(),
                verb: "update".into(),
                ..own.clone()
            }
        );
    }
}
