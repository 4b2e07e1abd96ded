#!/usr/bin/env bash
# Usage: scripts/fetch_libtorch2_headers.sh DIR
# Fetches the headers of a LibTorch 2.x (Debian trixie's libtorch-dev: a 2.5 MB package,
# after ~20 MB of package lists) into DIR, for the test that syntax-checks every LibTorch
# translation unit against them (build.libtorch2_syntax): this machine builds with
# bookworm's LibTorch 1.13, a GPU build with a 2.x, and the code must compile for both.
# apt-get runs with a private, temporary state; the system's apt configuration is left
# as it is. Does nothing when DIR already holds the headers.
set -euo pipefail

dir=${1:?usage: $0 DIR}
version_h=$dir/usr/include/torch/csrc/api/include/torch/version.h
if [ -f "$version_h" ]; then
  echo "fetch_libtorch2_headers: present in $dir"
  exit 0
fi

apt_dir=$(mktemp -d "${TMPDIR:-/tmp}/sparser-apt.XXXXXX")
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$apt_dir/debs"
echo "deb http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list"
apt_options=(-qq -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
             -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=$(id -un)")
if ! apt-get "${apt_options[@]}" update ||
   ! (cd "$apt_dir/debs" && apt-get "${apt_options[@]}" download libtorch-dev); then
  echo "fetch_libtorch2_headers: cannot download libtorch-dev from Debian trixie (deb.debian.org)" >&2
  exit 1
fi

rm -rf "$dir.partial" && mkdir -p "$dir.partial"
dpkg-deb -x "$apt_dir"/debs/libtorch-dev_*.deb "$dir.partial"
version_h="$dir.partial/usr/include/torch/csrc/api/include/torch/version.h"
major=$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' "$version_h")
if [ "${major:-0}" -lt 2 ]; then
  echo "fetch_libtorch2_headers: trixie's libtorch-dev is LibTorch ${major:-?}.x, not 2.x" >&2
  exit 1
fi
rm -rf "$dir" && mv "$dir.partial" "$dir"
echo "fetch_libtorch2_headers: $(basename "$apt_dir"/debs/*.deb) into $dir"
