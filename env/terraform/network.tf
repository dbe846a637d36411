resource "azurerm_virtual_network" "main" {
  name                = "vnet-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  address_space       = [var.vnet_address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "aks_nodes" {
  name                 = "snet-aks-nodes"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [var.aks_nodes_subnet_prefix]
}

resource "azurerm_subnet" "private_endpoints" {
  name                 = "snet-private-endpoints"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [var.private_endpoints_subnet_prefix]
  # Let the NSG below apply to the private endpoints themselves.
  private_endpoint_network_policies = "Enabled"
}

# AKS adds its own NSG on the node NICs for load balancer rules; this one
# only keeps the subnet from accepting anything the defaults would not.
resource "azurerm_network_security_group" "aks_nodes" {
  #checkov:skip=CKV_AZURE_160: Port 80 must reach the ingress controller for ACME HTTP-01 validation (cert-manager, from Let's Encrypt's unpredictable addresses); NGINX answers everything else on 80 with a redirect to HTTPS.
  name                = "nsg-${local.base}-aks-nodes"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags

  security_rule {
    name                       = "allow-http-https-to-ingress"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["80", "443"]
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "aks_nodes" {
  subnet_id                 = azurerm_subnet.aks_nodes.id
  network_security_group_id = azurerm_network_security_group.aks_nodes.id
}

# Private endpoints answer only HTTPS from the cluster and the operator runner.
resource "azurerm_network_security_group" "private_endpoints" {
  name                = "nsg-${local.base}-private-endpoints"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags

  security_rule {
    name                       = "allow-https-from-aks"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = var.aks_nodes_subnet_prefix
    destination_address_prefix = var.private_endpoints_subnet_prefix
  }

  security_rule {
    name                       = "allow-https-from-vnet-peers"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = var.private_endpoints_subnet_prefix
  }

  security_rule {
    name                       = "deny-all-other-inbound"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "private_endpoints" {
  subnet_id                 = azurerm_subnet.private_endpoints.id
  network_security_group_id = azurerm_network_security_group.private_endpoints.id
}

# --- private DNS -------------------------------------------------------------

locals {
  private_dns_zones = {
    vault    = "privatelink.vaultcore.azure.net"
    cosmos   = "privatelink.documents.azure.com"
    registry = "privatelink.azurecr.io"
  }

  # Networks that must resolve the private endpoints: this one, and the
  # operator's when given.
  dns_linked_vnets = merge(
    { workload = azurerm_virtual_network.main.id },
    var.operator_vnet_id == null ? {} : { operator = var.operator_vnet_id },
  )

  dns_zone_links = {
    for pair in setproduct(keys(local.private_dns_zones), keys(local.dns_linked_vnets)) :
    "${pair[0]}-${pair[1]}" => { zone = pair[0], vnet = pair[1] }
  }
}

resource "azurerm_private_dns_zone" "main" {
  for_each            = local.private_dns_zones
  name                = each.value
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "main" {
  for_each              = local.dns_zone_links
  name                  = "link-${each.key}"
  resource_group_name   = azurerm_resource_group.main.name
  private_dns_zone_name = azurerm_private_dns_zone.main[each.value.zone].name
  virtual_network_id    = local.dns_linked_vnets[each.value.vnet]
  registration_enabled  = false
  tags                  = local.tags
}

# --- operator network peering (optional) -------------------------------------

resource "azurerm_virtual_network_peering" "to_operator" {
  count                     = var.operator_vnet_id == null ? 0 : 1
  name                      = "peer-to-operator"
  resource_group_name       = azurerm_resource_group.main.name
  virtual_network_name      = azurerm_virtual_network.main.name
  remote_virtual_network_id = var.operator_vnet_id
  allow_forwarded_traffic   = false
  allow_gateway_transit     = false
}

resource "azurerm_virtual_network_peering" "from_operator" {
  count                     = var.operator_vnet_id == null ? 0 : 1
  name                      = "peer-to-${azurerm_virtual_network.main.name}"
  resource_group_name       = split("/", var.operator_vnet_id)[4]
  virtual_network_name      = split("/", var.operator_vnet_id)[8]
  remote_virtual_network_id = azurerm_virtual_network.main.id
  allow_forwarded_traffic   = false
  allow_gateway_transit     = false
}
