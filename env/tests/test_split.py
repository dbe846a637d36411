"""The split deployment (env/k8s/split, issue 14) is consistent.

Each split SpinApp declares exactly its split manifest's variables and runs
as its own identity with Key Vault access to exactly its own secrets; the
NetworkPolicies admit exactly the hop chain through the mTLS terminators;
the [[client_tls]] files are where the SpinApps mount them; the terminators
are configured from the shared template; and every SpinApp, composed or
split, has a PDB and an HPA. These tests read files only (and run
env/scripts/render-terminator.sh, which runs envsubst).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

import envlib

TF = envlib.terraform()
RESOURCES = TF["resource"]
LOCALS = TF["locals"]
NAMESPACE = TF["variable"]["app_namespace"]["default"]
SPLIT_DIR = envlib.K8S_DIR / "split"
SPLIT_MANIFEST_DIR = envlib.REPO_ROOT / "split"
TEMPLATE = envlib.ENV_DIR / "mtls" / "terminator.conf.template"
RENDER = envlib.ENV_DIR / "scripts" / "render-terminator.sh"

SPLIT_DOCS = [doc for _, doc in envlib.k8s_documents(envlib.manifest_files(SPLIT_DIR))]
MAIN_DOCS = [doc for _, doc in envlib.k8s_documents(sorted(envlib.K8S_DIR.glob("*.yaml")))]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


SPLIT_APPS = by_kind(SPLIT_DOCS, "SpinApp")
MAIN_APPS = by_kind(MAIN_DOCS, "SpinApp")
SERVICES = ("gateway", "patient-api", "audit-api")
APP = {svc: f"patient-records-{svc}" for svc in SERVICES}
# Who calls whom, and through which variable (common.md, issue 14).
HOPS = {"gateway": ("patient-api", "patientapiurl"), "patient-api": ("audit-api", "auditapiurl")}

# The app variables of each split manifest as decided for issue 14
# (briefs/common.md). When split/<svc>.toml exists, its [variables] are
# read and must agree with these.
DECIDED_VARIABLES = {
    "gateway": {"subscriptions", "healthkey", "gatewaypolicy", "patientapiurl", "patientapikey"},
    "patient-api": {"patientapiprimarykey", "patientapisecondarykey", "auditapiurl", "auditapikey",
                    "cosmosendpoint", "cosmoskey"},
    "audit-api": {"auditapiprimarykey", "auditapisecondarykey", "cosmosendpoint", "cosmoskey"},
}
PLAIN = {"gatewaypolicy", "patientapiurl", "auditapiurl", "cosmosendpoint"}


def split_manifest(svc: str) -> dict | None:
    path = SPLIT_MANIFEST_DIR / f"{svc}.toml"
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return tomllib.load(f)


def declared_variables(svc: str) -> dict[str, dict]:
    manifest = split_manifest(svc)
    if manifest is None:
        return {name: {"secret": name not in PLAIN} for name in DECIDED_VARIABLES[svc]}
    return manifest.get("variables", {})


def tf_string(value: str) -> str:
    """A Terraform string with ${var.x} of a defaulted variable filled in."""
    return re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: TF["variable"][m.group(1)]["default"], value)


def plain_variables(app: dict) -> dict[str, dict]:
    return {v["name"]: v for v in app["spec"].get("variables", [])}


def terminator_url(svc: str) -> str:
    return f"https://patient-records-{svc}-mtls.{NAMESPACE}.svc.cluster.local"


# --- manifests and variables -------------------------------------------------------------


@pytest.mark.parametrize("svc", SERVICES)
def test_split_manifest_is_present(svc):
    if split_manifest(svc) is None:
        pytest.skip(f"split/{svc}.toml not on this branch yet (helper split-host); "
                    "the variable tests used the names decided in issue 14")


@pytest.mark.parametrize("svc", SERVICES)
def test_split_manifest_declares_the_decided_variables(svc):
    assert set(declared_variables(svc)) == DECIDED_VARIABLES[svc]


@pytest.mark.parametrize("svc", SERVICES)
def test_each_split_spinapp_sets_exactly_its_manifests_variables(svc):
    # Plain values in the SpinApp, secrets through the service's own Key
    # Vault grants: together exactly [variables], nothing twice.
    declared = declared_variables(svc)
    plain = set(plain_variables(SPLIT_APPS[APP[svc]]))
    secrets = set(LOCALS["split_services"][svc]["secrets"])
    assert not plain & secrets, f"{svc}: {sorted(plain & secrets)} both plain and Key Vault"
    assert plain | secrets == set(declared), (
        f"{svc}: missing {sorted(set(declared) - plain - secrets)}, extra {sorted((plain | secrets) - set(declared))}")
    for name in plain:
        assert not declared[name].get("secret"), f"{svc}: secret {name} must come from Key Vault"
    for name in secrets:
        assert declared[name].get("secret"), f"{svc}: {name} is not secret, keep it out of Key Vault"


def test_split_secrets_are_key_vault_secrets_terraform_creates():
    created = set(envlib.hcl_literal_list(LOCALS["spin_variables"]))
    for svc, s in LOCALS["split_services"].items():
        assert set(s["secrets"]) <= created, f"{svc}: {sorted(set(s['secrets']) - created)} not in Key Vault"


@pytest.mark.parametrize("svc", SERVICES)
def test_split_manifest_may_call_only_the_next_service(svc):
    manifest = split_manifest(svc)
    if manifest is None:
        pytest.skip(f"split/{svc}.toml not on this branch yet")
    hosts = {h for c in manifest["component"].values() for h in c.get("allowed_outbound_hosts", [])}
    expected = {"{{ %s }}" % HOPS[svc][1]} if svc in HOPS else set()
    expected |= {"{{ cosmosendpoint }}"} if "cosmosendpoint" in DECIDED_VARIABLES[svc] else set()
    assert hosts == expected, hosts


@pytest.mark.parametrize("svc", list(HOPS))
def test_hop_urls_are_the_https_terminator_services(svc):
    target, variable = HOPS[svc]
    url = plain_variables(SPLIT_APPS[APP[svc]])[variable]["value"]
    assert url == terminator_url(target)
    service = by_kind(SPLIT_DOCS, "Service")[f"patient-records-{target}-mtls"]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(443, "https")]
    deployment = by_kind(SPLIT_DOCS, "Deployment")[f"patient-records-{target}-mtls"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert (port["name"], port["containerPort"]) == ("https", 8443)


def test_split_apps_run_the_components_of_their_manifest():
    for svc in SERVICES:
        manifest = split_manifest(svc)
        components = set(SPLIT_APPS[APP[svc]]["spec"]["components"])
        if manifest is not None:
            assert components == set(manifest["component"]) - {"docstore"}, svc
        assert svc in components
        assert SPLIT_APPS[APP[svc]]["spec"]["image"] == "${ACR_LOGIN_SERVER}/%s:${APP_VERSION}" % APP[svc]


# --- identity ----------------------------------------------------------------------------


def test_each_split_app_has_its_own_service_account_and_federated_identity():
    accounts = by_kind(SPLIT_DOCS, "ServiceAccount")
    fic = RESOURCES["azurerm_federated_identity_credential"]["split"]
    assert fic["for_each"] == "${local.split_services}"
    assert fic["subject"] == "system:serviceaccount:${var.app_namespace}:${each.value.service_account}"
    assert fic["parent_id"] == "${azurerm_user_assigned_identity.split[each.key].id}"
    assert RESOURCES["azurerm_user_assigned_identity"]["split"]["for_each"] == "${local.split_services}"
    exported = TF["output"]["deploy_env"]["value"]
    seen = set()
    for svc in SERVICES:
        app = SPLIT_APPS[APP[svc]]
        account = tf_string(LOCALS["split_services"][svc]["service_account"])
        assert app["spec"]["serviceAccountName"] == account
        assert account not in seen
        seen.add(account)
        assert app["spec"]["podLabels"]["azure.workload.identity/use"] == "true"
        sa = accounts[account]
        assert sa["automountServiceAccountToken"] is False
        placeholder = re.fullmatch(r"\$\{([A-Z_]+)\}", sa["metadata"]["annotations"]["azure.workload.identity/client-id"])
        assert placeholder, sa["metadata"]["annotations"]
        line = next(l for l in exported.splitlines() if l.strip().startswith(f"export {placeholder.group(1)}="))
        assert f'azurerm_user_assigned_identity.split["{svc}"].client_id' in line.replace('\\"', '"')


def test_split_identities_read_only_their_own_secrets_one_by_one():
    grants = RESOURCES["azurerm_role_assignment"]["split_key_vault_secret_user"]
    assert grants["for_each"] == "${local.split_secret_grants}"
    assert grants["role_definition_name"] == "Key Vault Secrets User"
    # Scoped to the one secret (versionless: rotations write new versions).
    assert grants["scope"] == "${azurerm_key_vault_secret.spin_variable[each.value.secret].resource_versionless_id}"
    assert grants["principal_id"] == "${azurerm_user_assigned_identity.split[each.value.service].principal_id}"
    # No split identity has any other Azure RBAC grant.
    others = [name for name, body in RESOURCES["azurerm_role_assignment"].items()
              if "azurerm_user_assigned_identity.split" in body["principal_id"] and name != "split_key_vault_secret_user"]
    assert not others, others


def test_only_the_split_gateway_reaches_the_key_value_container():
    kv = [body for body in RESOURCES["azurerm_cosmosdb_sql_role_assignment"].values()
          if "azurerm_user_assigned_identity.split" in body["principal_id"]]
    assert [b["principal_id"] for b in kv] == ['${azurerm_user_assigned_identity.split["gateway"].principal_id}']


# --- network paths -------------------------------------------------------------------------

# Every pod that matters, with its namespace, labels and an address in the pod
# CIDR. Labels are what the manifests give them.
def pods() -> dict[str, dict]:
    out = {"ingress-controller": {"namespace": "app-routing-system", "labels": {"app.kubernetes.io/name": "nginx"}}}
    for name, app in SPLIT_APPS.items():
        out[name] = {"namespace": NAMESPACE, "labels": app["spec"]["podLabels"]}
    for name, dep in by_kind(SPLIT_DOCS, "Deployment").items():
        out[name] = {"namespace": NAMESPACE, "labels": dep["spec"]["template"]["metadata"]["labels"]}
    for i, pod in enumerate(out.values()):
        pod["ip"] = ipaddress.ip_address(f"192.168.{i}.10")
    return out


def selects(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and present and value in expr["values"]) \
                or (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def peer_matches(peer: dict, pod: dict, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return pod["ip"] in ipaddress.ip_network(block["cidr"]) and not any(
            pod["ip"] in ipaddress.ip_network(c) for c in block.get("except", []))
    ns_ok = (selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": pod["namespace"]})
             if "namespaceSelector" in peer else pod["namespace"] == policy_ns)
    pod_ok = selects(peer["podSelector"], pod["labels"]) if "podSelector" in peer else True
    return ns_ok and pod_ok


def rules_allow(rules: list[dict], direction: str, other: dict, port: int, policy_ns: str) -> bool:
    key = "from" if direction == "ingress" else "to"
    for rule in rules:
        peers_ok = key not in rule or any(peer_matches(p, other, policy_ns) for p in rule[key])
        ports_ok = "ports" not in rule or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP"
                                              for p in rule["ports"])
        if peers_ok and ports_ok:
            return True
    return False


def allowed(policies: list[dict], src: dict, dst: dict, port: int) -> bool:
    """Standard NetworkPolicy semantics: a direction is isolated once a
    policy of that type selects the pod; then some such policy must allow."""
    def side(pod, direction, other):
        if pod["namespace"] != NAMESPACE:
            return True  # only this namespace's policies are modelled
        selecting = [p for p in policies if direction.capitalize() in p["spec"]["policyTypes"]
                     and selects(p["spec"]["podSelector"], pod["labels"])]
        if not selecting:
            return True
        return any(rules_allow(p["spec"].get(direction, []), direction, other, port, p["metadata"]["namespace"])
                   for p in selecting)
    return side(src, "egress", dst) and side(dst, "ingress", src)


def test_split_network_policies_admit_exactly_the_hop_chain():
    base = [doc for _, doc in envlib.k8s_documents([envlib.K8S_DIR / "networkpolicy-base.yaml"])]
    policies = base + list(by_kind(SPLIT_DOCS, "NetworkPolicy").values())
    everyone = pods()
    expected = {
        ("ingress-controller", "patient-records-gateway", 80),
        ("patient-records-gateway", "patient-records-patient-api-mtls", 8443),
        ("patient-records-patient-api-mtls", "patient-records-patient-api", 80),
        ("patient-records-patient-api", "patient-records-audit-api-mtls", 8443),
        ("patient-records-audit-api-mtls", "patient-records-audit-api", 80),
    }
    actual = {
        (s, d, port)
        for s, src in everyone.items() for d, dst in everyone.items() if s != d
        for port in (80, 443, 8080, 8443)
        if allowed(policies, src, dst, port)
    }
    assert actual == expected, f"extra {sorted(actual - expected)}, missing {sorted(expected - actual)}"


def test_the_gateway_reaches_nothing_of_audit_api():
    policies = list(by_kind(MAIN_DOCS, "NetworkPolicy").values()) + list(by_kind(SPLIT_DOCS, "NetworkPolicy").values())
    everyone = pods()
    for target in ("patient-records-audit-api", "patient-records-audit-api-mtls"):
        for port in (80, 443, 8443):
            assert not allowed(policies, everyone["patient-records-gateway"], everyone[target], port)


def test_composed_network_policies_admit_only_the_ingress_controller():
    policies = list(by_kind(MAIN_DOCS, "NetworkPolicy").values())
    controller = {"namespace": "app-routing-system", "labels": {}, "ip": ipaddress.ip_address("192.168.0.10")}
    app = {"namespace": NAMESPACE, "labels": MAIN_APPS["patient-records"]["spec"]["podLabels"],
           "ip": ipaddress.ip_address("192.168.1.10")}
    assert allowed(policies, controller, app, 80)
    assert not allowed(policies, controller, app, 8443)
    other = dict(app, ip=ipaddress.ip_address("192.168.2.10"))
    assert not allowed(policies, other, app, 80)


# --- client TLS ------------------------------------------------------------------------


def split_runtime_config(svc: str) -> dict:
    """runtime-config.toml plus, for a calling app, the rendered client_tls
    template, as output split_runtime_config_toml builds it."""
    text = (envlib.REPO_ROOT / "runtime-config.toml").read_text(encoding="utf-8")
    if svc in LOCALS["split_client_tls"]:
        hop = LOCALS["split_client_tls"][svc]
        mtls = LOCALS["split_mtls_dir"]
        values = {
            "component": hop["component"],
            "host": tf_string(hop["host"]),
            "ca_roots_file": f"{mtls}/trust/ca.crt",
            "client_cert_file": f"{mtls}/client/tls.crt",
            "client_private_key_file": f"{mtls}/client/tls.key",
        }
        template = (envlib.TERRAFORM_DIR / "templates" / "client-tls.toml.tftpl").read_text(encoding="utf-8")
        used = set(re.findall(r"\$\{([a-z_]+)\}", template))
        assert used == set(values), used
        # The output passes exactly these (and the paths are these).
        output = TF["output"]["split_runtime_config_toml"]["value"]
        for name in values:
            assert f"{name}" in output
        text += re.sub(r"\$\{([a-z_]+)\}", lambda m: values[m.group(1)], template)
    return tomllib.loads(text)


def mounted_files(app: dict) -> dict[str, str]:
    """Absolute path -> Secret name, for every Secret item the app mounts."""
    volumes = {v["name"]: v for v in app["spec"].get("volumes", [])}
    files = {}
    for mount in app["spec"].get("volumeMounts", []):
        secret = volumes[mount["name"]]["secret"]
        assert mount.get("readOnly") is True
        for item in secret["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = secret["secretName"]
    return files


def test_output_builds_a_runtime_config_per_split_app():
    output = TF["output"]["split_runtime_config_toml"]["value"]
    assert '["gateway", "patient-api", "audit-api"]' in output
    assert "client-tls.toml.tftpl" in output and "runtime-config.toml" in output
    assert "${local.split_mtls_dir}/trust/ca.crt" in output
    assert "${local.split_mtls_dir}/client/tls.crt" in output
    assert "${local.split_mtls_dir}/client/tls.key" in output
    for svc in SERVICES:
        assert SPLIT_APPS[APP[svc]]["spec"]["runtimeConfig"] == {"loadFromSecret": f"{APP[svc]}-runtime-config"}


@pytest.mark.parametrize("svc", SERVICES)
def test_client_tls_files_are_the_spinapps_mounts(svc):
    config = split_runtime_config(svc)
    app = SPLIT_APPS[APP[svc]]
    files = mounted_files(app)
    entries = config.get("client_tls", [])
    if svc not in HOPS:
        assert not entries and not files, f"{svc} calls no one: no client certificate"
        return
    target, variable = HOPS[svc]
    [entry] = entries
    assert entry["component_ids"] == [svc] and svc in app["spec"]["components"]
    url = plain_variables(app)[variable]["value"]
    assert entry["hosts"] == [url.removeprefix("https://")]
    assert entry["ca_use_webpki_roots"] is False, "trust the private CA only"
    assert files[entry["client_cert_file"]] == files[entry["client_private_key_file"]] == f"{APP[svc]}-client"
    assert files[entry["ca_roots_file"]] == "patient-records-mtls-trust"
    # Reloader restarts the pods when any mounted Secret or the config changes.
    reload = set(app["spec"]["deploymentAnnotations"]["secret.reloader.stakater.com/reload"].split(","))
    assert reload == set(files.values()) | {f"{APP[svc]}-runtime-config"}


def certificates() -> dict[str, dict]:
    return by_kind(SPLIT_DOCS, "Certificate")


def test_client_certificates_carry_the_caller_identity():
    certs = certificates()
    for svc in HOPS:
        cert = certs[f"{APP[svc]}-client"]["spec"]
        assert cert["secretName"] == f"{APP[svc]}-client"
        assert cert["commonName"] == svc
        assert cert["usages"] == ["client auth", "digital signature"]
        assert cert["privateKey"]["encoding"] == "PKCS8"
        assert cert["issuerRef"]["name"] == "patient-records-mtls-ca"


def test_private_ca_chain_and_server_certificates():
    certs, issuers = certificates(), by_kind(SPLIT_DOCS, "Issuer")
    ca = certs["patient-records-mtls-ca"]["spec"]
    assert ca["isCA"] is True and "selfSigned" in issuers[ca["issuerRef"]["name"]]["spec"]
    assert issuers["patient-records-mtls-ca"]["spec"]["ca"]["secretName"] == ca["secretName"]
    for target in ("patient-api", "audit-api"):
        cert = certs[f"patient-records-{target}-mtls-server"]["spec"]
        assert terminator_url(target).removeprefix("https://") in cert["dnsNames"]
        assert "server auth" in cert["usages"]
    for name, cert in certs.items():
        if name != "patient-records-mtls-ca":
            spec = cert["spec"]
            assert spec["renewBefore"] and spec["privateKey"]["rotationPolicy"] == "Always", name
            assert spec["issuerRef"]["name"] == "patient-records-mtls-ca", name


# --- terminators -----------------------------------------------------------------------------


def values_file(target: str) -> dict[str, str]:
    out = {}
    for line in (SPLIT_DIR / "terminators" / f"{target}.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def terminator_mounts(dep: dict) -> dict[str, tuple[str, str]]:
    """Absolute path -> (kind, object name) for every ConfigMap/Secret item."""
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = {}
    for mount in pod["containers"][0]["volumeMounts"]:
        volume = volumes[mount["name"]]
        for kind, field in (("Secret", "secret"), ("ConfigMap", "configMap")):
            if field in volume:
                name = volume[field].get("secretName") or volume[field].get("name")
                for item in volume[field]["items"]:
                    files[f"{mount['mountPath']}/{item['path']}"] = (kind, name)
    return files


@pytest.mark.parametrize("target,caller", [("patient-api", "gateway"), ("audit-api", "patient-api")])
def test_terminator_values_match_its_deployment(target, caller):
    name = f"patient-records-{target}-mtls"
    dep = by_kind(SPLIT_DOCS, "Deployment")[name]
    files = terminator_mounts(dep)
    values = values_file(target)
    assert files[values["SERVER_CERT"]] == files[values["SERVER_KEY"]] == ("Secret", f"{name}-server")
    assert files[values["CLIENT_CA"]] == ("Secret", "patient-records-mtls-trust")
    assert values["ALLOWED_CLIENT_CN"] == certificates()[f"patient-records-{caller}-client"]["spec"]["commonName"]
    assert values["UPSTREAM"] == f"http://patient-records-{target}.{NAMESPACE}.svc.cluster.local:80"
    assert values["LISTEN_PORT"] == "8443"
    assert values["SERVER_NAME"] == terminator_url(target).removeprefix("https://")
    # nginx runs the rendered ConfigMap (one key, nginx.conf).
    container = dep["spec"]["template"]["spec"]["containers"][0]
    conf = container["args"][container["args"].index("-c") + 1]
    assert files[conf] == ("ConfigMap", name)
    annotations = dep["metadata"]["annotations"]
    assert set(annotations["secret.reloader.stakater.com/reload"].split(",")) == {
        n for kind, n in files.values() if kind == "Secret"}
    assert annotations["configmap.reloader.stakater.com/reload"] == name


def test_terminators_are_hardened():
    for name, dep in by_kind(SPLIT_DOCS, "Deployment").items():
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["limits"] and container["resources"]["requests"]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert "nginx-unprivileged:" in container["image"] and not container["image"].endswith(":latest")


def test_readme_documents_rendering_the_terminator_configmaps():
    readme = (envlib.ENV_DIR / "README.md").read_text(encoding="utf-8")
    for target in ("patient-api", "audit-api"):
        assert (f"env/scripts/render-terminator.sh env/k8s/split/terminators/{target}.env" in readme
                or "env/scripts/render-terminator.sh \"env/k8s/split/terminators/$svc.env\"" in readme)
    assert "create configmap" in readme


@pytest.mark.parametrize("target", ["patient-api", "audit-api"])
def test_terminator_config_is_rendered_from_the_shared_template(target, tmp_path):
    if not TEMPLATE.exists():
        pytest.skip(f"{TEMPLATE.relative_to(envlib.REPO_ROOT)} not on this branch yet (helper split-host)")
    if not shutil.which("envsubst"):
        pytest.skip("envsubst not installed (gettext-base)")
    out = subprocess.run(["bash", str(RENDER), str(SPLIT_DIR / "terminators" / f"{target}.env")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert not re.search(r"\$\{[A-Z][A-Z0-9_]*\}", out.stdout), "placeholder left unrendered"
    # nginx's own variables survive (only the template's placeholders are substituted).
    nginx_vars = set(re.findall(r"\$[a-z_]+", TEMPLATE.read_text(encoding="utf-8")))
    assert nginx_vars <= set(re.findall(r"\$[a-z_]+", out.stdout))
    for value in values_file(target).values():
        assert value in out.stdout


def test_render_script_refuses_a_values_file_that_disagrees_with_the_template(tmp_path):
    if not shutil.which("envsubst"):
        pytest.skip("envsubst not installed (gettext-base)")
    template = tmp_path / "t.conf"
    template.write_text('listen ${PORT} ssl;\nif ($ssl_client_s_dn !~ "CN=${CN}") { return 403; }\n')
    values = tmp_path / "v.env"
    values.write_text("PORT=8443\nCN=gateway\n")
    ok = subprocess.run(["bash", str(RENDER), str(values), str(template)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == 'listen 8443 ssl;\nif ($ssl_client_s_dn !~ "CN=gateway") { return 403; }\n'
    for text, complaint in (("PORT=8443\n", "does not set CN"), ("PORT=8443\nCN=gateway\nEXTRA=1\n", "EXTRA"),
                            ("PORT=8443\nCN=\n", "CN is empty"), ("port=1\n", "not NAME=value")):
        values.write_text(text)
        bad = subprocess.run(["bash", str(RENDER), str(values), str(template)], capture_output=True, text=True)
        assert bad.returncode == 1 and complaint in bad.stderr, (text, bad.stderr)
        assert bad.stdout == ""


# --- availability ---------------------------------------------------------------------------


@pytest.mark.parametrize("docs,apps", [(MAIN_DOCS, MAIN_APPS), (SPLIT_DOCS, SPLIT_APPS)], ids=["composed", "split"])
def test_every_spinapp_autoscales_with_an_hpa_and_has_a_pdb(docs, apps):
    hpas, pdbs = by_kind(docs, "HorizontalPodAutoscaler"), list(by_kind(docs, "PodDisruptionBudget").values())
    assert apps
    for name, app in apps.items():
        assert app["spec"].get("enableAutoscaling") is True, name
        assert "replicas" not in app["spec"], f"{name}: the CRD forbids replicas with enableAutoscaling"
        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 3 <= hpa["minReplicas"] < hpa["maxReplicas"]
        covering = [p for p in pdbs if selects(p["spec"]["selector"], app["spec"]["podLabels"])]
        assert len(covering) == 1, f"{name}: {len(covering)} PDBs"
        assert covering[0]["spec"]["maxUnavailable"] == 1


def test_every_terminator_has_a_pdb_and_enough_replicas():
    pdbs = list(by_kind(SPLIT_DOCS, "PodDisruptionBudget").values())
    for name, dep in by_kind(SPLIT_DOCS, "Deployment").items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert len([p for p in pdbs if selects(p["spec"]["selector"], labels)]) == 1, name
        assert dep["spec"]["replicas"] >= 3
        keys = {c["topologyKey"] for c in dep["spec"]["template"]["spec"]["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_pdbs_select_only_their_own_workload():
    # A PDB that also matched another workload's pods would let one budget
    # block (or allow) evictions across both.
    for docs, apps in ((MAIN_DOCS, MAIN_APPS), (SPLIT_DOCS, SPLIT_APPS)):
        workloads = {n: a["spec"]["podLabels"] for n, a in apps.items()}
        workloads |= {n: d["spec"]["template"]["metadata"]["labels"] for n, d in by_kind(docs, "Deployment").items()}
        for pdb in by_kind(docs, "PodDisruptionBudget").values():
            matched = [n for n, labels in workloads.items() if selects(pdb["spec"]["selector"], labels)]
            assert matched == [pdb["metadata"]["name"]], (pdb["metadata"]["name"], matched)


def test_reloader_is_installed_by_terraform():
    reloader = RESOURCES["helm_release"]["reloader"]
    assert reloader["chart"] == "reloader" and reloader["version"] == "${var.reloader_chart_version}"


# --- zone spread ------------------------------------------------------------------------


def zone_spread_policy() -> dict:
    """charts/spinkube-platform/templates/zone-spread-policy.yaml with the
    chart's values filled in (the few Helm constructs it uses)."""
    chart = envlib.TERRAFORM_DIR / "charts" / "spinkube-platform"
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))["zoneSpread"]
    text = (chart / "templates" / "zone-spread-policy.yaml").read_text(encoding="utf-8")
    assert values["enabled"] is True
    text = re.sub(r"^\{\{-? (if|end)[^}]*\}\}\n?", "", text, flags=re.M)
    text = re.sub(r"\{\{ \.Values\.zoneSpread\.(\w+) \| quote \}\}", lambda m: '"%s"' % values[m.group(1)], text)
    text = re.sub(r"\{\{ `(.*?)` \}\}", lambda m: m.group(1), text)
    assert "{{ ." not in text, "an unrendered Helm expression"
    return yaml.safe_load(text)


