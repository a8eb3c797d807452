#!/usr/bin/env python3
"""Generates src/protobuf/schema.rs, the wire schema of the built-in kinds.

Kubernetes' protobuf wire format is defined by upstream's generated.proto files. Their field
numbers and wire types are taken from the prost code of the `k8s-pb` crate (Apache-2.0,
generated from those files); prost snake-cases field and message names, so the exact JSON
names (which equal the proto field names) and kinds are taken from `k8s-openapi` for the
Kubernetes version kubeboot serves. Fields that `k8s-openapi` does not know (newer than that
version) are left out, so decoding skips them as an apiserver of that version would.

Usage: scripts/gen_protobuf_schema.py [CARGO_REGISTRY_SRC_DIR] > src/protobuf/schema.rs
"""
import glob
import os
import re
import sys

K8S_PB = "k8s-pb-0.9.0"
K8S_OPENAPI = "k8s-openapi-0.29.0"
OPENAPI_VERSION = "v1_33"

# GA group versions served by kubeboot; messages they reference are pulled in too.
ROOTS = [
    "api/admissionregistration/v1", "api/apps/v1", "api/authentication/v1",
    "api/authorization/v1", "api/autoscaling/v1", "api/autoscaling/v2", "api/batch/v1",
    "api/certificates/v1", "api/coordination/v1", "api/core/v1", "api/discovery/v1",
    "api/events/v1", "api/flowcontrol/v1", "api/networking/v1", "api/node/v1",
    "api/policy/v1", "api/rbac/v1", "api/scheduling/v1", "api/storage/v1",
    "kube_aggregator/pkg/apis/apiregistration/v1",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1",
    "apimachinery/pkg/apis/meta/v1", "apimachinery/pkg/runtime",
]

# Messages whose JSON form is not an object of their fields.
SPECIAL = {
    "apimachinery/pkg/apis/meta/v1/Time": "Time",
    "apimachinery/pkg/apis/meta/v1/MicroTime": "MicroTime",
    "apimachinery/pkg/apis/meta/v1/Duration": "Duration",
    "apimachinery/pkg/apis/meta/v1/FieldsV1": "RawJson",
    "apimachinery/pkg/apis/meta/v1/Verbs": "StringArray",
    "apimachinery/pkg/api/resource/Quantity": "Quantity",
    "apimachinery/pkg/api/resource/QuantityValue": "Quantity",
    "apimachinery/pkg/util/intstr/IntOrString": "IntOrString",
    "apimachinery/pkg/runtime/RawExtension": "RawExtension",
    "api/authentication/v1/ExtraValue": "StringArray",
    "api/authorization/v1/ExtraValue": "StringArray",
    "api/certificates/v1/ExtraValue": "StringArray",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1/Json": "RawJson",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaPropsOrStringArray": "SchemaOrStringArray",
}

# Kinds carried under any apiVersion (client-go encodes them with the client's group version).
META_KINDS = ["Status", "DeleteOptions", "WatchEvent", "ListOptions", "GetOptions",
              "CreateOptions", "UpdateOptions", "PatchOptions"]

# Fields whose zero survives decoding, as Go's JSON writes it: scalars without omitempty and
# pointers to scalars, from the Go types (scripts/protobuf_keep_zero.txt, qualified by module);
# other zero scalars are dropped, as Go's JSON drops them when `omitempty`. Required fields
# keep theirs too. Below, pointers to IntOrString, which that list (scalars only) leaves out,
# and autoscaling/v1's Scale replicas, which `kubectl scale --replicas=0` must see.
KEEP_ZERO_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protobuf_keep_zero.txt")
POINTER_FIELDS = {
    "NetworkPolicyPort.port", "PodDisruptionBudgetSpec.maxUnavailable",
    "PodDisruptionBudgetSpec.minAvailable", "RollingUpdateDaemonSet.maxSurge",
    "RollingUpdateDaemonSet.maxUnavailable", "RollingUpdateDeployment.maxSurge",
    "RollingUpdateDeployment.maxUnavailable", "RollingUpdateStatefulSetStrategy.maxUnavailable",
    "ScaleSpec.replicas",
}

STD = {"Option", "Vec", "String", "BTreeMap", "Box", "HashMap"}


