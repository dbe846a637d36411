# Private registry for the Spin app (an OCI artifact: spin registry push).
resource "azurerm_container_registry" "main" {
  #checkov:skip=CKV_AZURE_164: Docker Content Trust is being retired in ACR and `spin registry push` cannot sign with it; sign the artifact with Notation and verify with Ratify/Azure Policy instead (README).
  #checkov:skip=CKV_AZURE_166: Quarantine holds every pushed artifact until an external scanner releases it; no scanner here understands Spin (Wasm) artifacts, so it would block every deployment. Defender for Containers scans what it can.
  name                          = "acr${local.unique}"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  sku                           = "Premium"
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  public_network_access_enabled = false
  network_rule_bypass_option    = "None"
  data_endpoint_enabled         = true
  export_policy_enabled         = false
  zone_redundancy_enabled       = true
  retention_policy_in_days      = 30
  tags                          = local.tags

  dynamic "georeplications" {
    for_each = var.secondary_location == null ? [] : [var.secondary_location]
    content {
      location                = georeplications.value
      zone_redundancy_enabled = true
      tags                    = local.tags
    }
  }
}

resource "azurerm_private_endpoint" "acr" {
  name                = "pe-${local.base}-acr"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "psc-acr"
    private_connection_resource_id = azurerm_container_registry.main.id
    subresource_names              = ["registry"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "registry"
    private_dns_zone_ids = [azurerm_private_dns_zone.main["registry"].id]
  }
}

# The operator pushes the app image (README, step 5).
resource "azurerm_role_assignment" "deployer_acr_push" {
  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPush"
  principal_id         = data.azurerm_client_config.current.object_id
}
