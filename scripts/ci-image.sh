#!/usr/bin/env bash
# CI step for the container image: install podman, mmdebstrap and runc (root,
# Debian), then build the image, run it and check it (scripts/image-smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v runc >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq podman mmdebstrap runc
fi
scripts/image-smoke
