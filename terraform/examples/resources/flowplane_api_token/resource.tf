resource "flowplane_api_token" "ci" {
  name       = "ci-deployer"
  role       = "editor"
  namespaces = ["team-a.*"]
  expires_at = "2027-01-01T00:00:00Z"
}

# Hand the secret to another system, e.g. a CI variable.
output "ci_token" {
  value     = flowplane_api_token.ci.token
  sensitive = true
}
