#!/usr/bin/env bash
# Build the wasm module for the browser: cargo (the `wasm` profile: Cargo.toml), wasm-bindgen
# --target web, then wasm-opt -Oz. Bindgen and wasm-opt rerun only when cargo produced a new
# module.
#   scripts/build-wasm.sh          the page's module, into www/pkg
#   scripts/build-wasm.sh --bench  with the `bench` feature (Session.bench, embedText for the
#                                  benchmark and the browser tests), into www/pkg-bench
# TABTUNE_WASM_OPT=off skips wasm-opt (minutes): `make demo` does (a page served from this
# machine does not need the smaller download), as do local iterations; the stamp records it, so
# a later normal build optimises again, while an optimised module also serves a build that
# asked for none.
set -euo pipefail
cd "$(dirname "$0")/.."

features=()
out=www/pkg
if [ "${1:-}" = --bench ]; then
  features=(--features bench)
  out=www/pkg-bench
fi
cargo build --profile wasm --lib --target wasm32-unknown-unknown "${features[@]}"
wasm=target/wasm32-unknown-unknown/wasm/tabtune.wasm
stamp=$out/.built-from
opt=${TABTUNE_WASM_OPT:-Oz}
want="$(cksum <"$wasm") opt=$opt"
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" = "$want" ] || { [ "$opt" = off ] && [ -n "$have" ] && [ "${have% opt=*}" = "${want% opt=*}" ]; }; then
  echo "build: $out is up to date"
  exit 0
fi
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
wasm-bindgen --target web --out-dir "$out.tmp" "$wasm"
# wasm-opt from npm's binaryen (pinned in package-lock.json); it needs the post-MVP features
# rustc emits named explicitly.
start=$(date +%s)
if [ "$opt" != off ]; then
node_modules/.bin/wasm-opt "-$opt" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
  "$out.tmp/tabtune_bg.wasm" -o "$out.tmp/tabtune_bg.opt.wasm"
mv "$out.tmp/tabtune_bg.opt.wasm" "$out.tmp/tabtune_bg.wasm"
fi
echo "$want" >"$out.tmp/.built-from"
rm -rf "$out" && mv "$out.tmp" "$out"
raw=$(stat -c %s "$out/tabtune_bg.wasm")
gz=$(gzip -9 -c "$out/tabtune_bg.wasm" | wc -c)
echo "build: $out/tabtune_bg.wasm $((raw / 1024)) KiB ($((gz / 1024)) KiB gzipped), wasm-opt took $(($(date +%s) - start)) s"
