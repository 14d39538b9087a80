terraform {
  required_version = ">= 1.5"

  required_providers {
    flowplane = {
      # Expands to registry.terraform.io/flowplane/flowplane. Nothing is fetched
      # from the registry: see README.md for dev_overrides or a filesystem mirror.
      source = "flowplane/flowplane"
    }
  }
}
