data "flowplane_flow" "backup" {
  namespace = "platform.ops"
  flow_id   = "nightly-backup"
}

output "backup_revision" {
  value = data.flowplane_flow.backup.revision
}
