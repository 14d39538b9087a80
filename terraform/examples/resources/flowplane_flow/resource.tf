resource "flowplane_flow" "backup" {
  namespace = flowplane_namespace.ops.name # optional; orders creation and deletion
  content   = file("${path.module}/nightly-backup.yaml")
}

# Inline YAML works too. Use <<EOT (not <<-EOT) to keep indentation exactly.
# In heredocs, write Pebble/Jinja tags {% ... %} as %%{ ... %}: HCL reads %{ itself.
resource "flowplane_flow" "hello" {
  content = <<EOT
id: hello
namespace: platform.ops
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "Hello from {{ flow.id }}"
EOT
}
