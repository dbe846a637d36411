"""The deployment files agree with spin.toml and with each other.

spin.toml (the lead's) is the source of truth for variables, containers and
which components are private; runtime-config.toml, env/terraform and env/k8s
must follow it. These tests read files only.
"""

import re
from pathlib import Path

import pytest
import yaml

import envlib

TF = envlib.terraform()
RESOURCES = TF["resource"]
SPIN = envlib.spin_manifest()
SPIN_VARIABLES = set(SPIN["variables"])

# The hop targets (issue 14): app variables defaulting to the *.spin.internal
# URLs. The composed SpinApp sets them whether or not this spin.toml declares
# them yet (the Key Vault provider never falls back to a default), so the
# expected set is spin.toml's plus these.
URL_VARIABLES = {"patientapiurl", "auditapiurl"}
DEPLOYED_VARIABLES = SPIN_VARIABLES | URL_VARIABLES

KEY_VAULT_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


def spinapps(directory: Path) -> dict[str, dict]:
    return {
        doc["metadata"]["name"]: doc
        for _, doc in envlib.k8s_documents(envlib.manifest_files(directory))
        if doc.get("kind") == "SpinApp"
    }


def top_level_docs(directory: Path) -> list[dict]:
    paths = sorted(p for p in directory.glob("*.yaml"))
    return [doc for _, doc in envlib.k8s_documents(paths)]


MAIN_DIR = envlib.K8S_DIR
SPLIT_DIR = envlib.K8S_DIR / "split"
MAIN_SPINAPPS = {
    d["metadata"]["name"]: d for d in top_level_docs(MAIN_DIR) if d.get("kind") == "SpinApp"
}
SPLIT_SPINAPPS = spinapps(SPLIT_DIR)


def plain_variables(apps: dict[str, dict]) -> set[str]:
    return {v["name"] for app in apps.values() for v in app["spec"].get("variables", [])}


def key_vault_secret_names() -> set[str]:
    """Names of every Key Vault secret Terraform creates."""
    names = set()
    for label, body in RESOURCES.get("azurerm_key_vault_secret", {}).items():
        if "for_each" in body:
            assert body["for_each"] == "${local.spin_variables}", f"secret {label}: unexpected for_each"
            assert body["name"] == "${each.key}", f"secret {label}: name must be each.key (the variable name)"
            names |= set(envlib.hcl_literal_list(TF["locals"]["spin_variables"]))
        else:
            assert "${" not in body["name"], f"secret {label}: name must be a literal"
            names.add(body["name"])
    return names


# --- variables -------------------------------------------------------------------


def test_every_spin_variable_is_a_key_vault_secret_or_plain_config():
    secrets = key_vault_secret_names()
    plain = plain_variables(MAIN_SPINAPPS)
    assert secrets | plain == DEPLOYED_VARIABLES, (
        f"missing: {sorted(DEPLOYED_VARIABLES - secrets - plain)}, "
        f"not in spin.toml: {sorted((secrets | plain) - DEPLOYED_VARIABLES)}"
    )


def test_no_variable_comes_from_both_key_vault_and_plain_config():
    # The environment provider outranks Key Vault: a duplicate would silently
    # shadow the secret.
    assert not key_vault_secret_names() & plain_variables(MAIN_SPINAPPS)


def test_secret_variables_never_come_from_plain_config():
    for apps in (MAIN_SPINAPPS, SPLIT_SPINAPPS):
        for name in plain_variables(apps) & SPIN_VARIABLES:
            assert not SPIN["variables"][name].get("secret"), f"{name} is secret: it belongs in Key Vault"


def test_plain_variables_reference_existing_config_map_keys():
    config_maps = {
        d["metadata"]["name"]: d.get("data", {})
        for d in top_level_docs(MAIN_DIR) if d.get("kind") == "ConfigMap"
    }
    for apps in (MAIN_SPINAPPS, SPLIT_SPINAPPS):
        for app in apps.values():
            for var in app["spec"].get("variables", []):
                ref = var.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in config_maps.get(ref["name"], {}), \
                        f"{app['metadata']['name']}: {var['name']} -> missing {ref['name']}/{ref['key']}"
                else:
                    assert "value" in var, f"{var['name']}: neither a value nor a ConfigMap key"


