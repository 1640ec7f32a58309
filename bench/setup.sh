#!/usr/bin/env bash
# What `make bench` needs beyond `make setup`, each step skipped when already done:
#   1. PyTorch (CPU contender) in its own virtualenv bench/.venv, from PyPI; the install time
#      is kept in bench/.venv/tabtune-install.json for the benchmark's table;
#   2. TF.js and its WebGPU and WASM backends, pinned in bench/package-lock.json;
#   3. Mesa's lavapipe Vulkan driver (Debian mesa-vulkan-drivers), so the native wgpu backend
#      has an adapter on a machine without a GPU;
#   4. image folders of 64, 1,000, 2,000, 5,000 and 10,000 files (links to the MNIST demo
#      digits, cycled) under bench/data.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf 'bench setup: %s\n' "$*"; }

venv=bench/.venv
packages=(torch torchvision transformers pillow numpy)
if ! "$venv/bin/python" -c 'import torch, torchvision, transformers, PIL' 2>/dev/null; then
  step "installing PyTorch into $venv: ${packages[*]} (several GB of wheels)"
  start=$EPOCHREALTIME
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
  end=$EPOCHREALTIME
  size=$(du -sb "$venv" | cut -f1)
  printf '{"seconds": %s, "bytes": %s, "packages": "%s", "date": "%s"}\n' \
    "$(python3 -c "print(round($end - $start, 1))")" "$size" "${packages[*]}" "$(date -u +%FT%TZ)" >"$venv/tabtune-install.json"
  step "PyTorch installed: $(cat "$venv/tabtune-install.json")"
fi

if ! cmp -s bench/package-lock.json bench/node_modules/.tabtune-lock 2>/dev/null; then
  step "npm ci --prefix bench (TF.js, pinned in bench/package-lock.json)"
  npm ci --prefix bench --no-audit --no-fund --loglevel=error
  cp bench/package-lock.json bench/node_modules/.tabtune-lock
fi

if [ ! -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && [ ! -e /usr/share/vulkan/icd.d/lvp_icd.aarch64.json ]; then
  if [ "$(id -u)" = 0 ]; then
    step "installing Debian packages: mesa-vulkan-drivers libvulkan1 (lavapipe)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    step "no lavapipe: the native wgpu row will say so (sudo apt-get install mesa-vulkan-drivers)"
  fi
fi

mapfile -t digits < <(cd assets/datasets/mnist && find . -name '*.png' | sort)
for n in 64 1000 2000 5000 10000; do
  dir=bench/data/n$n
  [ -f "$dir/.done" ] && continue
  rm -rf "$dir"
  for ((i = 0; i < n; i++)); do
    # Round-robin over the classes so every folder is balanced.
    f=${digits[$(((i % 10) * 150 + (i / 10) % 150))]}
    class=${f:2:1}
    mkdir -p "$dir/$class"
    ln -s "$PWD/assets/datasets/mnist/${f#./}" "$dir/$class/$i.png"
  done
  touch "$dir/.done"
done
