data "azurerm_client_config" "current" {}

# Globally unique names (Key Vault, Cosmos DB, ACR) need a stable suffix.
resource "random_string" "suffix" {
  length  = 5
  lower   = true
  upper   = false
  numeric = true
  special = false
}

locals {
  base   = "${var.name}-${var.environment}"
  unique = "${var.name}${var.environment}${random_string.suffix.result}"

  # The spin.toml variables held in Key Vault: every `secret = true` one. Each
  # is a Key Vault secret of exactly the same name: Spin's Azure Key Vault
  # provider looks a variable up under its own name and does NOT fall back to
  # the manifest default when the secret is missing. The plain ones
  # (gatewaypolicy, cosmosendpoint, docstorecontainers) come from the pod's
  # environment instead (env/k8s/configmap.yaml, spinapp.yaml), answered by
  # the runtime config's `env` provider without a Key Vault GET; env/tests
  # checks that the two together are exactly the variables of spin.toml.
  spin_variables = toset([
    "subscriptions",
    "healthkey",
    "patientapiprimarykey",
    "patientapisecondarykey",
    "patientapikey",
    "auditapiprimarykey",
    "auditapisecondarykey",
    "auditapikey",
    "cosmoskey",
  ])

  # The document containers: database/container => partition key path. Must
  # equal the `docstorecontainers` default in spin.toml (checked by env/tests),
  # so the local docstore and Azure serve the same layout.
  cosmos_containers = {
    "patients/patients" = { database = "patients", container = "patients", partition_key = "/id" }
    "patients/tests"    = { database = "patients", container = "tests", partition_key = "/patientId" }
    "audit/records"     = { database = "audit", container = "records", partition_key = "/chainKey" }
  }
  cosmos_databases = toset([for c in values(local.cosmos_containers) : c.database])

  # Same format as the spin.toml default: database/container=/pk;...
  docstore_containers = join(";", [for key, c in local.cosmos_containers : "${key}=${c.partition_key}"])

  # Spin's key-value store `default` (rate limits and quotas shared by all
  # gateway replicas). Must match [key_value_store.default] in
  # runtime-config.toml. Spin's azure_cosmos store wants partition key /id.
  spin_kv = { database = "spin", container = "keyvalue", partition_key = "/id" }

  tags = merge(var.tags, { environment = var.environment })

  # Split deployment: the one mTLS hop each calling app makes, to the nginx
  # terminator Service of the next service (env/k8s/split/terminators.yaml).
  # Paths are where env/k8s/split/spinapps.yaml mounts the client certificate
  # Secret and the trust bundle; env/tests checks the two agree.
  split_mtls_dir = "/etc/spin/mtls"
  split_client_tls = {
    gateway = {
      component = "gateway"
      host      = "${var.app_namespace}-patient-api-mtls.${var.app_namespace}.svc.cluster.local"
    }
    patient-api = {
      component = "patient-api"
      host      = "${var.app_namespace}-audit-api-mtls.${var.app_namespace}.svc.cluster.local"
    }
  }
}
