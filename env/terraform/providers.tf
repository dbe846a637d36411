provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true

  features {
    key_vault {
      # Purge protection is on: never try to purge on destroy.
      purge_soft_delete_on_destroy = false
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
}

# The cluster has local accounts disabled: helm authenticates with Entra ID
# through kubelogin, using the identity that runs Terraform (az login).
provider "helm" {
  kubernetes = {
    # Public FQDN of the private API server: it resolves (publicly) to the
    # private IP, so the peered operator network needs no private DNS link.
    host                   = "https://${azurerm_kubernetes_cluster.main.fqdn}:443"
    cluster_ca_certificate = base64decode(azurerm_kubernetes_cluster.main.kube_config[0].cluster_ca_certificate)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      # 6dae42f8-... is the fixed application id of the AKS Entra ID server.
      args = ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    }
  }
}