def test_key_vault_secret_names_are_the_variable_names_exactly():
    for name in key_vault_secret_names():
        assert KEY_VAULT_SECRET_NAME.match(name), f"{name!r} is not a valid Key Vault secret name"
        assert name in SPIN_VARIABLES, f"secret {name!r} is not a spin.toml variable"


def test_terraform_gives_every_secret_a_value():
    values = TF["locals"]["spin_variable_values"]
    assert set(values) == set(envlib.hcl_literal_list(TF["locals"]["spin_variables"]))


def test_callers_start_on_the_primary_host_keys():
    values = TF["locals"]["spin_variable_values"]
    for svc in ("patientapi", "auditapi"):
        assert values[f"{svc}key"] == values[f"{svc}primarykey"]
        assert values[f"{svc}primarykey"] != values[f"{svc}secondarykey"]


def test_store_settings_are_plain_values_from_terraform_in_every_spinapp():
    # Not secret, so not Key Vault reads: the deploy step fills them in from
    # Terraform's deploy_env, built from the same locals as the containers.
    exported = TF["output"]["deploy_env"]["value"]
    assert "export DOCSTORE_CONTAINERS='${local.docstore_containers}'" in exported
    endpoint = next(line for line in exported.splitlines() if line.startswith("export COSMOS_ENDPOINT="))
    assert "azurerm_cosmosdb_account.main.endpoint" in endpoint
    assert "local.cosmos_containers" in TF["locals"]["docstore_containers"]
    for app in MAIN_SPINAPPS.values():
        values = {v["name"]: v.get("value") for v in app["spec"].get("variables", [])}
        name = app["metadata"]["name"]
        assert values.get("cosmosendpoint") == "${COSMOS_ENDPOINT}", name
        assert values.get("docstorecontainers") == "${DOCSTORE_CONTAINERS}", name
    # Split, only the apps that declare them set them (test_split.py).
    for app in SPLIT_SPINAPPS.values():
        values = {v["name"]: v.get("value") for v in app["spec"].get("variables", [])}
        if "cosmosendpoint" in values:
            assert values["cosmosendpoint"] == "${COSMOS_ENDPOINT}", app["metadata"]["name"]
        assert "docstorecontainers" not in values, "no split app runs the docstore"


def test_composed_deployment_keeps_in_process_hops():
    values = {v["name"]: v.get("value") for v in MAIN_SPINAPPS["patient-records"]["spec"]["variables"]}
    assert values["patientapiurl"] == "http://patient-api.spin.internal"
    assert values["auditapiurl"] == "http://audit-api.spin.internal"


# --- containers -------------------------------------------------------------------


def test_cosmos_containers_equal_the_docstorecontainers_default():
    expected = envlib.parse_docstore_containers(SPIN["variables"]["docstorecontainers"]["default"])
    containers = TF["locals"]["cosmos_containers"]
    actual = set()
    for key, c in containers.items():
        assert key == f"{c['database']}/{c['container']}", f"key {key!r} does not name its container"
        actual.add((c["database"], c["container"], c["partition_key"]))
    assert actual == expected


def test_every_cosmos_container_terraform_creates_is_accounted_for():
    containers = RESOURCES["azurerm_cosmosdb_sql_container"]
    assert set(containers) == {"docstore", "spin_kv"}, "a container that is neither docstore nor the Spin key-value store"
    docstore = containers["docstore"]
    assert docstore["for_each"] == "${local.cosmos_containers}"
    assert docstore["partition_key_paths"] == ["${each.value.partition_key}"]
    assert RESOURCES["azurerm_cosmosdb_sql_database"]["docstore"]["for_each"] == "${local.cosmos_databases}"


def test_spin_key_value_container_matches_runtime_config():
    kv = envlib.runtime_config()["key_value_store"]["default"]
    spin_kv = TF["locals"]["spin_kv"]
    assert kv["type"] == "azure_cosmos"
    assert (kv["database"], kv["container"]) == (spin_kv["database"], spin_kv["container"])
    # Spin's azure_cosmos store keys items by id.
    assert spin_kv["partition_key"] == "/id"
    docstore_dbs = {c["database"] for c in TF["locals"]["cosmos_containers"].values()}
    assert spin_kv["database"] not in docstore_dbs, "keep rate-limit counters out of the patient and audit databases"


