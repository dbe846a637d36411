variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "location" {
  description = "Primary Azure region (normalized name, e.g. westeurope)."
  type        = string
  default     = "westeurope"
}

variable "secondary_location" {
  description = "Optional second region: adds a Cosmos DB read region and an ACR replica (see README, multi-region). null = single region."
  type        = string
  default     = null
}

variable "name" {
  description = "Short workload name used in every resource name."
  type        = string
  default     = "patrec"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.name))
    error_message = "name must be 2-10 lowercase letters or digits, starting with a letter (it ends up in globally unique names)."
  }
}

variable "environment" {
  description = "Environment suffix (prod, test, ...)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z0-9]{1,6}$", var.environment))
    error_message = "environment must be 1-6 lowercase letters or digits."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default = {
    workload       = "patient-records"
    dataclass      = "phi"
    managed-by     = "terraform"
    classification = "confidential"
  }
}

# --- network ---------------------------------------------------------------

variable "vnet_address_space" {
  description = "Address space of the workload virtual network."
  type        = string
  default     = "10.40.0.0/16"
}

variable "aks_nodes_subnet_prefix" {
  description = "Subnet of the AKS nodes (pods use the overlay pod CIDR)."
  type        = string
  default     = "10.40.0.0/22"
}

variable "private_endpoints_subnet_prefix" {
  description = "Subnet holding the Key Vault, Cosmos DB and ACR private endpoints. env/k8s NetworkPolicies allow egress to exactly this range."
  type        = string
  default     = "10.40.8.0/24"
}

variable "pod_cidr" {
  description = "Azure CNI overlay pod CIDR (must not overlap any peered network)."
  type        = string
  default     = "192.168.0.0/16"
}

variable "operator_vnet_id" {
  description = "Optional resource id of the VNet the operator runner (Terraform, kubectl, spin registry push) lives in. It is peered and linked to the private DNS zones, because every data plane here is private. null = none (the runner is already inside this VNet or reaches it otherwise)."
  type        = string
  default     = null
}

# --- AKS -------------------------------------------------------------------

variable "kubernetes_version" {
  description = "AKS Kubernetes minor version. env/k8s manifests are validated against the same minor (scripts/check-env)."
  type        = string
  default     = "1.35"
}

variable "system_node_vm_size" {
  description = "VM size of the system node pool."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "spin_node_vm_size" {
  description = "VM size of the node pool that runs Spin apps (x86_64: the shim download below is for x86_64)."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "spin_node_count" {
  description = "Minimum and maximum node count of the Spin node pool (autoscaled)."
  type        = object({ min = number, max = number })
  default     = { min = 3, max = 6 }

  validation {
    condition     = var.spin_node_count.min >= 2 && var.spin_node_count.max >= var.spin_node_count.min
    error_message = "spin_node_count.min must be at least 2 (one node per zone failure) and max >= min."
  }
}

variable "cluster_admin_object_ids" {
  description = "Entra ID object ids (users or groups) granted 'Azure Kubernetes Service RBAC Cluster Admin'. The identity running Terraform is always added."
  type        = list(string)
  default     = []
}

# --- app -------------------------------------------------------------------

variable "app_namespace" {
  description = "Kubernetes namespace of the app (env/k8s/namespace.yaml)."
  type        = string
  default     = "patient-records"
}

variable "app_service_account" {
  description = "Service account the SpinApp pods run as (env/k8s/serviceaccount.yaml). The workload identity is federated to exactly this subject."
  type        = string
  default     = "patient-records"
}

variable "app_hostname" {
  description = "Public host name of the API (DNS A record to the ingress IP; README)."
  type        = string
  default     = "patients.example.org"
}

variable "acme_email" {
  description = "Contact e-mail for the Let's Encrypt ACME account used by cert-manager."
  type        = string
  default     = "platform-team@example.org"
}

variable "acme_server" {
  description = "ACME directory URL. Use the staging directory while testing to avoid rate limits."
  type        = string
  default     = "https://acme-v02.api.letsencrypt.org/directory"
}

variable "subscriptions" {
  description = "Gateway subscriptions: name => scopes and limits. Each gets a generated primary and secondary key; only their SHA-256 digests reach Key Vault (secret `subscriptions`)."
  type = map(object({
    scopes     = list(string)
    rate_limit = object({ calls = number, period_seconds = number })
    quota      = object({ calls = number, period_seconds = number })
  }))
  default = {
    "load-test" = {
      scopes     = ["patients.read", "patients.write", "audit.read"]
      rate_limit = { calls = 100, period_seconds = 60 }
      quota      = { calls = 100000, period_seconds = 86400 }
    }
  }

  validation {
    condition     = alltrue([for name in keys(var.subscriptions) : can(regex("^[A-Za-z0-9._-]{1,64}$", name))])
    error_message = "Subscription names must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'."
  }

  validation {
    condition = alltrue(flatten([
      for s in values(var.subscriptions) : [
        length(s.scopes) > 0,
        alltrue([for scope in s.scopes : contains(["patients.read", "patients.write", "audit.read"], scope)]),
      ]
    ]))
    error_message = "Every subscription needs at least one scope out of patients.read, patients.write, audit.read."
  }
}

variable "cosmos_max_throughput" {
  description = "Autoscale maximum RU/s of each Cosmos DB database."
  type        = number
  default     = 4000
}

variable "log_retention_days" {
  description = "Log Analytics retention (audit and diagnostics)."
  type        = number
  default     = 365
}

# --- SpinKube and cluster add-ons (chart versions) ---------------------------

variable "cert_manager_version" {
  description = "cert-manager Helm chart version."
  type        = string
  default     = "v1.19.1"
}

variable "runtime_class_manager_version" {
  description = "runtime-class-manager (successor of the kwasm operator) Helm chart version."
  type        = string
  default     = "0.1.0"
}

variable "spin_operator_version" {
  description = "spin-operator Helm chart version. Keep charts/spinkube-platform/crds in step with it."
  type        = string
  default     = "0.6.1"
}

variable "spin_shim_version" {
  description = "containerd-shim-spin release installed on the Spin nodes (v0.24.0 embeds Spin 3.6.3, which runs spin-sdk 5 / wasm32-wasip2 components)."
  type        = string
  default     = "v0.24.0"
}

variable "otel_collector_chart_version" {
  description = "opentelemetry-collector Helm chart version (traces from Spin to Application Insights)."
  type        = string
  default     = "0.136.0"
}

variable "reloader_chart_version" {
  description = "Stakater Reloader Helm chart version: rolls the SpinApp and terminator Deployments when a certificate Secret they name changes (split deployment)."
  type        = string
  default     = "2.2.3"
}

variable "kyverno_chart_version" {
  description = "Kyverno Helm chart version: its ClusterPolicy (charts/spinkube-platform, zone-spread-policy.yaml) adds zone spread to Spin pods, which the SpinApp CRD cannot express."
  type        = string
  default     = "3.5.2"
}
