#!/usr/bin/env bash
# LoRA against full fine-tuning on the same recipe and seed, natively on the CPU (make
# bench-lora): all-MiniLM-L6-v2 on rotten_tomatoes (the first PER_CLASS rows of each class;
# every later row, 2,400 at 300, is a held-out set each model is evaluated on, besides the
# recipe's 20% validation split) and MobileNetV2 on the demo digits (1,200 training, 300
# validation images). Each pair differs in finetune.lora alone; one more text run gives the
# adapters a higher rate (finetune.lr=3e-3). The table (accuracies, phase-2 seconds and steps a
# second, parameters trained, AdamW's moments) goes to bench/results/lora-cpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/tabtune
runs=bench/results/lora-runs
rank=${LORA_RANK:-8}
per_class=${PER_CLASS:-300}
mkdir -p "$runs"
run() { # name, args...
  local name=$1; shift
  if [ ! -f "$runs/$name/report.json" ]; then
    echo "lora bench: $name" >&2
    "$bin" finetune --out "$runs/$name" --seed 7 "$@" > "$runs/$name.log" 2>&1 || { tail -20 "$runs/$name.log"; exit 1; }
  fi
}
text=(--model assets/models/all-MiniLM-L6-v2 --data assets/datasets/rotten_tomatoes.csv --per-class "$per_class")
images=(--model assets/models/mobilenet_v2 --data assets/datasets/mnist)
run minilm-full "${text[@]}"
run minilm-lora "${text[@]}" --lora "$rank"
run minilm-lora-lr3e-3 "${text[@]}" --lora "$rank" --set finetune.lr=3e-3
run mobilenet_v2-full "${images[@]}"
run mobilenet_v2-lora "${images[@]}" --lora "$rank"
# The held-out rows: every rotten_tomatoes row after the first PER_CLASS of its class.
heldout="$runs/rotten_tomatoes-heldout.csv"
python3 - "$per_class" "$heldout" <<'PY'
import csv, sys
per_class, out = int(sys.argv[1]), sys.argv[2]
seen, rows = {}, []
for r in csv.DictReader(open("assets/datasets/rotten_tomatoes.csv")):
    seen[r["label"]] = seen.get(r["label"], 0) + 1
    if seen[r["label"]] > per_class:
        rows.append(r)
with open(out, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["text", "label"])
    w.writeheader()
    w.writerows(rows)
PY
for m in minilm-full minilm-lora minilm-lora-lr3e-3; do
  "$bin" eval --model "$runs/$m" --data "$heldout" > "$runs/$m-heldout.log" 2>&1
done
python3 - "$runs" "$rank" <<'PY' | tee bench/results/lora-cpu.md
import json, re, sys
from pathlib import Path
runs, rank = Path(sys.argv[1]), sys.argv[2]
# The model's parameter count, as the LoRA run printed it.
totals = {}
for model in ["minilm", "mobilenet_v2"]:
    m = re.search(r"of (\d+) parameters", (runs / f"{model}-lora.log").read_text())
    totals[model] = int(m[1]) if m else None
print(f"| model | phase 2 | validation accuracy | held-out accuracy | phase-2 s | steps/s | parameters trained | AdamW moments |")
print("|---|---|---|---|---|---|---|---|")
for model, kinds in [("minilm", ["full", "lora", "lora-lr3e-3"]), ("mobilenet_v2", ["full", "lora"])]:
    for kind in kinds:
        r = json.loads((runs / f"{model}-{kind}" / "report.json").read_text())
        held = runs / f"{model}-{kind}-heldout.log"
        m = held.exists() and re.search(r"accuracy ([\d.]+)% \((\d+) rows\)", held.read_text())
        held = f"{m[1]}% ({int(m[2]):,} rows)" if m else "–"
        ph = r["report"]["phases"][-1]
        log = (runs / f"{model}-{kind}.log").read_text()
        m = re.search(r"trains (\d+) of (\d+) parameters", log)
        if m:
            trained, total = int(m[1]), int(m[2])
        else:
            trained = total = None
        steps = len(ph["losses"])
        acc = r["report"]["metrics"]["accuracy"]
        label = {"full": "all weights", "lora": f"LoRA r={rank}", "lora-lr3e-3": f"LoRA r={rank}, lr 3e-3"}[kind]
        if trained:
            params, moments = f"{trained:,} ({100 * trained / total:.2f}%)", f"{8 * trained / 2**20:.2f} MiB"
        else:
            total = totals.get(model)
            params = f"every one ({total:,})" if total else "every one"
            moments = f"{8 * total / 2**20:.0f} MiB" if total else "–"
        print(f"| {model} | {label} | {100 * acc:.1f}% | {held} | {ph['seconds']:.0f} | {steps / ph['seconds']:.2f} | {params} | {moments} |")
PY