# --- runtime config ----------------------------------------------------------------

AKV_KEYS = {"type", "vault_url", "client_id", "client_secret", "tenant_id", "authority_host"}


def test_runtime_config_uses_key_vault_with_ambient_auth():
    providers = envlib.runtime_config()["config_provider"]
    akv = [p for p in providers if p["type"] == "azure_key_vault"]
    assert len(akv) == 1
    # Spin rejects unknown keys here (deny_unknown_fields).
    assert set(akv[0]) <= AKV_KEYS
    assert not {"client_id", "client_secret", "tenant_id"} & set(akv[0]), "ambient auth: no service principal"
    assert akv[0].get("authority_host", "AzurePublicCloud") in {
        "AzurePublicCloud", "AzureChina", "AzureGermany", "AzureGovernment"}


def test_runtime_config_asks_the_environment_before_key_vault():
    # Spin asks the runtime config's providers first, in order, and appends
    # its own environment provider last; a Key Vault miss is an error that
    # ends the lookup. The plain settings (ConfigMap -> SPIN_VARIABLE_*)
    # resolve only if an `env` entry comes before Key Vault.
    types = [p["type"] for p in envlib.runtime_config()["config_provider"]]
    assert "env" in types and "azure_key_vault" in types, types
    assert types.index("env") < types.index("azure_key_vault"), types
    env = envlib.runtime_config()["config_provider"][types.index("env")]
    # No prefix (SPIN_VARIABLE_, which SpinApp spec.variables produce) and
    # no .env file in a pod.
    assert set(env) == {"type"}, env


def test_runtime_config_holds_no_key():
    kv = envlib.runtime_config()["key_value_store"]["default"]
    assert "key" not in kv, "the key-value store must use workload identity, not an account key"


def test_runtime_config_placeholders_are_all_filled_by_terraform():
    text = (envlib.REPO_ROOT / "runtime-config.toml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([a-z_]+)\}", text))
    template_call = TF["output"]["runtime_config_toml"]["value"]
    assert "runtime-config.toml" in template_call
    provided = set(re.findall(r"([a-z_]+)\s*=", template_call.split("{", 2)[-1]))
    assert used and used == provided, f"placeholders {sorted(used)} vs templatefile vars {sorted(provided)}"


# --- ingress and private components ---------------------------------------------------


def ingress_services(directory: Path) -> set[str]:
    services = set()
    for doc in top_level_docs(directory):
        if doc.get("kind") != "Ingress":
            continue
        for rule in doc["spec"].get("rules", []):
            for path in rule["http"]["paths"]:
                services.add(path["backend"]["service"]["name"])
                assert not any(c in path.get("path", "") for c in envlib.private_components(SPIN)), \
                    f"ingress path {path['path']} names a private component"
        assert "defaultBackend" not in doc["spec"]
    return services


@pytest.mark.parametrize("directory,apps", [(MAIN_DIR, MAIN_SPINAPPS), (SPLIT_DIR, SPLIT_SPINAPPS)],
                         ids=["single", "split"])
def test_only_the_gateway_service_is_routed(directory, apps):
    private = envlib.private_components(SPIN)
    public = envlib.public_components(SPIN)
    # The developer portal (static files, no outbound hosts) runs beside the gateway.
    assert public == {"gateway", "portal"} and private, "spin.toml changed shape: revisit the ingress"
    routed = ingress_services(directory)
    assert routed, "no ingress"
    for service in routed:
        # spin-operator names the Service after the SpinApp.
        assert service in apps, f"ingress routes to {service}, which is no SpinApp here"
        components = set(apps[service]["spec"].get("components", SPIN["component"].keys()))
        assert "gateway" in components, f"{service} does not run the gateway"
        assert "portal" in components, f"{service} does not run the portal (/portal/...)"
    for name, app in apps.items():
        components = set(app["spec"].get("components", SPIN["component"].keys()))
        if components <= private:
            assert name not in routed, f"{name} runs only private components and must not be routed"


