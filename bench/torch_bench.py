"""PyTorch CPU contender for tabtune's benchmark (`make bench`).

A persistent worker driven by the Node orchestrator. It reads JSON commands, one per line, on
stdin and answers each with exactly one JSON line on stdout; anything else goes to stderr.

  {"op": "info"}   -> {"ok": true, "torch", "torchvision", "transformers", "threads", "python"}
  {"op": "setup", "workload": W, "batch", "tokens", "seed", "files", "labels", "classes",
   "epochs", "val_fraction"}
                   -> builds W's model and inputs, runs one warm-up repetition:
                      {"ok": true, "setup_s", "warmup_s", ...}
  {"op": "rep"}    -> one timed repetition of the current workload:
                      {"ok": true, "seconds", "items", "peak_rss_bytes", ...}
  {"op": "quit"}   -> {"ok": true}, then exit 0.

A failed command answers {"ok": false, "error": "<Type>: <message>"} and the worker goes on.
Workloads: image_features, image_step, text_features, text_step (random weights and inputs,
made once at setup) and head_phase (decode, featurise and train a linear head on real files).

`torch_bench.py --device cuda` runs the first four on the GPU (bench/gpu.sh), synchronising
before each time is taken and reporting the peak CUDA memory of each repetition.
"""

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from collections import namedtuple

import torch
import torchvision
import transformers
from PIL import Image
from torch import nn
from torchvision import transforms

DEVICE = torch.device("cpu")  # set by --device
HEAD_BATCH = 32
WARMUP_FILES = 64
PREPROCESS = transforms.Compose([
    transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
])
MINILM = transformers.BertConfig(
    vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
    intermediate_size=1536, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2,
    layer_norm_eps=1e-12, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)

# rep() and warmup() return the answer's "items" and any extra fields; info joins setup's answer.
Workload = namedtuple("Workload", "rep warmup info", defaults=(None, {}))


def mobilenet(seed):
    torch.manual_seed(seed)
    return torchvision.models.mobilenet_v2(weights=None, num_classes=10).to(DEVICE)


def pooled_features(model, images):
    """MobileNetV2 up to its pooled 1280-d features (what the classifier sees)."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(model.features(images), 1), 1)


def minilm(cmd):
    torch.manual_seed(cmd["seed"])
    encoder = transformers.BertModel(MINILM, add_pooling_layer=False).to(DEVICE)
    b, t = cmd["batch"], cmd["tokens"]
    inputs = {"input_ids": torch.randint(1000, 30522, (b, t), device=DEVICE),
              "attention_mask": torch.ones(b, t, dtype=torch.long, device=DEVICE),
              "token_type_ids": torch.zeros(b, t, dtype=torch.long, device=DEVICE)}
    return encoder, inputs


def mean_pool(encoder, inputs):
    hidden = encoder(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def training_step(forward, labels, optimizer):
    """A rep that is one optimiser step of `forward()`'s logits against `labels`."""
    loss_fn = nn.CrossEntropyLoss()

    def rep():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(), labels)
        loss.backward()
        optimizer.step()
        return {"items": len(labels), "loss": loss.item()}
    return rep


def image_features(cmd):
    model = mobilenet(cmd["seed"]).eval()
    images = torch.randn(cmd["batch"], 3, 224, 224, device=DEVICE)

    def rep():
        with torch.inference_mode():
            pooled_features(model, images)
        return {"items": len(images)}
    return Workload(rep)


def image_step(cmd):
    model = mobilenet(cmd["seed"]).train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()  # running statistics frozen; the affine parameters still train
    optimizer = torch.optim.AdamW([
        {"params": model.classifier.parameters(), "lr": 1e-3},
        {"params": model.features.parameters(), "lr": 1e-4},
    ], weight_decay=0.01)
    images = torch.randn(cmd["batch"], 3, 224, 224, device=DEVICE)
    labels = torch.randint(0, 10, (cmd["batch"],), device=DEVICE)
    return Workload(training_step(lambda: model(images), labels, optimizer))


def text_features(cmd):
    encoder, inputs = minilm(cmd)
    encoder.eval()

    def rep():
        with torch.inference_mode():
            mean_pool(encoder, inputs)
        return {"items": len(inputs["input_ids"])}
    return Workload(rep, info={"attn_implementation": encoder.config._attn_implementation})


