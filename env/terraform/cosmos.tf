resource "azurerm_cosmosdb_account" "main" {
  #checkov:skip=CKV_AZURE_100: Data is encrypted at rest with service-managed keys (always on). Customer-managed keys need a key vault that Cosmos DB reaches as a trusted service over a public endpoint, which conflicts with public access disabled here; add a dedicated CMK vault if your compliance regime requires CMK (README).
  #checkov:skip=CKV_AZURE_140: The components sign every request with the account master key (crates/cosmos-auth) and Spin has no Entra token source for them; local auth stays on, the keys live only in Key Vault (secret cosmoskey) and rotate with env/scripts/rotate-key.sh.
  name                = "cosmos-${local.unique}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  offer_type          = "Standard"
  kind                = "GlobalDocumentDB"
  tags                = local.tags

  local_authentication_disabled      = false
  public_network_access_enabled      = false
  is_virtual_network_filter_enabled  = true
  access_key_metadata_writes_enabled = false
  minimal_tls_version                = "Tls12"
  automatic_failover_enabled         = true
  multiple_write_locations_enabled   = false

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = var.location
    failover_priority = 0
    zone_redundant    = true
  }

  dynamic "geo_location" {
    for_each = var.secondary_location == null ? [] : [var.secondary_location]
    content {
      location          = geo_location.value
      failover_priority = 1
      zone_redundant    = true
    }
  }

  # Point-in-time restore of patient and audit data.
  backup {
    type = "Continuous"
    tier = "Continuous30Days"
  }
}

resource "azurerm_private_endpoint" "cosmos" {
  name                = "pe-${local.base}-cosmos"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  subnet_id           = azurerm_subnet.private_endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "psc-cosmos"
    private_connection_resource_id = azurerm_cosmosdb_account.main.id
    subresource_names              = ["Sql"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "cosmos"
    private_dns_zone_ids = [azurerm_private_dns_zone.main["cosmos"].id]
  }
}

# --- the document store: one database per service -----------------------------

resource "azurerm_cosmosdb_sql_database" "docstore" {
  for_each            = local.cosmos_databases
  name                = each.key
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name

  autoscale_settings {
    max_throughput = var.cosmos_max_throughput
  }
}

resource "azurerm_cosmosdb_sql_container" "docstore" {
  for_each              = local.cosmos_containers
  name                  = each.value.container
  resource_group_name   = azurerm_resource_group.main.name
  account_name          = azurerm_cosmosdb_account.main.name
  database_name         = azurerm_cosmosdb_sql_database.docstore[each.value.database].name
  partition_key_paths   = [each.value.partition_key]
  partition_key_version = 2
}

# --- Spin's key-value store `default` (runtime-config.toml) -------------------

resource "azurerm_cosmosdb_sql_database" "spin_kv" {
  name                = local.spin_kv.database
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name

  autoscale_settings {
    max_throughput = 1000
  }
}

resource "azurerm_cosmosdb_sql_container" "spin_kv" {
  name                  = local.spin_kv.container
  resource_group_name   = azurerm_resource_group.main.name
  account_name          = azurerm_cosmosdb_account.main.name
  database_name         = azurerm_cosmosdb_sql_database.spin_kv.name
  partition_key_paths   = [local.spin_kv.partition_key]
  partition_key_version = 2
  # Counters of past windows expire on their own. Must outlast the longest
  # rate-limit or quota period configured (35 days covers monthly quotas).
  default_ttl = 3024000
}

# Spin's azure_cosmos key-value store authenticates with the pod's workload
# identity (no key in the runtime config). This data-plane role lets it read
# and write items of that one container and nothing else: no other container,
# no metadata writes, no Azure RBAC role.
resource "azurerm_cosmosdb_sql_role_definition" "spin_kv" {
  name                = "spin-key-value-items"
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name
  type                = "CustomRole"
  assignable_scopes   = ["${azurerm_cosmosdb_account.main.id}/dbs/${local.spin_kv.database}/colls/${local.spin_kv.container}"]

  permissions {
    data_actions = [
      "Microsoft.DocumentDB/databaseAccounts/readMetadata",
      "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/*",
      "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery",
    ]
  }
}

resource "azurerm_cosmosdb_sql_role_assignment" "app_spin_kv" {
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name
  role_definition_id  = azurerm_cosmosdb_sql_role_definition.spin_kv.id
  principal_id        = azurerm_user_assigned_identity.app.principal_id
  scope               = "${azurerm_cosmosdb_account.main.id}/dbs/${local.spin_kv.database}/colls/${local.spin_kv.container}"

  depends_on = [azurerm_cosmosdb_sql_container.spin_kv]
}

# Split deployment: only the gateway uses the key-value store (rate limits),
# so only its identity gets the same data-plane role.
resource "azurerm_cosmosdb_sql_role_assignment" "split_gateway_spin_kv" {
  resource_group_name = azurerm_resource_group.main.name
  account_name        = azurerm_cosmosdb_account.main.name
  role_definition_id  = azurerm_cosmosdb_sql_role_definition.spin_kv.id
  principal_id        = azurerm_user_assigned_identity.split["gateway"].principal_id
  scope               = "${azurerm_cosmosdb_account.main.id}/dbs/${local.spin_kv.database}/colls/${local.spin_kv.container}"

  depends_on = [azurerm_cosmosdb_sql_container.spin_kv]
}
