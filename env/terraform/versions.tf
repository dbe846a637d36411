terraform {
  required_version = ">= 1.9.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.50.0, < 5.0.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }

  # State holds every generated key (Key Vault secrets are seeded from it):
  # keep it in a private, encrypted, access-controlled storage account.
  # Supply the rest with `terraform init -backend-config=backend.hcl` (README).
  backend "azurerm" {
    use_azuread_auth = true
  }
}
