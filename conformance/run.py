#!/usr/bin/env python3
"""`make conformance`: what tabtune exports loads in the PyTorch library its users would use and
predicts what tabtune predicts; what PyTorch fine-tunes loads in tabtune and predicts what
PyTorch predicts.

Every case trains (or saves) a small model for real, runs the same inputs through both sides
and compares the class probabilities: relative error ||p_tabtune - p_torch|| / ||p_torch|| at
most 1e-4 and the same top class on every input. The image inputs are 256x256, so tabtune's
resize (256) and centre crop (224) and torchvision's give the same pixels: the network alone is
compared. The preprocessing of small images is compared on its own (reported, not held to
1e-4: see the README). Prints the table the README carries and writes it to
conformance/results.md. Runs on the CPU: tabtune's CLI (target/release/tabtune) and torch.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import peft
import torch
import torchvision
import transformers
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms

ROOT = Path(__file__).resolve().parent.parent
TABTUNE = ROOT / "target" / "release" / "tabtune"
WORK = ROOT / "conformance" / "work"
ASSETS = ROOT / "assets"
TOLERANCE = 1e-4
ROWS = []
FAILED = []

torch.manual_seed(0)
torch.set_num_threads(max(1, os.cpu_count() or 1))
transformers.logging.set_verbosity_error()


def tabtune(*args):
    """Run the CLI; its output is kept in WORK/log.txt and shown on failure."""
    cmd = [str(TABTUNE), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    with open(WORK / "log.txt", "a") as log:
        log.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        sys.exit(f"tabtune failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return done.stdout


def tabtune_probs(model, inputs, labels):
    """tabtune's probabilities for `inputs`, columns in the order of `labels`."""
    out = WORK / "scores.json"
    tabtune("predict", "--model", model, "--json", out, *inputs)
    rows = json.loads(out.read_text())
    assert len(rows) == len(inputs), f"{len(rows)} scores for {len(inputs)} inputs"
    if labels is None:  # a checkpoint without names: classes by the index in their names
        names = {s["label"] for s in rows[0]["scores"]}
        labels = sorted(names, key=lambda l: int("".join(c for c in l if c.isdigit()) or 0))
    return np.array(
        [[next(s["probability"] for s in r["scores"] if s["label"] == l) for l in labels] for r in rows]
    )


@torch.no_grad()
def adapter_effect(adapted, probs_of):
    """How far the LoRA layers move PEFT's probabilities (relative; the new head kept), so that
    an agreement far below it shows the adapters were applied, not only the head."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in adapted.modules() if isinstance(m, LoraLayer)]
    with_ = probs_of(adapted)
    saved = [dict(m.scaling) for m in layers]
    for m in layers:
        m.scaling = {k: 0.0 for k in m.scaling}
    without = probs_of(adapted)
    for m, s in zip(layers, saved):
        m.scaling = s
    return float(np.linalg.norm(with_ - without) / np.linalg.norm(with_))


def compare(kind, library, how, ours, theirs, note=""):
    """One row: relative error of the probabilities and top-class agreement."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    rel = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
    same = int((ours.argmax(1) == theirs.argmax(1)).sum())
    ok = rel <= TOLERANCE and same == len(ours)
    ROWS.append((kind, library, how, rel, float(np.abs(ours - theirs).max()), f"{same}/{len(ours)}", note))
    print(f"{'ok  ' if ok else 'FAIL'} {kind} | {library} | {how}: rel {rel:.2e}, top class {same}/{len(ours)}", flush=True)
    if not ok:
        FAILED.append(f"{kind} / {library}")


def state(path):
    return load_file(str(path))


# ---------------------------------------------------------------------------------------------
# Images

def digits():
    """Digits 0-2 of the demo set: a training folder (12 each), 256x256 held-out copies (the
    network check) and the 28x28 originals (the preprocessing check), 5 each."""
    root = WORK / "digits"
    if root.exists():
        shutil.rmtree(root)
    train, big, small = root / "train", root / "test256", root / "test28"
    for d in (big, small):
        d.mkdir(parents=True)
    for digit in range(3):
        files = sorted((ASSETS / "datasets" / "mnist" / str(digit)).glob("*.png"))
        (train / str(digit)).mkdir(parents=True)
        for f in files[:12]:
            shutil.copy(f, train / str(digit) / f.name)
        for f in files[12:17]:
            shutil.copy(f, small / f"{digit}-{f.name}")
            Image.open(f).convert("RGB").resize((256, 256), Image.BILINEAR).save(big / f"{digit}-{f.name}")
    return train, sorted(big.glob("*.png")), sorted(small.glob("*.png"))


