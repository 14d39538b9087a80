# <namespace>/<path>: the path may hold slashes
terraform import flowplane_namespace_file.etl platform.ops/scripts/etl.py