def text_step(cmd):
    encoder, inputs = minilm(cmd)
    head = nn.Sequential(nn.Dropout(0.1), nn.Linear(384, 2)).to(DEVICE)
    encoder.train()
    head.train()
    optimizer = torch.optim.AdamW([
        {"params": head.parameters(), "lr": 1e-3},
        {"params": encoder.parameters(), "lr": 5e-5},
    ], weight_decay=0.01)
    labels = torch.randint(0, 2, (cmd["batch"],), device=DEVICE)
    rep = training_step(lambda: head(mean_pool(encoder, inputs)), labels, optimizer)
    return Workload(rep, info={"attn_implementation": encoder.config._attn_implementation})


def head_phase(cmd):
    if DEVICE.type != "cpu":
        raise ValueError("head_phase runs on the CPU only (it decodes files on the host)")
    backbone = mobilenet(cmd["seed"]).eval()

    def run(files, labels):
        start = time.perf_counter()
        features = []
        with torch.inference_mode():
            for i in range(0, len(files), HEAD_BATCH):
                batch = []
                for path in files[i:i + HEAD_BATCH]:
                    with Image.open(path) as image:
                        batch.append(PREPROCESS(image.convert("RGB")))
                features.append(pooled_features(backbone, torch.stack(batch)))
        x = torch.cat(features)  # outside inference mode: a normal tensor the head can train on
        features_s = time.perf_counter() - start

        y = torch.tensor(labels)
        generator = torch.Generator().manual_seed(cmd["seed"])
        train, val = [], []
        for label in y.unique():
            index = (y == label).nonzero().flatten()
            index = index[torch.randperm(len(index), generator=generator)]
            held_out = round(len(index) * cmd["val_fraction"])
            val.append(index[:held_out])
            train.append(index[held_out:])
        train, val = torch.cat(train), torch.cat(val)

        torch.manual_seed(cmd["seed"])
        head = nn.Linear(1280, cmd["classes"])
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
        loss_fn = nn.CrossEntropyLoss()
        accuracy = None
        for _ in range(cmd["epochs"]):
            for batch in train[torch.randperm(len(train), generator=generator)].split(HEAD_BATCH):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(head(x[batch]), y[batch]).backward()
                optimizer.step()
            if len(val):
                with torch.inference_mode():
                    accuracy = (head(x[val]).argmax(1) == y[val]).float().mean().item()
        return {"items": len(files), "features_s": features_s, "val_accuracy": accuracy}

    files, labels = cmd["files"], cmd["labels"]
    return Workload(lambda: run(files, labels),
                    lambda: run(files[:WARMUP_FILES], labels[:WARMUP_FILES]))


WORKLOADS = {f.__name__: f for f in (image_features, image_step, text_features, text_step,
                                      head_phase)}


def peak_rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


class Worker:
    def __init__(self):
        self.workload = None

    def info(self, cmd):
        gpu = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None
        return {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "transformers": transformers.__version__, "threads": torch.get_num_threads(),
                "python": platform.python_version(), "device": str(DEVICE), "gpu": gpu}

    def setup(self, cmd):
        name = cmd.get("workload")
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
        self.workload = None
        gc.collect()
        start = time.perf_counter()
        workload = WORKLOADS[name](cmd)
        setup_s = time.perf_counter() - start
        start = time.perf_counter()
        (workload.warmup or workload.rep)()
        sync()
        warmup_s = time.perf_counter() - start
        self.workload = workload
        return {"warmup_s": warmup_s, "setup_s": setup_s, **workload.info}

    def rep(self, cmd):
        if self.workload is None:
            raise RuntimeError("no workload set up: send a setup command first")
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current RSS
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats(DEVICE)
        start = time.perf_counter()
        result = self.workload.rep()
        sync()
        seconds = time.perf_counter() - start
        if DEVICE.type == "cuda":
            result["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(DEVICE)
        return {"seconds": seconds, "peak_rss_bytes": peak_rss_bytes(), **result}


def sync():
    """Wait for the device's queued work (a no-op on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def main():
    global DEVICE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    DEVICE = torch.device(parser.parse_args().device)
    worker = Worker()
    ops = {"info": worker.info, "setup": worker.setup, "rep": worker.rep}
    for line in sys.stdin:
        if not line.strip():
            continue
        op = None
        try:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "quit":
                answer = {"ok": True}
            elif op in ops:
                answer = {"ok": True, **ops[op](cmd)}
            else:
                raise ValueError(f"unknown op {op!r} (known: {', '.join([*ops, 'quit'])})")
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)
        if op == "quit":
            return


if __name__ == "__main__":
    main()
