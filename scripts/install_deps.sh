#!/usr/bin/env bash
# Installs sparser's build and test dependencies from Debian (bookworm) packages.
# Idempotent: packages already present are skipped by apt-get. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libtomlplusplus-dev
  libboost-program-options-dev
  googletest libgtest-dev
  libopencv-dev
  nlohmann-json3-dev
  zlib1g-dev
  # test-only: Python interop of checkpoints and shards, LaTeX tables compiling
  python3-torch python3-h5py python3-numpy python3-pil
  texlive-latex-base texlive-latex-recommended
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's LibTorch calls the generic BLAS/LAPACK alternatives; make sure they point
# at OpenBLAS (OpenMP flavour), otherwise matmuls fall back to the ~18x slower reference BLAS.
for alt in libblas.so.3 liblapack.so.3; do
  target=$(update-alternatives --list "${alt}-x86_64-linux-gnu" 2>/dev/null | grep openblas | head -n1 || true)
  if [ -n "$target" ]; then
    ${SUDO:-} update-alternatives --set "${alt}-x86_64-linux-gnu" "$target" >/dev/null
  fi
done
