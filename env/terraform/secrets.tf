# Generated keys. Host keys are compared as strings by crates/hostkey, so
# plain alphanumerics avoid any quoting trouble in headers and shells.
locals {
  host_keys = toset([
    "healthkey",
    "patientapiprimarykey",
    "patientapisecondarykey",
    "auditapiprimarykey",
    "auditapisecondarykey",
  ])

  # One primary and one secondary key per gateway subscription.
  subscription_key_slots = toset(flatten([
    for name in keys(var.subscriptions) : ["${name}/primary", "${name}/secondary"]
  ]))
}

resource "random_password" "host_key" {
  for_each = local.host_keys
  length   = 48
  special  = false
}

resource "random_bytes" "subscription_key" {
  for_each = local.subscription_key_slots
  length   = 32
}

locals {
  # Raw subscription keys: handed to subscribers (output subscription_keys),
  # never stored in Key Vault. hex keeps them header- and URL-safe.
  subscription_keys = { for slot in local.subscription_key_slots : slot => random_bytes.subscription_key[slot].hex }

  # The `subscriptions` variable (format parsed by crates/gateway-policy):
  # SHA-256 digests (lowercase hex) of the keys, never the keys.
  subscriptions_json = jsonencode([
    for name, s in var.subscriptions : {
      name               = name
      primaryKeySha256   = sha256(local.subscription_keys["${name}/primary"])
      secondaryKeySha256 = sha256(local.subscription_keys["${name}/secondary"])
      scopes             = s.scopes
      rateLimit          = { calls = s.rate_limit.calls, periodSeconds = s.rate_limit.period_seconds }
      quota              = { calls = s.quota.calls, periodSeconds = s.quota.period_seconds }
    }
  ])

  # Value of every Spin variable. Callers start on the primary keys;
  # env/scripts/rotate-key.sh moves them between primary and secondary.
  spin_variable_values = {
    subscriptions          = local.subscriptions_json
    healthkey              = random_password.host_key["healthkey"].result
    patientapiprimarykey   = random_password.host_key["patientapiprimarykey"].result
    patientapisecondarykey = random_password.host_key["patientapisecondarykey"].result
    patientapikey          = random_password.host_key["patientapiprimarykey"].result
    auditapiprimarykey     = random_password.host_key["auditapiprimarykey"].result
    auditapisecondarykey   = random_password.host_key["auditapisecondarykey"].result
    auditapikey            = random_password.host_key["auditapiprimarykey"].result
    cosmoskey              = azurerm_cosmosdb_account.main.primary_key
  }

  secret_content_types = {
    subscriptions = "application/json"
  }
}

resource "time_static" "secrets_seeded" {}

# One secret per Spin variable in local.spin_variables, named exactly like it.
resource "azurerm_key_vault_secret" "spin_variable" {
  for_each        = local.spin_variables
  name            = each.key
  value           = local.spin_variable_values[each.key]
  key_vault_id    = azurerm_key_vault.main.id
  content_type    = lookup(local.secret_content_types, each.key, "text/plain; spin-variable=secret")
  expiration_date = timeadd(time_static.secrets_seeded.rfc3339, "8760h")
  tags            = { spin-variable = each.key }

  # Terraform seeds each secret once. From then on the values belong to
  # env/scripts/rotate-key.sh (zero-downtime rotation), which also renews
  # expiration_date; re-seed one deliberately with
  # terraform apply -replace='azurerm_key_vault_secret.spin_variable["<name>"]'.
  # (A name missing from spin_variable_values fails the plan at the index
  # above; env/tests checks the two lists are equal.)
  lifecycle {
    ignore_changes = [value, expiration_date]
  }

  depends_on = [time_sleep.key_vault_rbac]
}
