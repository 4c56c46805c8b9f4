#!/usr/bin/env bash
# Installs the Debian 12 packages vsieve builds and tests with (scripts/debian-packages.txt).
# Node.js and npm (for scripts/fetch-models.sh and the tests' s3rver and k8s schema check) are
# installed from Debian only when missing: an image that ships its own nodejs build conflicts
# with Debian's npm package.
# Run as root (or through sudo). Safe to run again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
mapfile -t packages < <(grep -v '^\s*#' "$here/debian-packages.txt" | grep -v '^\s*$')
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=900 update -qq
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
  "${packages[@]}" >/dev/null
echo "install-deps: ${#packages[@]} packages present"
