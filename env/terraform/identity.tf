# The app's identity. It may read Key Vault secrets and nothing else in Azure
# RBAC; its only other grant is a Cosmos DB data-plane role limited to the one
# key-value container Spin keeps rate-limit counters in (cosmos.tf).
resource "azurerm_user_assigned_identity" "app" {
  name                = "id-${local.base}-app"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

# Trusts tokens of exactly one Kubernetes service account (env/k8s/serviceaccount.yaml).
resource "azurerm_federated_identity_credential" "app" {
  name      = "fic-${var.app_namespace}-${var.app_service_account}"
  parent_id = azurerm_user_assigned_identity.app.id
  audience  = ["api://AzureADTokenExchange"]
  issuer    = azurerm_kubernetes_cluster.main.oidc_issuer_url
  subject   = "system:serviceaccount:${var.app_namespace}:${var.app_service_account}"
}

resource "azurerm_role_assignment" "app_key_vault_secrets_user" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}

# --- Split deployment (env/k8s/split): one identity per service ---------------
#
# Each split SpinApp runs as its own service account, federated to its own
# identity, which may read only the Key Vault secrets its Spin app declares
# (Key Vault RBAC role assignments scoped to individual secrets, the
# narrowest scope azurerm offers). A compromised gateway pod can therefore
# not read the audit host keys or the Cosmos DB key. The composed deployment
# keeps the identity above.
locals {
  split_services = {
    gateway = {
      service_account = "${var.app_service_account}-gateway"
      # split/gateway.toml: subscriptions, healthkey, patientapikey (plus the
      # plain gatewaypolicy and patientapiurl, answered by the env provider).
      secrets = ["subscriptions", "healthkey", "patientapikey"]
    }
    patient-api = {
      service_account = "${var.app_service_account}-patient-api"
      # split/patient-api.toml (plain: auditapiurl, cosmosendpoint).
      secrets = ["patientapiprimarykey", "patientapisecondarykey", "auditapikey", "cosmoskey"]
    }
    audit-api = {
      service_account = "${var.app_service_account}-audit-api"
      # split/audit-api.toml (plain: cosmosendpoint).
      secrets = ["auditapiprimarykey", "auditapisecondarykey", "cosmoskey"]
    }
  }

  split_secret_grants = {
    for pair in flatten([
      for service, s in local.split_services : [
        for secret in s.secrets : { key = "${service}/${secret}", service = service, secret = secret }
      ]
    ]) : pair.key => pair
  }
}

resource "azurerm_user_assigned_identity" "split" {
  for_each            = local.split_services
  name                = "id-${local.base}-${each.key}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

# Each identity trusts tokens of exactly its own service account
# (env/k8s/split/serviceaccounts.yaml).
resource "azurerm_federated_identity_credential" "split" {
  for_each  = local.split_services
  name      = "fic-${var.app_namespace}-${each.value.service_account}"
  parent_id = azurerm_user_assigned_identity.split[each.key].id
  audience  = ["api://AzureADTokenExchange"]
  issuer    = azurerm_kubernetes_cluster.main.oidc_issuer_url
  subject   = "system:serviceaccount:${var.app_namespace}:${each.value.service_account}"
}

# Key Vault Secrets User on one secret each (scope = the secret's versionless
# id, so later versions written by env/scripts/rotate-key.sh stay readable).
resource "azurerm_role_assignment" "split_key_vault_secret_user" {
  for_each             = local.split_secret_grants
  scope                = azurerm_key_vault_secret.spin_variable[each.value.secret].resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.split[each.value.service].principal_id
}