def ingresses(directory: Path) -> list[dict]:
    found = [doc for doc in top_level_docs(directory) if doc.get("kind") == "Ingress"]
    assert found, "no ingress"
    return found


# The application routing add-on refuses an Ingress whose snippet contains any
# of these (learn.microsoft.com, AKS "Managed NGINX ingress with the
# application routing add-on", Limitations).
ADD_ON_BLOCKED_SNIPPET_TOKENS = ("load_module", "lua_package", "_by_lua", "location", "root",
                                 "proxy_pass", "serviceaccount", "{", "}", "'")
ANNOTATION = "nginx.ingress.kubernetes.io/"


@pytest.mark.parametrize("directory", [MAIN_DIR, SPLIT_DIR], ids=["single", "split"])
def test_the_ingress_routes_only_the_app_hostname_so_no_spin_internal_host_reaches_spin(directory):
    # Spin drops a `<id>.spin.internal` Host and then closes the connection
    # unanswered (docs/architecture.md). NGINX sends any Host no rule names to
    # its default server (404); so every rule names the app's host, none is a
    # host-less catch-all, and there is no default backend.
    for doc in ingresses(directory):
        rules = doc["spec"]["rules"]
        assert rules and [rule.get("host") for rule in rules] == ["${APP_HOSTNAME}"] * len(rules)
        assert "defaultBackend" not in doc["spec"]
        assert [h for tls in doc["spec"]["tls"] for h in tls["hosts"]] == ["${APP_HOSTNAME}"]
        # An absolute target picks the server by its own host; Spin must still
        # see the app's host, not the Host header the client sent beside it.
        assert doc["metadata"]["annotations"][ANNOTATION + "upstream-vhost"] == "${APP_HOSTNAME}"


@pytest.mark.parametrize("directory", [MAIN_DIR, SPLIT_DIR], ids=["single", "split"])
def test_the_ingress_answers_400_to_a_header_value_that_is_not_utf8(directory):
    # NGINX passes header bytes 0x80-0xFF on; Spin would answer 500 before any
    # component runs. One ModSecurity rule, on every request header value.
    for doc in ingresses(directory):
        annotations = doc["metadata"]["annotations"]
        assert annotations[ANNOTATION + "enable-modsecurity"] == "true"
        # The OWASP rule set would answer for the app (bodies, arguments).
        assert annotations.get(ANNOTATION + "enable-owasp-core-rules", "false") == "false"
        snippet = annotations[ANNOTATION + "modsecurity-snippet"]
        assert not [t for t in ADD_ON_BLOCKED_SNIPPET_TOKENS if t in snippet]
        lines = [line.strip() for line in snippet.strip().splitlines()]
        assert lines[:3] == ["SecRuleEngine On", "SecRequestBodyAccess Off", "SecResponseBodyAccess Off"]
        rules = [line for line in lines if line.startswith("SecRule ")]
        assert len(rules) == 1 and len(lines) == 4, lines
        match = re.fullmatch(r'SecRule REQUEST_HEADERS "@validateUtf8Encoding" "([^"]+)"', rules[0])
        assert match, rules[0]
        actions = match.group(1).split(",")
        assert {"phase:1", "deny", "status:400"} <= set(actions), actions


@pytest.mark.parametrize("directory", [MAIN_DIR, SPLIT_DIR], ids=["single", "split"])
def test_the_ingress_keeps_nginx_refusing_ambiguous_framing(directory):
    # NGINX (1.21.1 on; the controller ships 1.27) answers 400 to a request
    # with both Content-Length and Transfer-Encoding, which Spin would frame
    # by the chunks and read on from. With request buffering on (the
    # default) Spin gets each body with a Content-Length. No snippet may
    # change how NGINX proxies.
    for doc in ingresses(directory):
        annotations = doc["metadata"]["annotations"]
        assert annotations.get(ANNOTATION + "proxy-request-buffering", "on") == "on"
        snippets = [k for k in annotations if k.endswith("-snippet") and k != ANNOTATION + "modsecurity-snippet"]
        assert not snippets, snippets


