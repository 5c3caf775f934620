#!/usr/bin/env bash
# Checks the optional MPI build against MPICH instead of Open MPI: installs MPICH if it is missing
# (Debian's mpich and libmpich-dev, beside Open MPI, whose mpicxx/mpirun stay the defaults),
# configures a Release build with MPICH's compiler wrapper and launcher, checks that the MPI
# programs link libmpich and not Open MPI's libmpi, builds what the MPI tests need and runs them
# (CTest label mpi, 2 processes under MPICH's mpiexec). Not part of CI.
#   scripts/check-mpich.sh [BUILD_DIR]    default build-mpich/
# Environment: JOBS (parallel build jobs, default nproc). From scratch with JOBS=1: 6.5 minutes on
# a 2-core Xeon, most of it compiling velten_pipeline; the tests take 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

case "${1:-}" in -h|--help) sed -n '2,9p' "$0"; exit 0 ;; esac
dir="${1:-build-mpich}"
jobs="${JOBS:-$(nproc)}"

ensure_packages "${EXSAL_BUILD_PACKAGES[@]}"

# MPICH, with sudo when not root. Installing it can move the mpicxx/mpirun alternatives: put back
# whatever they were (the other builds use the default wrapper and launcher).
mpich_packages=(mpich libmpich-dev)
missing=()
for p in "${mpich_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  alternatives=(mpi mpirun mpi-x86_64-linux-gnu)
  declare -A before=()
  for a in "${alternatives[@]}"; do
    before[$a]=$(update-alternatives --query "$a" 2>/dev/null | sed -n 's/^Value: //p' || true)
  done
  echo "Installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    { "${as_root[@]}" apt-get update -qq &&
      "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
  for a in "${alternatives[@]}"; do
    now=$(update-alternatives --query "$a" 2>/dev/null | sed -n 's/^Value: //p' || true)
    if [[ -n "${before[$a]}" && "$now" != "${before[$a]}" ]]; then
      echo "Putting the alternative $a back to ${before[$a]} (installing MPICH set $now)"
      "${as_root[@]}" update-alternatives --set "$a" "${before[$a]}"
    fi
  done
fi

# MPICH's own wrapper and launcher by name: FindMPI takes the include folder and libraries from
# the wrapper, so nothing of Open MPI's comes in even where mpicxx is Open MPI's.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DEXSAL_MPI=ON -DEXSAL_BUILD_BENCHMARKS=OFF \
      -DMPI_CXX_COMPILER=/usr/bin/mpicxx.mpich -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.mpich >/dev/null
grep -q '^MPI_CXX_HEADER_DIR:PATH=.*mpich' "$dir/CMakeCache.txt" || {
  echo "check-mpich.sh: $dir was configured with another MPI ($(grep '^MPI_CXX_HEADER_DIR' "$dir/CMakeCache.txt"));" \
       "remove $dir/CMakeCache.txt or give another folder" >&2
  exit 1
}

cmake --build "$dir" -j "$jobs" --target exsal_mpi_tests

for program in tests/mpi/test_mpi tests/mpi/mpi_abort_check examples/velten_pipeline; do
  libraries=$(ldd "$dir/$program")
  if ! grep -q 'libmpich\.so' <<<"$libraries" || grep -q 'libmpi\.so' <<<"$libraries"; then
    echo "check-mpich.sh: $dir/$program does not link MPICH alone:" >&2
    grep -E 'mpi' <<<"$libraries" >&2 || true
    exit 1
  fi
done
echo "MPI programs link $(ldd "$dir/tests/mpi/test_mpi" | grep -o 'libmpich\.so[^ ]*' | head -1) ($(mpichversion -v 2>/dev/null | sed -n 's/^MPICH Version:[[:space:]]*//p'))"

ctest --test-dir "$dir" --output-on-failure -L '^mpi$'
