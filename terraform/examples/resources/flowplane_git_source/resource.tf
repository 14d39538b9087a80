variable "webhook_secret" {
  type      = string
  sensitive = true
  ephemeral = true # never written to state or plan files (Terraform 1.11+)
}

resource "flowplane_git_source" "platform" {
  id                 = "platform-flows"
  url                = "https://git.example.com/platform/flows.git"
  branch             = "main"
  approval           = "approval"
  required_approvals = 2

  # Write-only: bump the version to send a new secret (rotation).
  webhook_secret_wo         = var.webhook_secret
  webhook_secret_wo_version = 1
}
