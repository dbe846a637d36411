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
