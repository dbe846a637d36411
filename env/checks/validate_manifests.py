"""Validate every manifest under env/k8s.

Built-in kinds go through kubernetes-validate (strict: unknown fields are
errors, as `kubectl apply` with server-side field validation makes them) for
the AKS Kubernetes minor Terraform deploys. SpinApp and SpinAppExecutor go
through jsonschema against the openAPIV3Schema of the SpinKube CRDs the
deployment installs (envlib.CRD_DIR, the local chart's crds/), made strict
the same way. cert-manager Issuer and Certificate go through the strict
subset schema of certmanager_schema.py. Any other kind fails: a
manifest nothing can check is not allowed in here.

Prints one line per problem and a summary line; exit status 1 on any problem.
"""

from __future__ import annotations

import copy
import sys

import jsonschema
import kubernetes_validate
import yaml

import certmanager_schema
import envlib


def kubernetes_version() -> str:
    minor = envlib.terraform()["variable"]["kubernetes_version"]["default"]
    return f"{minor}.0"


def strict(schema):
    """Close every object schema that lists properties, like the API server's
    strict field validation (CRD schemas are structural, so this matches)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in envlib.crd_files():
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    for key, schema in certmanager_schema.SCHEMAS.items():
        validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def main() -> int:
    version = kubernetes_version()
    validators = crd_validators()
    if not validators:
        print(f"FAIL no CRDs found under {envlib.CRD_DIR.relative_to(envlib.REPO_ROOT)}")
        return 1
    counts = {"builtin": 0, "crd": 0, "cert-manager": 0}
    problems = 0
    for path, doc in envlib.k8s_documents():
        where = f"{path.relative_to(envlib.REPO_ROOT)}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in validators:
            errors = sorted(validators[key].iter_errors(doc), key=lambda e: list(e.path))
            for error in errors:
                print(f"FAIL {where}: {'.'.join(map(str, error.path)) or '<root>'}: {error.message}")
            problems += len(errors)
            counts["cert-manager" if key in certmanager_schema.SCHEMAS else "crd"] += 1
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            counts["builtin"] += 1
        except kubernetes_validate.ValidationError as error:
            print(f"FAIL {where}: {'.'.join(map(str, error.path)) or '<root>'}: {error.message}")
            problems += 1
        except kubernetes_validate.SchemaNotFoundError:
            print(f"FAIL {where}: no schema for {key[0]} {key[1]} (neither built-in nor a SpinKube CRD)")
            problems += 1
    total = sum(counts.values())
    print(f"manifests: {total} objects checked ({counts['builtin']} built-in against Kubernetes {version}, "
          f"{counts['crd']} SpinKube against {envlib.CRD_DIR.relative_to(envlib.REPO_ROOT)}, "
          f"{counts['cert-manager']} cert-manager against the subset in certmanager_schema.py), "
          f"{problems} problem(s)")
    return 1 if problems or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
