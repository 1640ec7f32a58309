#!/usr/bin/env bash
# LoRA against full fine-tuning on the same recipe and seed, natively on the CPU (make
# bench-lora): all-MiniLM-L6-v2 on rotten_tomatoes (PER_CLASS rows of each class) and
# MobileNetV2 on the demo digits (1,200 training, 300 validation images). Each pair differs in
# finetune.lora alone; the table (validation accuracy, phase-2 seconds and steps a second,
# parameters trained, AdamW's moments) goes to bench/results/lora-cpu.md.
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
run mobilenet_v2-full "${images[@]}"
run mobilenet_v2-lora "${images[@]}" --lora "$rank"
python3 - "$runs" "$rank" <<'PY' | tee bench/results/lora-cpu.md
import json, re, sys
from pathlib import Path
runs, rank = Path(sys.argv[1]), sys.argv[2]
print(f"| model | phase 2 | validation accuracy | phase-2 s | steps/s | parameters trained | AdamW moments |")
print("|---|---|---|---|---|---|---|")
for model in ["minilm", "mobilenet_v2"]:
    for kind in ["full", "lora"]:
        r = json.loads((runs / f"{model}-{kind}" / "report.json").read_text())
        ph = r["report"]["phases"][-1]
        log = (runs / f"{model}-{kind}.log").read_text()
        m = re.search(r"trains (\d+) of (\d+) parameters", log)
        if m:
            trained, total = int(m[1]), int(m[2])
        else:
            trained = total = None
        steps = len(ph["losses"])
        acc = r["report"]["metrics"]["accuracy"]
        label = f"LoRA r={rank}" if kind == "lora" else "all weights"
        params = f"{trained:,} of {total:,} ({100 * trained / total:.2f}%)" if trained else "all"
        moments = f"{2 * 4 * trained / 2**20:.2f} MiB" if trained else "2 x the model"
        print(f"| {model} | {label} | {100 * acc:.1f}% | {ph['seconds']:.0f} | {steps / ph['seconds']:.2f} | {params} | {moments} |")
PY
