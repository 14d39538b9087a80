provider "flowplane" {
  endpoint  = var.flowplane_endpoint
  api_token = var.flowplane_token
  timeout   = 30
}

# --- Namespaces ---------------------------------------------------------------

resource "flowplane_namespace" "ops" {
  name        = "platform.ops"
  description = "Operations: backups and releases"
  labels = {
    team = "ops"
    tier = "critical"
  }
  variables = {
    backup_volume = "/var/backups/ops"
    environment   = "production"
  }
  # Flows in these namespaces may reach into this one (KV, Resume, Subflow, flow
  # triggers). Globs such as "platform.*" work too. Leaving the attribute out
  # means none: a list added on the server shows up in the next plan.
  allowed_namespaces = ["platform.monitoring"]
}

resource "flowplane_namespace" "monitoring" {
  name        = "platform.monitoring"
  description = "Heartbeats and health checks"
  labels = {
    team = "sre"
  }
}

# --- Secrets ------------------------------------------------------------------
# The value is redacted in plans and never returned by the server, but it is
# stored in Terraform state: keep the state somewhere private.

resource "flowplane_namespace_secret" "backup_key" {
  count       = nonsensitive(var.backup_encryption_key != null) ? 1 : 0
  namespace   = flowplane_namespace.ops.name
  key         = "BACKUP_KEY"
  value       = var.backup_encryption_key
  description = "Encrypts the nightly backups"
}

# --- A Git source ---------------------------------------------------------------
# Flowplane keeps the flows of this repository active (origin `git:platform-flows`).
# Plans wait for two reviewers; unset attributes (flows_path, secrets_path,
# poll_interval_seconds, prune, self_heal) keep the server's defaults and never
# show up as a diff. Set flows_repository_url to create it.

resource "flowplane_git_source" "platform" {
  count              = var.flows_repository_url != null ? 1 : 0
  id                 = "platform-flows"
  url                = var.flows_repository_url
  branch             = "main"
  approval           = "approval"
  required_approvals = 2
  # Signs push webhooks. Like secret values, it is redacted in plans but kept in state.
  webhook_secret = var.webhook_secret
}

# --- Flows --------------------------------------------------------------------
# Each flow's YAML lives beside this file; file() passes it byte for byte.
# Setting `namespace` from the namespace resource orders creation (namespace
# first) and destruction (flows first); it must match the YAML's namespace.

resource "flowplane_flow" "nightly_backup" {
  namespace = flowplane_namespace.ops.name
  content   = file("${path.module}/nightly-backup.yaml")
}

resource "flowplane_flow" "promote_release" {
  namespace = flowplane_namespace.ops.name
  content   = file("${path.module}/promote-release.yaml")
}

resource "flowplane_flow" "heartbeat" {
  namespace = flowplane_namespace.monitoring.name
  content   = file("${path.module}/heartbeat.yaml")
}

# --- Reading back ---------------------------------------------------------------

data "flowplane_flow" "backup" {
  namespace = flowplane_flow.nightly_backup.namespace
  flow_id   = flowplane_flow.nightly_backup.flow_id
}

output "flows" {
  description = "Managed flows and their current revisions."
  value = {
    for flow in [
      flowplane_flow.nightly_backup,
      flowplane_flow.promote_release,
      flowplane_flow.heartbeat,
    ] : flow.id => flow.revision
  }
}

output "backup_origin" {
  description = "Who wrote the backup flow's current revision (terraform after apply)."
  value       = data.flowplane_flow.backup.origin
}

output "git_source" {
  description = "The Git source's id and the version the server holds (null without a repository)."
  value = one([
    for source in flowplane_git_source.platform : { id = source.id, version = source.version }
  ])
}
