#!/usr/bin/env python3
"""HAPT activity recognition: tabtune against the same recipe in PyTorch (issue 18).

The split is by person: users 1-24 train, 25-30 validate (the same folders are given to
tabtune's --data and --val). Both sides start from humanactivity's Conv1D as `make assets`
converts it, read the same recordings resampled to 20 Hz by numpy (written as CSVs for
tabtune; --own-resampling gives tabtune the 50 Hz files to resample itself), cut 4.5 s windows
(90 samples, every 2.25 s; a window's label is the majority of its labelled samples), normalise with the model's own mean/std, and run the
series recipe: a new 12-class head on the frozen network (AdamW 1e-3, weight decay 0.01,
batch 64, 15 epochs), then every layer (AdamW 1e-4, head 1e-3, batch 64, 10 epochs, cosine to
0), each phase keeping its best validation epoch. A third run trains the same network from
fresh weights for as many epochs. Each side runs `--seeds` seeds; the table gives the mean.

  make bench-series            # or: bench/.venv/bin/python bench/series_reference.py --seeds 3
"""
import argparse, csv, json, math, os, struct, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "assets" / "models" / "har_conv1d"
DATA = ROOT / "assets" / "datasets" / "hapt"
RATE_IN, RATE = 50, 20
WINDOW, STRIDE = 90, 45
VAL_USERS = range(25, 31)


def load_safetensors(path):
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    return {k: torch.tensor(np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                                          np.float32).reshape(v["shape"]).copy())
            for k, v in header.items() if k != "__metadata__"}


def resample_50_to_20(x):
    """Polyphase: up 2, a Kaiser-windowed sinc low-pass at 10 Hz, down 5 (per column)."""
    up, down = 2, 5
    taps = 2 * 10 * down + 1
    t = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(t / down) * np.kaiser(taps, 5.0)
    h *= up / h.sum()
    z = np.zeros((len(x) * up, x.shape[1]))
    z[::up] = x
    y = np.stack([np.convolve(z[:, c], h, mode="same") for c in range(x.shape[1])], 1)
    return y[::down]


def recordings(users):
    """Each recording of `users` at 20 Hz: (user, file name, [n, 3] accelerations, n labels)."""
    for user in users:
        for f in sorted((DATA / f"user{user:02d}").glob("*.csv")):
            with open(f) as fh:
                rows = list(csv.reader(fh))
            header, body = rows[0], rows[1:]
            cols = [header.index(c) for c in ("acc_x", "acc_y", "acc_z")]
            x = np.array([[float(r[c]) for c in cols] for r in body])
            labels = [r[header.index("label")] for r in body]
            x20 = resample_50_to_20(x)
            # Nearest 50 Hz label of each 20 Hz sample.
            idx = np.minimum(np.round(np.arange(len(x20)) * RATE_IN / RATE).astype(int), len(labels) - 1)
            yield user, f.name, x20, [labels[i] for i in idx]


def windows(users, classes):
    xs, ys = [], []
    for _, _, x20, lab20 in recordings(users):
        for s in range(0, len(x20) - WINDOW + 1, STRIDE):
            w = lab20[s:s + WINDOW]
            named = [l for l in w if l]
            if len(named) * 2 < WINDOW:
                continue
            counts = {}
            for l in named:
                counts[l] = counts.get(l, 0) + 1
            best = max(counts.values())
            label = min(l for l, c in counts.items() if c == best)
            xs.append(x20[s:s + WINDOW])
            ys.append(classes.index(label))
    return np.array(xs, np.float32), np.array(ys, np.int64)


def write_20hz(users, folder):
    """The recordings as numpy resamples them, as 20 Hz CSVs (a folder per person): tabtune
    then cuts the very windows the PyTorch side trains on."""
    for user, name, x20, lab20 in recordings(users):
        out = Path(folder) / f"user{user:02d}" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = ["time,acc_x,acc_y,acc_z,label"]
        lines += [f"{i / RATE:.2f},{a:.6f},{b:.6f},{c:.6f},{l}" for i, ((a, b, c), l) in enumerate(zip(x20, lab20))]
        out.write_text("\n".join(lines) + "\n")


