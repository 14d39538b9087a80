terraform {
  required_providers {
    flowplane = {
      source = "flowplane/flowplane"
    }
  }
}

provider "flowplane" {
  endpoint = "http://127.0.0.1:8080" # or FLOWPLANE_ENDPOINT
  # api_token = var.flowplane_token   # or FLOWPLANE_TOKEN
  timeout = 30
}

resource "flowplane_namespace" "ops" {
  name = "platform.ops"
}

resource "flowplane_flow" "backup" {
  namespace = flowplane_namespace.ops.name
  content   = file("${path.module}/nightly-backup.yaml")
}
