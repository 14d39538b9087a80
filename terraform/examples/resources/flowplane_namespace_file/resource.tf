# A script the namespace's flows can read (Kestra's namespace files).
resource "flowplane_namespace_file" "etl" {
  namespace = flowplane_namespace.ops.name
  path      = "scripts/etl.py"
  content   = file("${path.module}/scripts/etl.py")
}

# Binary files go base64-encoded.
resource "flowplane_namespace_file" "model" {
  namespace      = flowplane_namespace.ops.name
  path           = "models/classifier.bin"
  content_base64 = filebase64("${path.module}/models/classifier.bin")
}
