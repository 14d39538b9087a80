terraform import flowplane_namespace.ops platform.ops
