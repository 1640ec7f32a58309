"""Driver of bench/gpu.sh: tabtune (`tabtune bench --device gpu`, wgpu) and PyTorch
(`torch_bench.py --device cuda`) on workloads 1, 2, 4, 5; a warm-up each, then repetitions
alternating between the two. Prints a table of medians and writes the raw answers as JSON."""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = [("image_features", {"batch": 32}), ("image_step", {"batch": 32}),
             ("text_features", {"batch": 32, "tokens": 128}),
             ("text_step", {"batch": 32, "tokens": 128})]


class Worker:
    def __init__(self, name, argv):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=HERE.parent)

    def call(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} ended (exit {self.proc.poll()})")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error"))
        return answer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    workers, results = [], {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "contenders": {}, "workloads": {}}
    for name, argv in [("tabtune-native-wgpu", [str(HERE.parent / "target/release/tabtune"),
                                                "bench", "--device", "gpu"]),
                       ("pytorch-cuda", [sys.executable, str(HERE / "torch_bench.py"),
                                         "--device", "cuda"])]:
        try:
            worker = Worker(name, argv)
            results["contenders"][name] = worker.call(op="info")
            workers.append(worker)
        except Exception as error:  # the table says why, the other contender still runs
            results["contenders"][name] = {"error": str(error)}
    for workload, spec in WORKLOADS:
        cells = results["workloads"][workload] = {}
        for worker in workers:
            try:
                cells[worker.name] = {"setup": worker.call(op="setup", workload=workload,
                                                           seed=0, **spec), "reps": []}
            except Exception as error:
                cells[worker.name] = {"error": f"setup: {error}", "reps": []}
        for _ in range(args.reps):
            for worker in workers:
                cell = cells[worker.name]
                if "error" in cell:
                    continue
                try:
                    cell["reps"].append(worker.call(op="rep"))
                except Exception as error:
                    cell["error"] = f"repetition: {error}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    file = out / f"gpu-{results['date'].replace(':', '-')}.json"
    file.write_text(json.dumps(results, indent=1) + "\n")
    print("| workload | contender | ms (median, min-max) | items/s | n | memory |")
    print("|---|---|---|---|---|---|")
    for workload, cells in results["workloads"].items():
        for name, cell in cells.items():
            secs = [r["seconds"] for r in cell["reps"]]
            if not secs:
                print(f"| {workload} | {name} | error: {cell.get('error')} | | | |")
                continue
            mem = max((r.get("cuda_peak_bytes") or r.get("device_bytes_reserved") or 0)
                      for r in cell["reps"])
            print(f"| {workload} | {name} | {statistics.median(secs) * 1e3:.1f} "
                  f"({min(secs) * 1e3:.1f}-{max(secs) * 1e3:.1f}) | "
                  f"{32 / statistics.median(secs):.0f} | {len(secs)} | {mem / 2**20:.0f} MiB |")
    for name, info in results["contenders"].items():
        print(f"{name}: {json.dumps(info)}")
    print(f"raw: {file}")


if __name__ == "__main__":
    main()
