resource "azurerm_user_assigned_identity" "aks" {
  name                = "id-${local.base}-aks"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

# A user-assigned control-plane identity must manage the node subnet.
resource "azurerm_role_assignment" "aks_network" {
  scope                = azurerm_subnet.aks_nodes.id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.aks.principal_id
}

resource "azurerm_kubernetes_cluster" "main" {
  #checkov:skip=CKV_AZURE_117: Nodes hold no patient data (stateless Spin pods, no persistent volumes; PHI lives only in Cosmos DB). OS disks are ephemeral and encrypted at host; a customer-managed disk key would need a Key Vault reachable by trusted services, which conflicts with public access disabled.
  #checkov:skip=CKV_AZURE_172: The Secrets Store CSI driver is not used: Spin reads Key Vault itself through workload identity (runtime-config.toml), so there is nothing for the driver to rotate.
  name                = "aks-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  node_resource_group = "rg-${local.base}-aks-nodes"
  dns_prefix          = "aks-${local.base}"
  kubernetes_version  = var.kubernetes_version
  sku_tier            = "Standard"
  tags                = local.tags

  # The API server has no public endpoint. The public FQDN only resolves to
  # the private IP, so a peered operator network needs no DNS link for it.
  private_cluster_enabled             = true
  private_cluster_public_fqdn_enabled = true

  # Entra ID only: no local admin kubeconfig, Kubernetes RBAC through Azure RBAC.
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
    tenant_id          = data.azurerm_client_config.current.tenant_id
  }

  # Workload identity: pods exchange a projected service account token for an
  # Entra ID token of the app identity (identity.tf). No secret in the cluster.
  oidc_issuer_enabled       = true
  workload_identity_enabled = true

  azure_policy_enabled         = true
  automatic_upgrade_channel    = "patch"
  node_os_upgrade_channel      = "NodeImage"
  image_cleaner_enabled        = true
  image_cleaner_interval_hours = 48

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.aks.id]
  }

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_vm_size
    vnet_subnet_id               = azurerm_subnet.aks_nodes.id
    zones                        = ["1", "2", "3"]
    auto_scaling_enabled         = true
    min_count                    = 3
    max_count                    = 5
    max_pods                     = 50
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = 100
    host_encryption_enabled      = true
    only_critical_addons_enabled = true
    temporary_name_for_rotation  = "systemtmp"

    upgrade_settings {
      max_surge = "33%"
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    pod_cidr            = var.pod_cidr
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
  }

  # Managed NGINX ingress controller (application routing add-on) in namespace
  # app-routing-system, ingress class webapprouting.kubernetes.azure.com.
  web_app_routing {
    dns_zone_ids = []
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.main.id
    msi_auth_for_monitoring_enabled = true
  }

  microsoft_defender {
    log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id
  }

  depends_on = [azurerm_role_assignment.aks_network]
}

# Spin apps run here: runtime-class-manager installs containerd-shim-spin on
# nodes labelled spin=true (the Shim in charts/spinkube-platform selects them).
resource "azurerm_kubernetes_cluster_node_pool" "spin" {
  name                    = "spin"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.main.id
  vm_size                 = var.spin_node_vm_size
  vnet_subnet_id          = azurerm_subnet.aks_nodes.id
  zones                   = ["1", "2", "3"]
  auto_scaling_enabled    = true
  min_count               = var.spin_node_count.min
  max_count               = var.spin_node_count.max
  max_pods                = 50
  os_type                 = "Linux"
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 100
  host_encryption_enabled = true
  node_labels             = { "spin" = "true" }
  tags                    = local.tags

  upgrade_settings {
    max_surge = "33%"
  }
}

# Nodes pull the Spin app (an OCI artifact) from the private registry.
resource "azurerm_role_assignment" "aks_acr_pull" {
  scope                            = azurerm_container_registry.main.id
  role_definition_name             = "AcrPull"
  principal_id                     = azurerm_kubernetes_cluster.main.kubelet_identity[0].object_id
  skip_service_principal_aad_check = true
}

resource "azurerm_role_assignment" "cluster_admin" {
  for_each             = toset(concat([data.azurerm_client_config.current.object_id], var.cluster_admin_object_ids))
  scope                = azurerm_kubernetes_cluster.main.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = each.value
}

# Azure RBAC for Kubernetes takes a while to reach the API server; the
# helm releases (spinkube.tf) wait for it.
resource "time_sleep" "cluster_rbac" {
  create_duration = "90s"
  depends_on = [
    azurerm_role_assignment.cluster_admin,
    azurerm_kubernetes_cluster_node_pool.spin,
  ]
}
