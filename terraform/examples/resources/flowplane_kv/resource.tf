# A string, read by flows with kv.Get or {{ kv('region') }}.
resource "flowplane_kv" "region" {
  namespace   = flowplane_namespace.ops.name
  key         = "region"
  value       = "eu-west-1"
  description = "Where the backups go"
}

# JSON: flows read a number, a list or an object.
resource "flowplane_kv" "retention" {
  namespace = flowplane_namespace.ops.name
  key       = "retention"
  type      = "JSON"
  value     = jsonencode({ days = 30, tiers = ["hot", "cold"] })
}
