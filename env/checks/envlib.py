"""Readers for the deployment files the env checks compare.

Everything here only reads files: spin.toml, runtime-config.toml, the
Terraform under env/terraform (python-hcl2) and the manifests under env/k8s.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path

import hcl2
import yaml
from hcl2.utils import SerializationOptions

ENV_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = ENV_DIR.parent
TERRAFORM_DIR = ENV_DIR / "terraform"
K8S_DIR = ENV_DIR / "k8s"

_HCL_OPTIONS = SerializationOptions(
    with_comments=False,
    explicit_blocks=False,
    strip_string_quotes=True,
    preserve_heredocs=False,
)


# The SpinKube CRDs this deployment installs: the local Helm chart's crds/,
# byte-for-byte copies of spin-operator's config/crd/bases (Apache-2.0,
# github.com/spinframework/spin-operator, commit 943f5b1 of April 2026).
# The manifests are validated against these, so the check needs nothing
# outside the clone.
CRD_DIR = TERRAFORM_DIR / "charts" / "spinkube-platform" / "crds"


def crd_files() -> list[Path]:
    return sorted(CRD_DIR.glob("*.yaml"))


def reference_crd_dir() -> tuple[Path | None, str]:
    """An independent copy of the SpinKube CRDs to compare CRD_DIR with.

    $SHARED_DIR/schemas/spinkube when SHARED_DIR is set (it must then exist:
    an explicit setting that points nowhere is a mistake, not a skip), else
    ../shared/schemas/spinkube beside the repository when present. Returns
    (path, "") or (None, why there is none).
    """
    override = os.environ.get("SHARED_DIR")
    if override:
        return Path(override) / "schemas" / "spinkube", ""
    default = REPO_ROOT.parent / "shared" / "schemas" / "spinkube"
    if default.is_dir():
        return default, ""
    return None, (
        f"no reference copy of the SpinKube CRDs at {default} (the manifests were still "
        f"validated against {CRD_DIR.relative_to(REPO_ROOT)}); set SHARED_DIR to a folder "
        "holding schemas/spinkube/*.yaml to compare the chart's copies with it"
    )


def parse_hcl_file(path: Path) -> dict:
    return hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=_HCL_OPTIONS)


def terraform_files() -> list[Path]:
    return sorted(TERRAFORM_DIR.rglob("*.tf"))


@lru_cache(maxsize=1)
def terraform() -> dict:
    """All top-level Terraform blocks of env/terraform, merged by kind.

    Returns {"resource": {type: {name: body}}, "variable": {name: body},
    "locals": {name: value}, "output": {name: body}}.
    """
    merged: dict = {"resource": {}, "variable": {}, "locals": {}, "output": {}, "data": {}}
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        doc = parse_hcl_file(path)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    assert name not in merged["resource"].setdefault(rtype, {}), f"duplicate {rtype}.{name}"
                    merged["resource"][rtype][name] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                merged["data"].setdefault(dtype, {}).update(named)
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
        for block in doc.get("locals", []):
            for key, value in block.items():
                assert key not in merged["locals"], f"local.{key} defined twice"
                merged["locals"][key] = value
    return merged


def hcl_literal_list(value) -> list[str]:
    """A list literal, possibly wrapped in toset([...]) as an expression string."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value)
    match = re.fullmatch(r"\$\{toset\(\[(.*)\]\)\}", text, flags=re.S)
    if not match:
        raise ValueError(f"not a literal list: {text[:80]}")
    return re.findall(r'"([^"]*)"', match.group(1))


@lru_cache(maxsize=1)
def spin_manifest() -> dict:
    with open(REPO_ROOT / "spin.toml", "rb") as f:
        return tomllib.load(f)


@lru_cache(maxsize=1)
def runtime_config() -> dict:
    with open(REPO_ROOT / "runtime-config.toml", "rb") as f:
        return tomllib.load(f)


def parse_docstore_containers(spec: str) -> set[tuple[str, str, str]]:
    """'db/container=/pk;...' -> {(db, container, pk)}."""
    out = set()
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        path, sep, pk = item.partition("=")
        db, slash, container = path.partition("/")
        if not (sep and slash and db and container and pk.startswith("/")):
            raise ValueError(f"malformed container spec {item!r}")
        out.add((db, container, pk))
    return out


def private_components(manifest: dict) -> set[str]:
    return {
        t["component"]
        for t in manifest.get("trigger", {}).get("http", [])
        if isinstance(t.get("route"), dict) and t["route"].get("private") is True
    }


def public_components(manifest: dict) -> set[str]:
    return {
        t["component"]
        for t in manifest.get("trigger", {}).get("http", [])
        if isinstance(t.get("route"), str)
    }


def manifest_files(directory: Path = K8S_DIR) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml"))


def k8s_documents(paths: list[Path] | None = None) -> list[tuple[Path, dict]]:
    docs = []
    for path in paths if paths is not None else manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path, doc))
    return docs
