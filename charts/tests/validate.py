"""Validates Kubernetes objects strictly against their schemas; used by the schema tests.

Usage: validate.py <kubernetes-version> <crd-file>... < objects.yaml

Built-in kinds are checked with kubernetes-validate (its bundled OpenAPI schemas, strict: an
unknown field is an error). Custom resources are checked against the openAPIV3Schema of the
matching CRD among <crd-file>... (every CRD document in those files, including CRDs that arrive
in the object stream itself), with unknown fields rejected unless the schema preserves them, as
an API server would prune them. An object whose kind has no schema at all is an error.

Prints one line per problem and exits 1 when there is any; prints "ok <n>" otherwise.
"""

import copy
import sys

import jsonschema
import kubernetes_validate
import yaml


def load_all(stream):
    return [d for d in yaml.safe_load_all(stream) if d]


def crd_schemas(docs):
    """(apiVersion, kind) -> openAPIV3Schema of every served version of every CRD in docs."""
    out = {}
    for d in docs:
        if d.get("kind") != "CustomResourceDefinition":
            continue
        spec = d["spec"]
        for v in spec["versions"]:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            if schema is not None:
                out[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = schema
    return out


def strict(schema):
    """A copy of schema rejecting properties it does not declare (the API server prunes them)."""
    s = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for sub in (node.get(key) or {}).values():
                walk(sub)
        for key in ("items", "additionalProperties"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                walk(sub)

    walk(s)
    # metadata is checked by the API server's ObjectMeta schema, not the CRD's
    s.setdefault("properties", {})["metadata"] = {"type": "object"}
    s["properties"].setdefault("apiVersion", {"type": "string"})
    s["properties"].setdefault("kind", {"type": "string"})
    return s


def main():
    version, crd_files = sys.argv[1], sys.argv[2:]
    objects = load_all(sys.stdin)
    crds = []
    for path in crd_files:
        with open(path) as f:
            crds.extend(load_all(f))
    schemas = crd_schemas(crds + objects)
    problems = []
    for obj in objects:
        api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        name = f"{kind} {(obj.get('metadata') or {}).get('namespace', '')}/{(obj.get('metadata') or {}).get('name', '')}"
        schema = schemas.get((api, kind))
        if schema is not None:
            errors = sorted(jsonschema.Draft7Validator(strict(schema)).iter_errors(obj), key=str)
            problems += [f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name}: no schema for {api} {kind} in Kubernetes {version} or the CRDs given")
        except kubernetes_validate.ValidationError as e:
            path = ".".join(map(str, e.caused_by.path)) if getattr(e, "caused_by", None) else ""
            problems.append(f"{name}: {path}: {e.message}")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"ok {len(objects)}")


if __name__ == "__main__":
    main()
