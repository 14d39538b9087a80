terraform import flowplane_flow.backup platform.ops/nightly-backup
