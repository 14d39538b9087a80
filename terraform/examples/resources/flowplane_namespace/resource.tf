resource "flowplane_namespace" "ops" {
  name        = "platform.ops"
  description = "Operations: backups and releases"
  labels = {
    team = "ops"
  }
  variables = {
    backup_volume = "/var/backups/ops"
    retention     = "14" # variables are strings in Terraform
  }
  # Flows in these namespaces may use this one's KV store, resume its runs,
  # call its flows as subflows and trigger on their runs.
  allowed_namespaces = ["platform.monitoring", "release.*"]
}
