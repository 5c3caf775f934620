# Sourced by the scripts in this folder. ensure_packages PKG...: installs the Debian packages that
# are missing (apt-get when root), or prints the exact install line and exits when not root.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -eq 0 ]]; then
    echo "Installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
      echo "error: apt-get install ${missing[*]} failed" >&2; exit 1; }
  else
    echo "Missing packages. Install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

# What building exsal and its tests and examples needs.
EXSAL_BUILD_PACKAGES=(g++ cmake make libeigen3-dev doctest-dev libfccp-dev libcli11-dev zlib1g-dev libhdf5-dev libxml2-utils
                      libopenblas-openmp-dev)

# What some tests use when present (they skip with a message otherwise): anndata reads results.h5ad
# back as scanpy users do.
EXSAL_TEST_PACKAGES=(python3-anndata)

# What the optional MPI build (-DEXSAL_MPI=ON: data-parallel training, tests/mpi) needs in addition.
EXSAL_MPI_PACKAGES=(openmpi-bin libopenmpi-dev)