def norm(name):
    return name.replace("r#", "").replace("_", "").lower()


def lower_camel(snake):
    snake = snake.replace("r#", "")
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def parse_pb(src, module):
    """Returns {message name: [(field snake name, prost attr, type path or None)]} of one module."""
    path = os.path.join(src, module, "mod.rs")
    text = open(path).read()
    messages = {}
    # An empty message is written `{}` on one line.
    for m in re.finditer(r"pub struct (\w+) \{(?:\}|\n(.*?)\n\})", text, re.S):
        fields = []
        for chunk in (m.group(2) or "").split("#[prost(")[1:]:
            attr, rest = chunk.split(")]", 1)
            fm = re.search(r"pub ((?:r#)?\w+):\s*(.*)", rest, re.S)
            ty = "\n".join(l for l in fm.group(2).splitlines() if not l.strip().startswith("///"))
            ty = re.sub(r"\s+", "", ty).rstrip(",")
            ref = None
            if attr.startswith("message") or "message\"" in attr:
                paths = [p for p in re.findall(r"((?:super::)*(?:[a-z_0-9]+::)*[A-Z]\w*)", ty)
                         if p.split("::")[-1] not in STD]
                ref = resolve(module, paths[-1])
            fields.append((fm.group(1), attr, ref))
        messages[m.group(1)] = fields
    return messages


def resolve(module, path):
    parts = path.split("::")
    base = module.split("/")
    while parts and parts[0] == "super":
        parts.pop(0)
        base = base[:-1]
    return "/".join(base + parts[:-1]) + "#" + parts[-1]


def parse_openapi(src, module):
    """Returns {normalized struct name: (struct name, {normalized field: json}, (apiVersion, kind), required)}."""
    out = {}
    for path in sorted(glob.glob(os.path.join(src, module, "*.rs"))):
        text = open(path).read()
        sm = re.search(r"pub struct (\w+)", text)
        if not sm:
            continue
        fields = {norm(rust): json for json, rust in re.findall(r'"([\w$-]+)" => Field::Key_(\w+)', text)}
        # k8s-openapi names JSONSchemaProps' `$ref` field `ref_path`; prost names it `ref`.
        if "refpath" in fields:
            fields["ref"] = fields["refpath"]
        required = {norm(f) for f, opt in re.findall(r"\n    pub (\w+): (Option<)?", text) if not opt}
        res = None
        rm = re.search(r'impl crate::Resource for \w+ \{\s*const API_VERSION: &\'static str = "([^"]+)";'
                       r'.*?const KIND: &\'static str = "([^"]+)";', text, re.S)
        if rm:
            res = (rm.group(1), rm.group(2))
        out[norm(sm.group(1))] = (sm.group(1), fields, res, required)
    return out


def inlined_names(modules, openapi_of, ref):
    """The JSON names (normalized) an embedded struct adds to its parent: its fields, with the
    fields of structs embedded in it in turn (admissionregistration's NamedRuleWithOperations
    embeds RuleWithOperations, which embeds Rule)."""
    names = set()
    mod, name = ref.split("#")
    oa = openapi_of(mod).get(norm(name))
    for snake, _, inner in modules[mod].get(name, []):
        # A struct k8s-openapi lacks (it only exists embedded) names its fields as they are.
        if oa and norm(snake) not in oa[1] and inner:
            names |= inlined_names(modules, openapi_of, inner)
        else:
            names.add(norm(snake))
    return names


