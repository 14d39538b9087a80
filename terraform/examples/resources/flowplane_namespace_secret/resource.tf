variable "db_password" {
  type      = string
  sensitive = true
  ephemeral = true # never written to state or plan files (Terraform 1.11+)
}

resource "flowplane_namespace_secret" "db" {
  namespace   = flowplane_namespace.ops.name
  key         = "DB_PASSWORD"
  description = "Primary database"

  # Write-only: bump the version to send a new value (rotation).
  value_wo         = var.db_password
  value_wo_version = 1
}
