variable "release_run" {
  type = string
}

data "flowplane_execution" "release" {
  id = var.release_run
}

output "release_provenance" {
  value = {
    state    = data.flowplane_execution.release.state
    revision = data.flowplane_execution.release.flow_revision
    commit   = data.flowplane_execution.release.git_commit_sha
    plan     = data.flowplane_execution.release.plan_id
  }
}