class Net(torch.nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(3, 60, 60)
        self.conv2 = torch.nn.Conv1d(60, 6, 6)
        self.fc1 = torch.nn.Linear(6, 10000)
        self.fc2 = torch.nn.Linear(10000, classes)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.nn.functional.max_pool1d(x, 20, 2)
        x = torch.relu(self.conv2(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def macro_f1(truth, pred, k):
    f1s = []
    for c in range(k):
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(f1s))


def phase(net, xtr, ytr, xva, yva, epochs, head_lr, body_lr, cosine, seed, train_body):
    g = torch.Generator().manual_seed(seed)
    head = list(net.fc2.parameters())
    body = [p for n, p in net.named_parameters() if not n.startswith("fc2.")]
    for p in body:
        p.requires_grad_(train_body)
    groups = [{"params": head, "lr": head_lr}] + ([{"params": body, "lr": body_lr}] if train_body else [])
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    steps = math.ceil(len(xtr) / 64) * epochs
    step = 0
    best, kept = -1.0, None
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=g)
        net.train()
        for i in range(0, len(xtr), 64):
            if cosine:
                f = 0.5 * (1 + math.cos(math.pi * step / steps))
                for grp, lr in zip(opt.param_groups, [head_lr, body_lr]):
                    grp["lr"] = lr * f
            b = order[i:i + 64]
            loss = torch.nn.functional.cross_entropy(net(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(xva[i:i + 256]).argmax(1) for i in range(0, len(xva), 256)]).numpy()
        acc = float(np.mean(pred == yva.numpy()))
        if acc > best:
            best, kept = acc, ({k: v.clone() for k, v in net.state_dict().items()}, pred)
    net.load_state_dict(kept[0])
    return best, kept[1]


def torch_runs(seed, classes, data, scratch):
    torch.manual_seed(seed)
    xtr, ytr, xva, yva = data
    net = Net(len(classes))
    if not scratch:
        w = load_safetensors(MODEL / "model.safetensors")
        net.load_state_dict({k: v for k, v in w.items() if not k.startswith("fc2.")}, strict=False)
    out = {}
    if scratch:
        phase(net, xtr, ytr, xva, yva, 15, 1e-3, 1e-3, False, seed, True)
    else:
        acc, pred = phase(net, xtr, ytr, xva, yva, 15, 1e-3, 0.0, False, seed, False)
        out["head"] = (acc, macro_f1(yva.numpy(), pred, len(classes)))
    acc, pred = phase(net, xtr, ytr, xva, yva, 10, 1e-3, 1e-4, True, seed + 1, True)
    out["full"] = (acc, macro_f1(yva.numpy(), pred, len(classes)))
    return out


def tabtune_run(seed, folders, recipe, tag):
    exe = ROOT / "target" / "release" / "tabtune"
    with tempfile.TemporaryDirectory() as out:
        r = json.dumps({**recipe, "seed": seed})
        path = Path(out) / "recipe.json"
        path.write_text(r)
        t0 = time.time()
        p = subprocess.run([str(exe), "finetune", "--model", str(MODEL), "--data", folders[0], "--val", folders[1],
                            "--out", str(Path(out) / "model"), "--recipe", str(path)], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"tabtune ({tag}) failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        report = json.loads((Path(out) / "model" / "report.json").read_text())["report"]
    m = report["metrics"]
    out = {"full": (m["accuracy"], m["macro_f1"])}
    out["seconds"] = time.time() - t0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--own-resampling", action="store_true",
                    help="tabtune resamples the 50 Hz recordings itself (rubato) instead of reading "
                         "the 20 Hz ones numpy made: the windows then differ a little")
    args = ap.parse_args()
    index = json.loads((ROOT / "assets" / "index.json").read_text())
    classes = sorted(next(d for d in index["datasets"] if d["name"] == "hapt")["classes"])
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, val_dir = Path(tmp) / "train", Path(tmp) / "val"
        train_users = [u for u in range(1, 31) if u not in VAL_USERS]
        if args.own_resampling:
            # tabtune reads the 50 Hz recordings and resamples them itself.
            train_dir.mkdir()
            val_dir.mkdir()
            for u in range(1, 31):
                (val_dir if u in VAL_USERS else train_dir).joinpath(f"user{u:02d}").symlink_to(DATA / f"user{u:02d}")
        else:
            write_20hz(train_users, train_dir)
            write_20hz(VAL_USERS, val_dir)
        folders = (str(train_dir), str(val_dir))
        t0 = time.time()
        xtr, ytr = windows(train_users, classes)
        xva, yva = windows(VAL_USERS, classes)
        w = load_safetensors(MODEL / "model.safetensors")
        cfg = json.loads((MODEL / "config.json").read_text())
        mean, std = np.array(cfg["input"]["mean"], np.float32), np.array(cfg["input"]["std"], np.float32)
        norm = lambda x: torch.tensor(((x - mean) / std).transpose(0, 2, 1).copy())
        data = (norm(xtr), torch.tensor(ytr), norm(xva), torch.tensor(yva))
        print(f"windows: {len(xtr)} train, {len(xva)} val ({time.time() - t0:.1f} s to cut in numpy); "
              f"{len(classes)} classes; val users {list(VAL_USERS)}", flush=True)
        rows = {k: [] for k in ("tabtune head", "tabtune full", "tabtune scratch", "torch head", "torch full", "torch scratch")}
        for seed in range(args.seeds):
            rows["tabtune head"].append(tabtune_run(seed, folders, {"finetune": None}, "head")["full"])
            rows["tabtune full"].append(tabtune_run(seed, folders, {}, "fine-tune")["full"])
            rows["tabtune scratch"].append(tabtune_run(seed, folders, {"series": {"from_scratch": True}}, "scratch")["full"])
            o = torch_runs(seed, classes, data, scratch=False)
            rows["torch head"].append(o["head"])
            rows["torch full"].append(o["full"])
            rows["torch scratch"].append(torch_runs(seed, classes, data, scratch=True)["full"])
            print(f"seed {seed}: " + ", ".join(f"{k} {v[-1][0] * 100:.2f}% / {v[-1][1]:.4f}" for k, v in rows.items()), flush=True)
        print(f"\n{'run':<18}{'accuracy (mean of ' + str(args.seeds) + ')':>26}{'sd':>7}{'macro-F1':>10}{'sd':>8}")
        for k, v in rows.items():
            acc = np.array([a for a, _ in v]) * 100
            f1 = np.array([f for _, f in v])
            print(f"{k:<18}{acc.mean():>25.2f}%{acc.std(ddof=1) if len(v) > 1 else 0:>7.2f}{f1.mean():>10.4f}{f1.std(ddof=1) if len(v) > 1 else 0:>8.4f}")


if __name__ == "__main__":
    main()
