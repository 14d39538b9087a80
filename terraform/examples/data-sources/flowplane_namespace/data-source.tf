data "flowplane_namespace" "ops" {
  name = "platform.ops"
}

output "ops_team" {
  value = lookup(data.flowplane_namespace.ops.labels, "team", "unowned")
}

output "ops_callers" {
  value = data.flowplane_namespace.ops.allowed_namespaces
}
