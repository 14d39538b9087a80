"""Task types, one package per family as Kestra has them (docs/plugins.md).

Every family is registered through the ``flowplane.plugins`` entry points in
pyproject.toml, exactly as a third-party package registers its own, and is
read by ``controlplane.domain.tasktypes.registry``. ``api`` is what a plugin
may use of Flowplane.
"""
