#!/usr/bin/env python3
"""Generates src/endpoints/openapi/enums.json: the enum values upstream publishes for the fields
of the built-in types, and the "Possible enum values" block its descriptions end with.

k8s-openapi's schemas carry neither (Go's `+enum` markers are not in its source), and
`kubectl explain` prints both. They are read from the OpenAPI v3 documents of a running
kube-apiserver of the served minor version (built as ../shared/upstream/README.md says):

Usage: scripts/gen_openapi_enums.py https://127.0.0.1:6443 CLIENT_CERT CLIENT_KEY > src/endpoints/openapi/enums.json
"""
import json
import ssl
import sys
import urllib.request

base, cert, key = sys.argv[1:4]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.load_cert_chain(cert, key)


def get(path):
    with urllib.request.urlopen(base + path, context=context) as r:
        return json.load(r)


MARKER = "\n\nPossible enum values:"
out = {}
for path, entry in sorted(get("/openapi/v3")["paths"].items()):
    schemas = get(entry["serverRelativeURL"]).get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            if "enum" not in prop:
                continue
            description = prop.get("description", "")
            at = description.find(MARKER)
            out.setdefault(name, {})[field] = {
                "enum": prop["enum"],
                "values": description[at:] if at >= 0 else "",
            }
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