def test_zone_spread_policy_matches_every_spinapp_pod_and_no_terminator():
    policy = zone_spread_policy()
    assert policy["kind"] == "ClusterPolicy" and policy["spec"]["failurePolicy"] == "Ignore"
    [rule] = policy["spec"]["rules"]
    [match] = rule["match"]["any"]
    resources = match["resources"]
    assert resources["kinds"] == ["Pod"] and resources["operations"] == ["CREATE"]
    assert resources["namespaces"] == [NAMESPACE]
    for app in list(MAIN_APPS.values()) + list(SPLIT_APPS.values()):
        assert selects(resources["selector"], app["spec"]["podLabels"]), app["metadata"]["name"]
    for dep in by_kind(SPLIT_DOCS, "Deployment").values():
        # The terminators carry their own constraints.
        assert not selects(resources["selector"], dep["spec"]["template"]["metadata"]["labels"])
    constraints = rule["mutate"]["patchStrategicMerge"]["spec"]["+(topologySpreadConstraints)"]
    zone = next(c for c in constraints if c["topologyKey"] == "topology.kubernetes.io/zone")
    assert (zone["maxSkew"], zone["whenUnsatisfiable"], zone["nodeTaintsPolicy"]) == (1, "DoNotSchedule", "Honor")
    for c in constraints:
        # Counted per component: the pod's own component label.
        assert c["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == \
            '{{ request.object.metadata.labels."app.kubernetes.io/component" }}'
    kyverno = RESOURCES["helm_release"]["kyverno"]
    assert kyverno["chart"] == "kyverno"
    assert "${helm_release.kyverno}" in RESOURCES["helm_release"]["spinkube_platform"]["depends_on"]