def test_deployments_run_every_azure_component_and_never_the_local_docstore():
    azure_components = set(SPIN["component"]) - {"docstore"}
    for apps in (MAIN_SPINAPPS, SPLIT_SPINAPPS):
        deployed = [c for app in apps.values() for c in app["spec"]["components"]]
        assert "docstore" not in deployed
        assert sorted(deployed) == sorted(azure_components), "each component exactly once"


# --- identity ------------------------------------------------------------------------------


def test_app_identity_has_only_key_vault_secrets_user():
    grants = [
        body for body in RESOURCES["azurerm_role_assignment"].values()
        if "azurerm_user_assigned_identity.app." in body["principal_id"]
    ]
    assert len(grants) == 1
    assert grants[0]["role_definition_name"] == "Key Vault Secrets User"
    assert grants[0]["scope"] == "${azurerm_key_vault.main.id}"


def test_workload_identity_is_federated_to_the_app_service_account():
    fic = RESOURCES["azurerm_federated_identity_credential"]["app"]
    assert fic["subject"] == "system:serviceaccount:${var.app_namespace}:${var.app_service_account}"
    namespace = TF["variable"]["app_namespace"]["default"]
    account = TF["variable"]["app_service_account"]["default"]
    sas = [d for d in top_level_docs(MAIN_DIR) if d.get("kind") == "ServiceAccount"]
    assert [(sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in sas] == [(namespace, account)]
    assert "azure.workload.identity/client-id" in sas[0]["metadata"]["annotations"]
    for app in MAIN_SPINAPPS.values():
        assert app["metadata"]["namespace"] == namespace
        assert app["spec"]["serviceAccountName"] == account
        assert app["spec"]["podLabels"]["azure.workload.identity/use"] == "true"
        assert app["spec"]["runtimeConfig"] == {"loadFromSecret": "patient-records-runtime-config"}
    # The split apps each have their own account and identity (test_split.py).


# --- network ---------------------------------------------------------------------------------


def test_network_policy_allows_exactly_the_private_endpoint_subnet():
    subnet = TF["variable"]["private_endpoints_subnet_prefix"]["default"]
    cidrs = [
        peer["ipBlock"]["cidr"]
        for doc in top_level_docs(MAIN_DIR) if doc.get("kind") == "NetworkPolicy"
        for rule in doc["spec"].get("egress", [])
        for peer in rule.get("to", []) if "ipBlock" in peer and not peer["ipBlock"].get("except")
    ]
    assert cidrs == [subnet]


# --- deploy-time placeholders and vendored CRDs ---------------------------------------------


def test_manifest_placeholders_are_exported_by_terraform():
    exported = set(re.findall(r"export ([A-Z_]+)=", TF["output"]["deploy_env"]["value"]))
    for path in envlib.manifest_files():
        used = set(re.findall(r"\$\{([A-Z_]+)\}", path.read_text(encoding="utf-8")))
        missing = used - exported - {"APP_VERSION"}
        assert not missing, f"{path.name}: {sorted(missing)} not in terraform output deploy_env"


def test_vendored_spinkube_crds_equal_the_reference_copy():
    reference, why = envlib.reference_crd_dir()
    if reference is None:
        pytest.skip(why)
    assert reference.is_dir(), f"SHARED_DIR is set but {reference} does not exist"
    names = sorted(p.name for p in reference.glob("*.yaml"))
    assert names and names == [p.name for p in envlib.crd_files()]
    for name in names:
        assert (envlib.CRD_DIR / name).read_bytes() == (reference / name).read_bytes(), (
            f"{name} drifted from {reference}"
        )


def test_spinapps_use_the_executor_and_runtime_class_that_exist():
    executors = {d["metadata"]["name"]: d for d in top_level_docs(MAIN_DIR) if d.get("kind") == "SpinAppExecutor"}
    chart_values = yaml.safe_load((envlib.TERRAFORM_DIR / "charts" / "spinkube-platform" / "values.yaml").read_text())
    for app in list(MAIN_SPINAPPS.values()) + list(SPLIT_SPINAPPS.values()):
        executor = executors[app["spec"]["executor"]]
        assert executor["spec"]["deploymentConfig"]["runtimeClassName"] == chart_values["runtimeClass"]["name"]
