#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing emb need, and selects the reference
# BLAS for libtorch. Idempotent: packages already present are not fetched again, and nothing is
# done when all of them are installed and the reference BLAS is selected.
#   setup-deps.sh          everything `make test` needs
#   setup-deps.sh --demo   only what `make demo` needs (the library, the emb tool, WordNet)
#   setup-deps.sh --bench  everything, plus the anchors only the benchmarks compare with (gensim)
set -euo pipefail

demo_packages=(
  cmake ninja-build g++ make pkg-config
  libfmt-dev libhwy-dev libcli11-dev nlohmann-json3-dev
  wordnet-base
)
packages=(
  "${demo_packages[@]}"
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev python3-torch python3-numpy
  fasttext
  clang-14 libclang-rt-14-dev libomp-14-dev
  libblas3
  libopenmpi-dev openmpi-bin
)
if [ "${1:-}" = "--demo" ]; then packages=("${demo_packages[@]}"); fi
if [ "${1:-}" = "--bench" ]; then packages+=(python3-gensim); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The parity suite is defined against the reference BLAS (libblas3): ATen computes the gradient of
# per_sample_weights with BLAS sdot/ddot, and an optimized BLAS (OpenBLAS, BLIS, MKL) sums in
# another order. Select it for libtorch when another BLAS provides libblas.so.3 (only if the
# alternative exists, and only when it is not selected already).
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
blas_alt="libblas.so.3-${multiarch}"
blas_ref="/usr/lib/${multiarch}/blas/libblas.so.3"
if [ -e "$blas_ref" ] && update-alternatives --query "$blas_alt" >/dev/null 2>&1; then
  current=$(update-alternatives --query "$blas_alt" | sed -n 's/^Value: //p')
  if [ "$current" != "$blas_ref" ]; then
    echo "setup-deps: selecting the reference BLAS $blas_ref for $blas_alt (was ${current:-none})"
    "${sudo_cmd[@]}" update-alternatives --set "$blas_alt" "$blas_ref"
  fi
fi