def image_transform(config, resize=True):
    steps = [transforms.Resize(config["resize"])] if resize else []
    return transforms.Compose(
        steps
        + [
            transforms.CenterCrop(config["image_size"]),
            transforms.ToTensor(),
            transforms.Normalize(config["image_mean"], config["image_std"]),
        ]
    )


@torch.no_grad()
def torch_image_probs(model, files, config, resize=True):
    t = image_transform(config, resize)
    x = torch.stack([t(Image.open(f).convert("RGB")) for f in files])
    return torch.softmax(model.eval()(x), 1).numpy()


def labels_of(config):
    return [config["id2label"][str(i)] for i in range(len(config["id2label"]))]


def finetune_images(model, train, out, *extra):
    tabtune("finetune", "--model", model, "--data", train, "--out", out, "--epochs", 2,
            "--finetune-epochs", 1, "--seed", 1, "--set", "head.batch_size=12",
            "--set", "finetune.batch_size=12", *extra)
    return json.loads((out / "config.json").read_text())


def images():
    train, big, small = digits()
    mnv2 = ASSETS / "models" / "mobilenet_v2"

    # MobileNetV2, both phases.
    out = WORK / "mobilenet_v2"
    config = finetune_images(mnv2, train, out)
    model = torchvision.models.mobilenet_v2(num_classes=config["num_labels"])
    model.load_state_dict(state(out / "model.safetensors"), strict=True)
    labels = labels_of(config)
    compare("MobileNetV2", f"torchvision {torchvision.__version__}", "load_state_dict(strict=True)",
            tabtune_probs(out, big, labels), torch_image_probs(model, big, config, resize=False))
    # Preprocessing: 28x28 digits through each side's own resize (256) and crop.
    ours = tabtune_probs(out, small, labels)
    theirs = torch_image_probs(model, small, config)
    rel = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
    same = int((ours.argmax(1) == theirs.argmax(1)).sum())
    ROWS.append(("MobileNetV2, 28x28 images resized to 256", "torchvision Resize/CenterCrop",
                 "the exported config's values", rel, float(np.abs(ours - theirs).max()),
                 f"{same}/{len(ours)}", "preprocessing: reported, not held to 1e-4"))
    print(f"info preprocessing of 28x28 images: rel {rel:.2e}, max {np.abs(ours - theirs).max():.4f}, top class {same}/{len(ours)}")

    # MobileNetV2 with LoRA: the merged model, and PEFT's adapter on the original model.
    out = WORK / "mobilenet_v2-lora"
    config = finetune_images(mnv2, train, out, "--lora", 4)
    labels = labels_of(config)
    ours = tabtune_probs(out, big, labels)
    merged = torchvision.models.mobilenet_v2(num_classes=config["num_labels"])
    merged.load_state_dict(state(out / "model.safetensors"), strict=True)
    compare("MobileNetV2 LoRA, merged", f"torchvision {torchvision.__version__}",
            "load_state_dict(strict=True)", ours, torch_image_probs(merged, big, config, resize=False))
    base = torchvision.models.mobilenet_v2()
    base.load_state_dict(state(mnv2 / "model.safetensors"), strict=True)
    base.classifier[1] = torch.nn.Linear(1280, config["num_labels"])  # the new head's shape
    adapted = peft.PeftModel.from_pretrained(base, out / "adapter")
    effect = adapter_effect(adapted, lambda m: torch_image_probs(m, big, config, resize=False))
    compare("MobileNetV2 LoRA, adapter", f"peft {peft.__version__}",
            "PeftModel.from_pretrained(mobilenet_v2, adapter)", ours,
            torch_image_probs(adapted, big, config, resize=False),
            f"new head's shape set first; the adapters move the probabilities by {effect:.1e}")

    # EfficientNet-Lite0 in the layout of efficientnet_lite_pytorch (lukemelas' names), both phases.
    from efficientnet_lite_pytorch import EfficientNet

    out = WORK / "efficientnet_lite0"
    config = finetune_images(ASSETS / "models" / "efficientnet_lite0", train, out)
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=config["num_labels"])
    model.load_state_dict(state(out / "model.safetensors"), strict=True)
    compare("EfficientNet-Lite0", "efficientnet_lite_pytorch", "load_state_dict(strict=True)",
            tabtune_probs(out, big, labels_of(config)), torch_image_probs(model, big, config, resize=False))

    # ResNet-18 fine-tuned in PyTorch (a few SGD steps, BatchNorm statistics updated), saved by
    # torch.save (zip): tabtune predicts as torch does; tabtune fine-tunes it, torch loads that.
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(num_classes=3)
    t = transforms.Compose([transforms.Resize(224), transforms.ToTensor(),
                            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    files = sorted(train.glob("*/*.png"))
    x = torch.stack([t(Image.open(f).convert("RGB")) for f in files])
    y = torch.tensor([int(f.parent.name) for f in files])
    opt = torch.optim.SGD(resnet.parameters(), lr=0.01, momentum=0.9)
    resnet.train()
    for step in range(6):
        idx = torch.randperm(len(files))[:12]
        loss = torch.nn.functional.cross_entropy(resnet(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    pth = WORK / "resnet18-torch.pth"
    torch.save(resnet.state_dict(), pth)
    config = {"resize": 256, "image_size": 224, "image_mean": [0.485, 0.456, 0.406],
              "image_std": [0.229, 0.224, 0.225]}
    ours = tabtune_probs(pth, big, None)
    compare("ResNet-18 from torch.save (zip)", "tabtune CLI", "tabtune predict --model resnet18.pth",
            ours, torch_image_probs(resnet, big, config, resize=False), "the other way")
    out = WORK / "resnet18"
    config = finetune_images(pth, train, out)
    model = torchvision.models.resnet18(num_classes=config["num_labels"])
    model.load_state_dict(state(out / "model.safetensors"), strict=True)
    compare("ResNet-18", f"torchvision {torchvision.__version__}", "load_state_dict(strict=True)",
            tabtune_probs(out, big, labels_of(config)), torch_image_probs(model, big, config, resize=False))


# ---------------------------------------------------------------------------------------------
# Text

TEXTS = [
    "a gripping, beautifully acted film that earns every minute",
    "dull, predictable and far too long",
    "the best thing about it is the soundtrack",
    "i laughed, i cried, i want to see it again",
    "a mess of a script wasted on a fine cast",
    "not bad, but not memorable either",
    "Un film magnifique, bouleversant du début à la fin.",
    "🙂 charming and light",
]


@torch.no_grad()
def torch_text_probs(model, folder, texts):
    """A `BertForSequenceClassification` (or a PEFT model around one) on `texts`, pooled as the
    folder's config says: `pooler` is what the class itself classifies; `mean` and `cls` go
    through its encoder and classifier by hand."""
    config = json.loads((Path(folder) / "config.json").read_text())
    options = config.get("tabtune", {"pooling": "pooler", "max_length": 128, "normalize": False})
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    enc = tok(texts, padding=True, truncation=True, max_length=options["max_length"], return_tensors="pt")
    model = model.eval()
    if options["pooling"] == "pooler":
        return torch.softmax(model(**enc).logits, 1).numpy()
    inner = model.get_base_model() if isinstance(model, peft.PeftModel) else model
    hidden = inner.bert(**enc).last_hidden_state
    if options["pooling"] == "mean":
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    else:
        pooled = hidden[:, 0]
    if options.get("normalize"):
        pooled = torch.nn.functional.normalize(pooled, dim=1)
    return torch.softmax(inner.classifier(pooled), 1).numpy()


def text():
    minilm = ASSETS / "models" / "all-MiniLM-L6-v2"
    data = ASSETS / "datasets" / "rotten_tomatoes.csv"
    cls = transformers.BertForSequenceClassification
    for pooling in ["mean", "cls", "pooler"]:
        out = WORK / f"minilm-{pooling}"
        tabtune("finetune", "--model", minilm, "--data", data, "--per-class", 24, "--out", out,
                "--epochs", 2, "--finetune-epochs", 1, "--max-length", 64, "--pooling", pooling, "--seed", 1)
        labels = labels_of(json.loads((out / "config.json").read_text()))
        how = "from_pretrained, unchanged" if pooling == "pooler" else f"from_pretrained + {pooling} pooling by hand"
        compare(f"MiniLM ({pooling} pooling)", f"transformers {transformers.__version__}", how,
                tabtune_probs(out, TEXTS, labels), torch_text_probs(cls.from_pretrained(out), out, TEXTS))

    # LoRA (PEFT's default targets for BERT: query, value) with the pooler, so that
    # BertForSequenceClassification classifies as tabtune does.
    out = WORK / "minilm-lora"
    tabtune("finetune", "--model", minilm, "--data", data, "--per-class", 24, "--out", out,
            "--epochs", 2, "--finetune-epochs", 1, "--max-length", 64, "--pooling", "pooler",
            "--seed", 1, "--lora", 8, "--set", "finetune.lr=5e-3")
    labels = labels_of(json.loads((out / "config.json").read_text()))
    ours = tabtune_probs(out, TEXTS, labels)
    compare("MiniLM LoRA, merged", f"transformers {transformers.__version__}", "from_pretrained, unchanged",
            ours, torch_text_probs(cls.from_pretrained(out), out, TEXTS))
    base = cls.from_pretrained(minilm, num_labels=len(labels))
    adapted = peft.PeftModel.from_pretrained(base, out / "adapter")
    effect = adapter_effect(adapted, lambda m: torch_text_probs(m, out, TEXTS))
    compare("MiniLM LoRA, adapter", f"peft {peft.__version__}",
            "PeftModel.from_pretrained(BertForSequenceClassification, adapter)",
            ours, torch_text_probs(adapted, out, TEXTS), f"the adapters move the probabilities by {effect:.1e}")

    # The other way: a few steps of HF's Trainer, saved by save_pretrained, predicted by tabtune.
    import csv

    rows = list(csv.DictReader(open(data)))[:64]
    tok = transformers.AutoTokenizer.from_pretrained(minilm)
    model = cls.from_pretrained(minilm, num_labels=2)
    enc = tok([r["text"] for r in rows], truncation=True, max_length=64, padding=True)
    label_ids = sorted({r["label"] for r in rows})

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            item = {k: torch.tensor(v[i]) for k, v in enc.items()}
            item["labels"] = torch.tensor(label_ids.index(rows[i]["label"]))
            return item

    args = transformers.TrainingArguments(output_dir=str(WORK / "trainer"), max_steps=8,
                                          per_device_train_batch_size=8, learning_rate=5e-5,
                                          report_to=[], use_cpu=True, save_strategy="no", seed=0)
    transformers.Trainer(model=model, args=args, train_dataset=Rows()).train()
    model.config.id2label = dict(enumerate(label_ids))
    model.config.label2id = {l: i for i, l in enumerate(label_ids)}
    out = WORK / "minilm-trainer"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    compare("MiniLM fine-tuned by HF's Trainer", "tabtune CLI", "tabtune predict --model (save_pretrained folder)",
            tabtune_probs(out, TEXTS, label_ids), torch_text_probs(model, out, TEXTS), "the other way")

    # The other way for adapters: PEFT's own LoRA (task SEQ_CLS, r 8, alpha 16, query/value),
    # a few AdamW steps, save_pretrained; tabtune puts the folder onto MiniLM.
    torch.manual_seed(0)
    base = cls.from_pretrained(minilm, num_labels=2)
    tuned = peft.get_peft_model(base, peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=8, lora_alpha=16))
    opt = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=3e-3)
    tuned.train()
    batch = {k: torch.tensor(v) for k, v in enc.items()}
    labels = torch.tensor([label_ids.index(r["label"]) for r in rows])
    for step in range(8):
        idx = torch.arange(step * 8, step * 8 + 8) % len(rows)
        loss = tuned(**{k: v[idx] for k, v in batch.items()}, labels=labels[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = WORK / "minilm-peft"
    tuned.save_pretrained(out / "adapter")
    tok.save_pretrained(out)
    config = json.loads((minilm / "config.json").read_text())
    config["tabtune"] = {"pooling": "pooler", "max_length": 128, "normalize": False}  # how to read it here
    (out / "config.json").write_text(json.dumps(config))
    effect = adapter_effect(tuned, lambda m: torch_text_probs(m, out, TEXTS))
    compare("MiniLM + an adapter PEFT trained", "tabtune CLI", "tabtune predict --model MiniLM --adapter DIR",
            tabtune_probs_with(minilm, out / "adapter", TEXTS, ["0", "1"]), torch_text_probs(tuned, out, TEXTS),
            f"the other way; the adapters move the probabilities by {effect:.1e}")


def tabtune_transcripts(model, clips):
    """tabtune's CLI transcripts of `clips` by the Whisper folder `model`, by clip."""
    printed = tabtune("predict", "--model", model, *clips)
    ours = {}
    for line in printed.splitlines():
        for clip in clips:
            if line.startswith(f"{clip} ("):
                ours[clip] = line.split("):", 1)[1].strip()
    return ours


def whisper():
    """Whisper tiny.en as `tabtune export` writes it: transformers' WhisperForConditionalGeneration
    loads it with no missing or unexpected key, and its greedy transcripts of the held-out
    clips are tabtune's, word for word (the exported folder of a fine-tuned Whisper has the
    same form: its decoder phase is what tests/whisper.rs checks against transformers)."""
    import wave

    out = WORK / "whisper"
    tabtune("export", "--model", ASSETS / "models" / "whisper_tiny_en", "--out", out)
    clips = sorted((ASSETS / "datasets" / "medical_speech" / "val").glob("*.wav"))[:4]
    ours = tabtune_transcripts(out, clips)
    model, info = transformers.WhisperForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if k != "proj_out.weight"]  # tied to the embeddings
    assert not missing and not info["unexpected_keys"], info
    processor = transformers.WhisperProcessor.from_pretrained(out)
    same = 0
    for clip in clips:
        with wave.open(str(clip)) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
            samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        features = processor(samples, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            tokens = model.generate(features, do_sample=False, num_beams=1, max_new_tokens=200)
        text = processor.batch_decode(tokens, skip_special_tokens=True)[0].strip()
        same += text == ours.get(clip)
        if text != ours.get(clip):
            print(f"  {clip.name}: tabtune {ours.get(clip)!r}, transformers {text!r}")
    ok = same == len(clips)
    ROWS.append(("Whisper tiny.en (tabtune export)", f"transformers {transformers.__version__}",
                 "WhisperForConditionalGeneration.from_pretrained, greedy generate", float("nan"), float("nan"),
                 f"{same}/{len(clips)}", "transcripts compared word for word"))
    print(f"{'ok  ' if ok else 'FAIL'} Whisper | transformers: {same}/{len(clips)} transcripts identical")
    if not ok:
        FAILED.append("Whisper / transformers")


def whisper_lora():
    """Whisper tiny.en with LoRA adapters (PEFT's q_proj/v_proj, adapters from the start) trained
    by tabtune's CLI on six of the drug-name clips: the merged export in transformers and PEFT's
    folder on the original model each transcribe the held-out clips word for word as tabtune
    does."""
    import wave

    data = WORK / "whisper-clips"
    src = ASSETS / "datasets" / "medical_speech"
    for split, ids in [("train", ["0013", "0014", "0043", "0044", "0141", "0142"]), ("val", ["0001", "0005"])]:
        (data / split).mkdir(parents=True, exist_ok=True)
        lines = (src / split / "metadata.csv").read_text().splitlines()
        rows = [lines[0]] + [l for l in lines if l.split(",", 1)[0] in {f"{i}.wav" for i in ids}]
        for i in ids:
            shutil.copy(src / split / f"{i}.wav", data / split / f"{i}.wav")
        (data / split / "metadata.csv").write_text("\n".join(rows) + "\n")
    base = ASSETS / "models" / "whisper_tiny_en"
    out = WORK / "whisper-lora"
    tabtune("finetune", "--model", base, "--data", data, "--out", out, "--lora", 8, "--seed", 1,
            "--set", "head.epochs=0", "--set", "finetune.epochs=2", "--set", "finetune.batch_size=6",
            "--set", "finetune.lr=0.002", "--set", "finetune.warmup_fraction=0")
    clips = sorted((src / "val").glob("*.wav"))[:5]
    ours = tabtune_transcripts(out, clips)
    processor = transformers.WhisperProcessor.from_pretrained(out)
    merged = transformers.WhisperForConditionalGeneration.from_pretrained(out)
    adapted = peft.PeftModel.from_pretrained(transformers.WhisperForConditionalGeneration.from_pretrained(base),
                                             out / "adapter")

    def transcribe(model, clip):
        with wave.open(str(clip)) as w:
            samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        features = processor(samples, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            tokens = model.generate(input_features=features, do_sample=False, num_beams=1, max_new_tokens=200)
        return processor.batch_decode(tokens, skip_special_tokens=True)[0].strip()

    # How many transcripts the adapters change (PEFT with its adapters switched off), so that
    # an agreement is seen to hold where the adapters matter.
    with adapted.disable_adapter():
        changed = sum(transcribe(adapted, clip) != ours.get(clip) for clip in clips)
    for name, model, how in [
        ("Whisper tiny.en LoRA, merged", merged, "WhisperForConditionalGeneration.from_pretrained, greedy"),
        ("Whisper tiny.en LoRA, PEFT adapter", adapted, "PeftModel.from_pretrained(Whisper, adapter), greedy"),
    ]:
        same = 0
        for clip in clips:
            text = transcribe(model, clip)
            same += text == ours.get(clip)
            if text != ours.get(clip):
                print(f"  {clip.name}: tabtune {ours.get(clip)!r}, {name} {text!r}")
        library = f"transformers {transformers.__version__}" if model is merged else f"peft {peft.__version__}"
        ROWS.append((name, library, how, float("nan"), float("nan"), f"{same}/{len(clips)}",
                     f"transcripts compared word for word; the adapters change {changed} of them"))
        print(f"{'ok  ' if same == len(clips) else 'FAIL'} {name}: {same}/{len(clips)} transcripts identical")
        if same != len(clips):
            FAILED.append(name)


class SeriesNet(torch.nn.Module):
    """A series model's config.json as a PyTorch module: its named layers are attributes under
    their config names (what `load_state_dict` and PEFT's `target_modules` see). The layer types
    the activity model uses (conv1d, relu, max_pool1d, flatten, linear)."""

    def __init__(self, config, outputs=None):
        super().__init__()
        self.spec = config["layers"]
        head = max(i for i, l in enumerate(self.spec) if "name" in l)
        for i, l in enumerate(self.spec):
            if l["type"] == "conv1d":
                setattr(self, l["name"], torch.nn.Conv1d(l["in_channels"], l["out_channels"], l["kernel"],
                                                         stride=l.get("stride", 1)))
            elif l["type"] == "linear":
                out = outputs if (i == head and outputs) else l["out_features"]
                setattr(self, l["name"], torch.nn.Linear(l["in_features"], out))
            elif l["type"] not in ("relu", "max_pool1d", "flatten"):
                raise ValueError(f"layer type {l['type']} is not in this conformance builder")

    def forward(self, x):
        for l in self.spec:
            t = l["type"]
            if "name" in l:
                x = getattr(self, l["name"])(x)
            elif t == "relu":
                x = torch.relu(x)
            elif t == "max_pool1d":
                x = torch.nn.functional.max_pool1d(x, l["kernel"], l.get("stride", l["kernel"]))
            elif t == "flatten":
                x = x.flatten(1)
        return x


def sensors():
    """The activity model (humanactivity's Conv1D) fine-tuned by tabtune's CLI on four people of
    HAPT with a LoRA adapter on its Linear layer: the merged export loads strict into the
    config's PyTorch module, and PEFT's folder onto the original weights; both give tabtune's
    probabilities for one-window recordings (normalised by the config's mean and std)."""
    data = WORK / "hapt"
    for user in ["user01", "user02", "user03", "user04"]:
        if not (data / user).exists():
            shutil.copytree(ASSETS / "datasets" / "hapt" / user, data / user)
    base = ASSETS / "models" / "har_conv1d"
    out = WORK / "har-lora"
    tabtune("finetune", "--model", base, "--data", data, "--out", out, "--lora", 4, "--seed", 1,
            "--set", "head.epochs=2", "--set", "finetune.epochs=1")
    config = json.loads((out / "config.json").read_text())
    labels = config["output"]["labels"]
    window, channels = config["input"]["window"], config["input"]["channels"]
    mean, std = np.array(config["input"]["mean"]), np.array(config["input"]["std"])
    rng = np.random.default_rng(3)
    probes, windows = [], []
    for k in range(8):  # one window each, at the model's rate: no resampling on either side
        t = np.arange(window) / config["input"]["rate_hz"]
        x = np.stack([2 * np.sin(2 * np.pi * (1 + k / 4) * t) + rng.normal(0, 0.5, window),
                      9.81 + 3 * np.cos(2 * np.pi * (1 + k / 4) * t) + rng.normal(0, 0.5, window),
                      rng.normal(0, 1.0, window)], 1)
        path = WORK / f"probe{k}.csv"
        path.write_text("time," + ",".join(channels) + "\n" +
                        "".join(f"{ti:.3f}," + ",".join(f"{v:.5f}" for v in row) + "\n" for ti, row in zip(t, x)))
        probes.append(path)
        windows.append(((x - mean) / std).T)
    inputs = torch.tensor(np.stack(windows), dtype=torch.float32)
    ours = tabtune_probs(out, probes, labels)
    merged = SeriesNet(config)
    merged.load_state_dict(state(out / "model.safetensors"), strict=True)
    with torch.no_grad():
        theirs = torch.softmax(merged(inputs), 1).numpy()
    compare("activity model (Conv1D) LoRA, merged", f"torch {torch.__version__}",
            "load_state_dict(strict=True) into the config's nn.Module", ours, theirs)
    original = SeriesNet(json.loads((base / "config.json").read_text()), outputs=len(labels))
    weights = {k: v for k, v in state(base / "model.safetensors").items() if not k.startswith("fc2.")}
    missing = original.load_state_dict(weights, strict=False).missing_keys
    assert sorted(missing) == ["fc2.bias", "fc2.weight"], missing
    adapted = peft.PeftModel.from_pretrained(original, out / "adapter")
    probs = lambda m: torch.softmax(m(inputs), 1).detach().numpy()
    effect = adapter_effect(adapted, probs)
    compare("activity model (Conv1D) LoRA, PEFT adapter", f"peft {peft.__version__}",
            "PeftModel.from_pretrained(nn.Module, adapter)", ours, probs(adapted),
            f"the adapter moves the probabilities by {effect:.1e}")


class RiannNet(torch.nn.Module):
    """RIANN's config.json (a stacked GRU, a Linear layer per step, the quaternion normalised)
    as a PyTorch module, under the config's layer names."""

    def __init__(self, config):
        super().__init__()
        types = [l["type"] for l in config["layers"]]
        if types != ["gru", "linear", "normalize"]:
            raise ValueError(f"layers {types} are not RIANN's (gru, linear, normalize)")
        g, o = config["layers"][0], config["layers"][1]
        self.gru = torch.nn.GRU(g["input_size"], g["hidden_size"], g["num_layers"], batch_first=True)
        self.out = torch.nn.Linear(o["in_features"], o["out_features"])

    def forward(self, x):  # [batch, steps, channels]
        q = self.out(self.gru(x)[0])
        return q / q.norm(dim=-1, keepdim=True)


def riann():
    """RIANN (a GRU that estimates orientation) fine-tuned by tabtune's CLI on the simulated IMU
    set: the export loads strict into torch.nn.GRU + Linear, and gives tabtune's quaternions at
    every step of recordings it never saw (at the model's 200 Hz, so neither side resamples;
    the dt channel is 1 / rate, as tabtune fills it)."""
    base = ASSETS / "models" / "riann"
    out = WORK / "riann-ft"
    tabtune("finetune", "--model", base, "--data", ASSETS / "datasets" / "imu" / "train", "--out", out,
            "--recipe", ROOT / "bench" / "recipes" / "riann.json", "--seed", 1,
            "--set", "head.epochs=1", "--set", "finetune.epochs=1")
    config = json.loads((out / "config.json").read_text())
    channels, rate = config["input"]["channels"], config["input"]["rate_hz"]
    mean, std = np.array(config["input"]["mean"]), np.array(config["input"]["std"])
    rng = np.random.default_rng(5)
    steps = int(4 * rate)
    t = np.arange(steps) / rate
    probes, inputs = [], []
    for k in range(3):  # a phone turned at 0.5-1 Hz about each axis in turn, gravity included
        w = np.zeros((steps, 3))
        w[:, k] = (1 + k) * np.sin(2 * np.pi * (0.5 + k / 4) * t)
        acc = np.stack([9.81 * np.sin(0.3 * w[:, 1]), 9.81 * np.sin(0.3 * w[:, 0]),
                        9.81 * np.cos(0.3 * w[:, 0])], 1) + rng.normal(0, 0.2, (steps, 3))
        gyr = w + rng.normal(0, 0.02, (steps, 3))
        x = np.concatenate([acc, gyr], 1)
        path = WORK / f"imu-probe{k}.csv"
        path.write_text("time," + ",".join(channels[:6]) + "\n" +
                        "".join(f"{ti:.3f}," + ",".join(f"{v:.5f}" for v in row) + "\n" for ti, row in zip(t, x)))
        probes.append(path)
        full = np.concatenate([x, np.full((steps, 1), 1 / rate)], 1)
        inputs.append((full - mean) / std)
    scores = WORK / "riann.json"
    tabtune("predict", "--model", out, "--json", scores, *probes)
    rows = json.loads(scores.read_text())
    assert [r["names"] for r in rows] == [config["output"]["names"]] * len(probes), rows[0]["names"]
    ours = np.concatenate([np.array(r["values"]) for r in rows])
    x = torch.tensor(np.stack(inputs), dtype=torch.float32)
    net = RiannNet(config)
    net.load_state_dict(state(out / "model.safetensors"), strict=True)
    with torch.no_grad():
        theirs = net(x).reshape(-1, 4).numpy()
    ours64, theirs64 = ours.astype(np.float64), theirs.astype(np.float64)
    rel = float(np.linalg.norm(ours64 - theirs64) / np.linalg.norm(theirs64))
    # The rotation between the two estimates at each step, in degrees (q and -q are one
    # rotation; atan2 of the chord lengths stays accurate where arccos of the dot does not).
    a = ours64 / np.linalg.norm(ours64, axis=1, keepdims=True)
    b = theirs64 / np.linalg.norm(theirs64, axis=1, keepdims=True)
    b *= np.where((a * b).sum(1) < 0, -1.0, 1.0)[:, None]
    half = 2 * np.arctan2(np.linalg.norm(a - b, axis=1), np.linalg.norm(a + b, axis=1))
    degrees = float(np.degrees(2 * half).max())
    base_out = RiannNet(json.loads((base / "config.json").read_text()))
    base_out.load_state_dict(state(base / "model.safetensors"), strict=True)
    with torch.no_grad():
        moved = float(np.abs(base_out(x).reshape(-1, 4).numpy() - theirs).max())
    ok = rel <= TOLERANCE and ours.shape == theirs.shape
    ROWS.append(("RIANN (GRU), fine-tuned", f"torch {torch.__version__}",
                 "load_state_dict(strict=True) into nn.GRU + nn.Linear", rel, float(np.abs(ours64 - theirs64).max()),
                 "values", f"quaternions at all {len(ours)} steps of 3 recordings; at most {degrees:.1e} degrees "
                           f"apart; fine-tuning moved them by up to {moved:.2f}"))
    print(f"{'ok  ' if ok else 'FAIL'} RIANN | torch: rel {rel:.2e}, {degrees:.1e} degrees at most, "
          f"{len(ours)} steps; fine-tuning moved them by {moved:.2f}", flush=True)
    if not ok:
        FAILED.append("RIANN / torch")


def page_adapter():
    """The adapter the page trained and downloaded alone (tests/e2e/lora.test.mjs), loaded with
    PEFT onto the original MiniLM: its probability for the page's sentence against the page's,
    and tabtune's CLI with that adapter on the base model against PEFT on every text."""
    import zipfile

    kept = ROOT / "test-results" / "e2e" / "lora-page.zip"
    if not kept.exists():
        sys.exit(f"{kept} is missing: run node --test tests/e2e/lora.test.mjs (make conformance does)")
    out = WORK / "page-adapter"
    if out.exists():
        shutil.rmtree(out)
    zipfile.ZipFile(kept).extractall(out)
    assert not (out / "model.safetensors").exists(), "the page's adapter-only zip holds the merged model"
    seen = json.loads((ROOT / "test-results" / "e2e" / "lora-page.json").read_text())
    minilm = ASSETS / "models" / "all-MiniLM-L6-v2"
    config = json.loads((out / "config.json").read_text())
    labels = labels_of(config)
    base = transformers.BertForSequenceClassification.from_pretrained(minilm, num_labels=len(labels))
    adapted = peft.PeftModel.from_pretrained(base, out / "adapter")
    theirs = torch_text_probs(adapted, out, [seen["sentence"]])[0]
    ours = np.zeros(len(labels))
    ours[labels.index(seen["top"])] = seen["probability"]
    # The page shows its top class: compare that probability, and that it is PEFT's top class.
    rel = abs(seen["probability"] - theirs[labels.index(seen["top"])]) / theirs[labels.index(seen["top"])]
    same = int(int(np.argmax(theirs)) == labels.index(seen["top"]))
    ok = rel <= TOLERANCE and same == 1
    ROWS.append(("MiniLM LoRA adapter trained in the page (CPU), adapter-only zip", f"peft {peft.__version__}",
                 "PeftModel.from_pretrained(BertForSequenceClassification, adapter)", rel, rel * theirs.max(),
                 f"{same}/1", "the page's shown probability"))
    print(f"{'ok  ' if ok else 'FAIL'} page adapter | peft: rel {rel:.2e} on the page's sentence")
    if not ok:
        FAILED.append("page adapter / peft")
    # tabtune's CLI puts the same adapter onto the base model (classes named by index).
    effect = adapter_effect(adapted, lambda m: torch_text_probs(m, out, TEXTS))
    compare("MiniLM + the page's adapter", "tabtune CLI", "tabtune predict --model MiniLM --adapter DIR",
            tabtune_probs_with(minilm, out / "adapter", TEXTS, [str(i) for i in range(len(labels))]),
            torch_text_probs(adapted, out, TEXTS),
            f"PEFT's folder onto the base model; the adapters move the probabilities by {effect:.1e}")


def tabtune_probs_with(model, adapter, inputs, labels):
    out = WORK / "scores.json"
    tabtune("predict", "--model", model, "--adapter", adapter, "--json", out, *inputs)
    rows = json.loads(out.read_text())
    return np.array([[next(s["probability"] for s in r["scores"] if s["label"] == l) for l in labels] for r in rows])


def main():
    if not TABTUNE.exists():
        sys.exit(f"{TABTUNE} is missing: cargo build --release --bin tabtune")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "log.txt").write_text("")
    start = time.time()
    only = sys.argv[1:] or ["images", "text", "whisper", "whisper-lora", "sensors", "riann", "page"]
    parts = {"images": images, "text": text, "whisper": whisper, "whisper-lora": whisper_lora,
             "sensors": sensors, "riann": riann, "page": page_adapter}
    for name in only:
        parts[name]()
    lines = [
        "| export | loaded by | how | relative error | max abs. difference | same top class | |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, library, how, rel, worst, same, note in ROWS:
        cells = "– | –" if np.isnan(rel) else f"{rel:.1e} | {worst:.1e}"
        lines.append(f"| {kind} | {library} | {how} | {cells} | {same} | {note} |")
    table = "\n".join(lines)
    print("\n" + table)
    (ROOT / "conformance" / "results.md").write_text(table + "\n")
    print(f"\nconformance: {len(ROWS)} rows in {time.time() - start:.0f} s; tolerance {TOLERANCE:g}")
    if FAILED:
        sys.exit(f"conformance: {len(FAILED)} failed: {', '.join(FAILED)}")


if __name__ == "__main__":
    main()
