output "resource_group_name" {
  description = "Resource group of everything here."
  value       = azurerm_resource_group.main.name
}

output "aks_name" {
  description = "AKS cluster name (az aks get-credentials)."
  value       = azurerm_kubernetes_cluster.main.name
}

output "acr_login_server" {
  description = "Registry the Spin app is pushed to."
  value       = azurerm_container_registry.main.login_server
}

output "key_vault_name" {
  description = "Key Vault holding one secret per Spin variable (env/scripts/rotate-key.sh --vault)."
  value       = azurerm_key_vault.main.name
}

output "key_vault_url" {
  description = "vault_url of the Azure Key Vault variables provider."
  value       = azurerm_key_vault.main.vault_uri
}

output "cosmos_account_name" {
  description = "Cosmos DB account (env/scripts/rotate-key.sh --cosmos-account)."
  value       = azurerm_cosmosdb_account.main.name
}

output "workload_identity_client_id" {
  description = "Client id for the azure.workload.identity/client-id annotation of the app's service account."
  value       = azurerm_user_assigned_identity.app.client_id
}

output "tenant_id" {
  description = "Entra ID tenant of the workload identity."
  value       = data.azurerm_client_config.current.tenant_id
}

output "runtime_config_toml" {
  description = "runtime-config.toml with this environment's names filled in; goes into the Secret the SpinApp loads (README, step 6)."
  value = templatefile("${path.module}/../../runtime-config.toml", {
    key_vault_url       = azurerm_key_vault.main.vault_uri
    cosmos_account_name = azurerm_cosmosdb_account.main.name
    cosmos_region       = var.location
  })
}

# Split deployment: one runtime config per app (Secrets
# patient-records-<app>-runtime-config). The same providers and store as the
# composed deployment, plus, for the two apps that call the next service, the
# [[client_tls]] entry of that hop (templates/client-tls.toml.tftpl).
output "split_runtime_config_toml" {
  description = "Runtime config per split app (gateway, patient-api, audit-api); README, Split deployment."
  value = {
    for app in ["gateway", "patient-api", "audit-api"] : app => join("", [
      templatefile("${path.module}/../../runtime-config.toml", {
        key_vault_url       = azurerm_key_vault.main.vault_uri
        cosmos_account_name = azurerm_cosmosdb_account.main.name
        cosmos_region       = var.location
      }),
      contains(keys(local.split_client_tls), app) ? templatefile("${path.module}/templates/client-tls.toml.tftpl", {
        component               = local.split_client_tls[app].component
        host                    = local.split_client_tls[app].host
        ca_roots_file           = "${local.split_mtls_dir}/trust/ca.crt"
        client_cert_file        = "${local.split_mtls_dir}/client/tls.crt"
        client_private_key_file = "${local.split_mtls_dir}/client/tls.key"
      }) : "",
    ])
  }
}

output "deploy_env" {
  description = "Shell exports for the deploy step: eval \"$(terraform output -raw deploy_env)\"."
  value       = <<-EOT
    export AZ_RESOURCE_GROUP='${azurerm_resource_group.main.name}'
    export AKS_NAME='${azurerm_kubernetes_cluster.main.name}'
    export ACR_LOGIN_SERVER='${azurerm_container_registry.main.login_server}'
    export KEY_VAULT_NAME='${azurerm_key_vault.main.name}'
    export COSMOS_ACCOUNT='${azurerm_cosmosdb_account.main.name}'
    export WORKLOAD_IDENTITY_CLIENT_ID='${azurerm_user_assigned_identity.app.client_id}'
    export GATEWAY_IDENTITY_CLIENT_ID='${azurerm_user_assigned_identity.split["gateway"].client_id}'
    export PATIENT_API_IDENTITY_CLIENT_ID='${azurerm_user_assigned_identity.split["patient-api"].client_id}'
    export AUDIT_API_IDENTITY_CLIENT_ID='${azurerm_user_assigned_identity.split["audit-api"].client_id}'
    export AZURE_TENANT_ID='${data.azurerm_client_config.current.tenant_id}'
    export APP_HOSTNAME='${var.app_hostname}'
    export POD_CIDR='${var.pod_cidr}'
    export COSMOS_ENDPOINT='${trimsuffix(azurerm_cosmosdb_account.main.endpoint, "/")}'
    export DOCSTORE_CONTAINERS='${local.docstore_containers}'
  EOT
}

output "subscription_keys" {
  description = "Raw gateway subscription keys as first seeded (name/primary, name/secondary). Hand them to subscribers over a secure channel; Key Vault holds only their digests. Stale after a rotation."
  value       = local.subscription_keys
  sensitive   = true
}
