#!/usr/bin/env python3
"""RIANN's reference outputs for the port test (tests/fixtures/riann), from the package's own
ONNX file run by onnxruntime, and the converted weights checked against them in numpy.

  python scripts/riann_reference.py riann-0.2.0-py3-none-any.whl assets/models/riann OUTDIR
(needs numpy and onnxruntime; `make bench-audio`'s virtualenv has both.)
"""
import json, random, struct, sys, tempfile, zipfile
from pathlib import Path
import numpy as np
import onnxruntime as rt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import series_assets  # noqa: E402


def load(path):
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             np.float32).reshape(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def gru_numpy(x, w, layers, hidden):
    """PyTorch's GRU (gates r, z, n) over x (T, C), zero initial state."""
    for l in range(layers):
        wi, wh = w[f"gru.weight_ih_l{l}"], w[f"gru.weight_hh_l{l}"]
        bi, bh = w[f"gru.bias_ih_l{l}"], w[f"gru.bias_hh_l{l}"]
        h = np.zeros(hidden, np.float64)
        out = []
        for t in range(len(x)):
            gi, gh = wi @ x[t] + bi, wh @ h + bh
            r = 1 / (1 + np.exp(-(gi[:hidden] + gh[:hidden])))
            z = 1 / (1 + np.exp(-(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])))
            n = np.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
            h = (1 - z) * n + z * h
            out.append(h)
        x = np.array(out)
    return x


def main(wheel, model_dir, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as whl, tempfile.TemporaryDirectory() as td:
        onnx = Path(td) / "riann.onnx"
        onnx.write_bytes(whl.read("riann/riann.onnx"))
        sess = rt.InferenceSession(str(onnx))
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load(Path(model_dir) / "model.safetensors").items()}
    rng = random.Random(42)
    inputs, outputs = [], []
    for sensor in (series_assets.IDEAL, series_assets.IMU_SENSOR):
        rows = np.array(series_assets.imu_recording(rng, 1.5, sensor), np.float32)
        x = np.concatenate([rows[:, 1:7], np.full((len(rows), 1), 0.01, np.float32)], 1)
        q, _ = sess.run([], {"input": x[None], "h0": np.zeros((2, 1, 1, 200), np.float32)})
        inputs.append(x)
        outputs.append(q[0])
    x, q = np.stack(inputs), np.stack(outputs)
    np.save(out / "input.npy", x)
    np.save(out / "output.npy", q)
    mean, std = np.array(cfg["input"]["mean"]), np.array(cfg["input"]["std"])
    worst = 0.0
    for i in range(len(x)):
        h = gru_numpy((x[i] - mean) / std, w, 2, 200)
        y = h @ w["out.weight"].T + w["out.bias"]
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        worst = max(worst, float(np.abs(y - q[i]).max()))
    print(f"{out}: input {x.shape}, output {q.shape}; converted weights in numpy vs onnxruntime: "
          f"max abs {worst:.2e}")
    if worst > 1e-4:
        sys.exit("the converted weights do not reproduce the ONNX graph")


if __name__ == "__main__":
    main(*sys.argv[1:4])