def main():
    reg = sys.argv[1] if len(sys.argv) > 1 else glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))[0]
    pb_src = os.path.join(reg, K8S_PB, "src")
    oa_src = os.path.join(reg, K8S_OPENAPI, "src", OPENAPI_VERSION)
    openapi_cache = {}

    def openapi_of(mod):
        if mod not in openapi_cache:
            openapi_cache[mod] = parse_openapi(oa_src, mod)
        return openapi_cache[mod]

    keep_zero = {l.strip() for l in open(KEEP_ZERO_FILE) if l.strip() and not l.startswith("#")}
    modules, queue = {}, list(ROOTS)
    while queue:
        mod = queue.pop()
        if mod in modules:
            continue
        modules[mod] = parse_pb(pb_src, mod)
        for fields in modules[mod].values():
            for _, _, ref in fields:
                if ref and ref.split("#")[0] not in modules:
                    queue.append(ref.split("#")[0])

    # Assign indices in a stable order.
    order = []
    for mod in sorted(modules):
        for name in sorted(modules[mod]):
            order.append((mod, name))
    index = {f"{mod}#{name}": i for i, (mod, name) in enumerate(order)}

    entries, kinds, dropped = [], [], 0
    for mod, name in order:
        openapi = openapi_of(mod)
        oa = openapi.get(norm(name))
        proto_name = oa[0] if oa else name
        special = SPECIAL.get(f"{mod}/{name}", "None")
        fields = []
        for snake, attr, ref in modules[mod][name]:
            if oa and oa[1]:
                json = oa[1].get(norm(snake))
                if json is None and ref and inlined_names(modules, openapi_of, ref) <= set(oa[1]):
                    # An embedded Go struct: its fields are inlined in the JSON object.
                    json = ""
                elif json is None:
                    dropped += 1
                    continue
            else:
                json = lower_camel(snake)
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            if attr.startswith("btree_map") or attr.startswith("map"):
                key, value = re.search(r'map = "(\w+), (\w+)"', attr).groups()
                assert key == "string", (mod, name, snake, attr)
                label, scalar = "Map", value
            else:
                scalar = re.match(r"(\w+)", attr).group(1)
                label = "Repeated" if "repeated" in attr else "Single"
            if scalar == "message":
                ty = f"Ty::Message({index[ref]})"
            else:
                ty = {"string": "Ty::String", "bytes": "Ty::Bytes", "bool": "Ty::Bool",
                      "int32": "Ty::Int32", "int64": "Ty::Int64", "double": "Ty::Double"}[scalar]
            if json == "":
                label = "Inline"
            keep = (bool(oa and norm(snake) in oa[3])
                    or f"{proto_name}.{json}" in POINTER_FIELDS
                    or f"{mod}/{proto_name}.{json}" in keep_zero)
            fields.append((tag, json, ty, label, keep))
        fields.sort()
        entries.append((mod, proto_name, special, fields))
        if oa and oa[2]:
            api_version, kind = oa[2]
            kinds.append((api_version, kind, index[f"{mod}#{name}"]))
            lst = next((n for n in modules[mod] if norm(n) == norm(kind + "List")), None)
            if lst:
                kinds.append((api_version, kind + "List", index[f"{mod}#{lst}"]))
    meta = "apimachinery/pkg/apis/meta/v1"
    for kind in META_KINDS:
        kinds.append(("*", kind, index[f"{meta}#{kind}"]))
    for kind in ["PartialObjectMetadata", "PartialObjectMetadataList"]:
        kinds.append(("meta.k8s.io/v1", kind, index[f"{meta}#{kind}"]))
    kinds.sort()

    print("// @generated by scripts/gen_protobuf_schema.py from the k8s-pb (field numbers) and")
    print(f"// k8s-openapi {OPENAPI_VERSION} (JSON names) crates; do not edit by hand.")
    print(f"// {len(entries)} messages, {len(kinds)} kinds; {dropped} fields newer than {OPENAPI_VERSION} left out.")
    print("//! Wire schema of the built-in kinds: field numbers, JSON names and types per message.")
    print()
    print("use super::schema_types::{Label::*, Message, Special, Ty, f};")
    print()
    print("/// Every message, indexed by [`Ty::Message`].")
    print(f"pub(super) static MESSAGES: [Message; {len(entries)}] = [")
    for mod, name, special, fields in entries:
        package = "k8s.io." + mod.replace("_", "-").replace("/", ".")
        print(f'    Message {{ name: "{package}.{name}", special: Special::{special}, fields: &[')
        for tag, json, ty, label, keep in fields:
            print(f'        f({tag}, "{json}", {ty}, {label}, {str(keep).lower()}),')
        print("    ] },")
    print("];")
    print()
    print("/// `(apiVersion, kind, message)` sorted; apiVersion `*` matches any.")
    print(f"pub(super) static KINDS: [(&str, &str, u16); {len(kinds)}] = [")
    for api_version, kind, i in kinds:
        print(f'    ("{api_version}", "{kind}", {i}),')
    print("];")


main()
