#!/usr/bin/env bash
# Workloads 1, 2, 4 and 5 on a lent NVIDIA machine, where nothing can be installed: tabtune
# native on wgpu (Vulkan) and the PyTorch already installed there (CUDA), a warm-up and 5
# repetitions each, alternating, in under 5 minutes. Build here, then carry the binary and the
# Vulkan loader:
#   bash bench/gpu.sh --prepare        # here: cargo build, copy libvulkan.so.1 to bench/gpu-libs
#   bash bench/gpu.sh                  # there (device tool: carry target/release/tabtune and
#                                      # bench/gpu-libs); figures to $OUT or bench/results
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --prepare ]; then
  cargo build --release --bin tabtune
  mkdir -p bench/gpu-libs
  lib=$(ldconfig -p | awk '/libvulkan.so.1 /{print $NF; exit}')
  [ -n "$lib" ] || { echo "gpu.sh: no libvulkan.so.1 here (apt-get install libvulkan1)" >&2; exit 1; }
  cp -L "$lib" bench/gpu-libs/
  echo "gpu.sh: carry target/release/tabtune and bench/gpu-libs"
  exit 0
fi

# The machine's own Vulkan loader first, ours where it has none; its NVIDIA driver supplies
# the ICD (/usr/share/vulkan/icd.d or /etc/vulkan/icd.d).
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$PWD/bench/gpu-libs"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null || echo "gpu.sh: no Vulkan ICD files found"
python=$(command -v python3 || command -v python)
timeout 290 "$python" bench/gpu.py --out "${OUT:-bench/results}"
