#!/usr/bin/env bash
# RIANN on one sensor (issue 18): the pre-trained network, the network fine-tuned on 4 minutes
# of the target sensor (assets/datasets/imu/train), and the same network trained from scratch
# on the same minutes, each judged on 4 held-out minutes (assets/datasets/imu/test) by the
# attitude error in degrees. The recipe is bench/recipes/riann.json (from scratch: the same
# epochs, every layer from the start).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/tabtune
data=assets/datasets/imu
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== the pre-trained network on the held-out minutes"
$bin eval --model assets/models/riann --data $data/test | grep -E "attitude|^q"
echo "== fine-tuned on the target sensor"
$bin finetune --model assets/models/riann --data $data/train --val $data/test --out "$out/ft" \
  --recipe bench/recipes/riann.json | tr '\r' '\n' | grep -E "^(head|finetune):|attitude|^before|^after"
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(f"{sys.argv[1]}/ft/report.json"))["report"]
print(json.dumps({"before": r["regression_before"]["attitude"], "after": r["regression"]["attitude"]}))
PY
echo "== the same network from scratch on the same minutes"
python3 -c "import json; r=json.load(open('bench/recipes/riann.json')); r['series']['from_scratch']=True; print(json.dumps(r))" > "$out/scratch.json"
$bin finetune --model assets/models/riann --data $data/train --val $data/test --out "$out/scratch" \
  --recipe "$out/scratch.json" | tr '\r' '\n' | grep -E "^(scratch|finetune):|^after" -A1 | grep -v "^--"
