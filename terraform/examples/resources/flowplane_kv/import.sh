# <namespace>/<key>
terraform import flowplane_kv.region platform.ops/region
