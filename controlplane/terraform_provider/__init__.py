"""The Terraform provider for Flowplane, built on the `tf` framework.

Terraform starts the ``terraform-provider-flowplane`` executable
(``controlplane.terraform_provider.main``), which serves:

- resources ``flowplane_namespace`` and ``flowplane_flow``;
- data sources ``flowplane_namespace`` and ``flowplane_flow``.

The provider talks to the server only through the public API v1 (``client``),
so it works against any Flowplane server of a compatible version. See
docs/terraform.md for installation and behaviour.
"""
