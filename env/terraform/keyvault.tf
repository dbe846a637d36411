resource "azurerm_key_vault" "main" {
  name                = "kv-${local.unique}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  sku_name            = "standard"
  tags                = local.tags

  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = false

  network_acls {
    default_action = "Deny"
    bypass         = "None"
  }
}

resource "azurerm_private_endpoint" "key_vault" {
  name                = "pe-${local.base}-kv"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "psc-kv"
    private_connection_resource_id = azurerm_key_vault.main.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [azurerm_private_dns_zone.main["vault"].id]
  }
}

# The identity running Terraform seeds the secrets (data plane, over the
# private endpoint: see README for where Terraform runs).
resource "azurerm_role_assignment" "deployer_key_vault_secrets_officer" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

# Azure RBAC takes a while to reach the Key Vault data plane.
resource "time_sleep" "key_vault_rbac" {
  create_duration = "90s"
  depends_on = [
    azurerm_role_assignment.deployer_key_vault_secrets_officer,
    azurerm_private_endpoint.key_vault,
    azurerm_private_dns_zone_virtual_network_link.main,
  ]
}
