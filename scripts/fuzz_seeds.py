"""Write fuzz/corpus/<target>/: small valid inputs of each parser `make fuzz` starts from
(libFuzzer mutates them; what it adds that covers new code is kept there too). Run once with
bench/.venv's Python (torch and tokenizers); the outputs are committed.

    bench/.venv/bin/python scripts/fuzz_seeds.py
"""

import io
import json
import struct
import wave
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
BAD = ROOT / "tests" / "fixtures" / "bad"


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def main():
    f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
    put("safetensors", "one.safetensors", safetensors({"w": ("F32", [2, 2], f32(1, 2, 3, 4))}))
    put("safetensors", "classifier.safetensors", safetensors(
        {"classifier.1.weight": ("F32", [2, 3], f32(*range(6))), "classifier.1.bias": ("F16", [2], b"\0<\0<")},
        {"format": "pt"}))

    for fmt, zipped in [("zip", True), ("legacy", False)]:
        buf = io.BytesIO()
        torch.save({"layer.weight": torch.ones(2, 3), "layer.bias": torch.zeros(2)}, buf, _use_new_zipfile_serialization=zipped)
        put("pth", f"{fmt}.pth", buf.getvalue())

    for model in ["har_conv1d", "riann", "all-MiniLM-L6-v2", "whisper_tiny_en"]:
        put("config", f"{model}.json", (ROOT / "assets" / "models" / model / "config.json").read_bytes())
    put("config", "labels.json", json.dumps({"architecture": "mobilenet_v2", "id2label": {"0": "cat", "1": "dog"}}))

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "cr", "##eme"])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    put("tokenizer", "wordpiece.json", tok.to_str())

    put("table", "csv", "\x00text,label\n\"a, b\",pos\nc,neg\nd,pos\ne,neg\n")
    put("table", "tsv", "\x01text\tlabel\nhi\ta\nho\tb\n")
    put("table", "jsonl", '\x02{"text": "hi", "label": "a"}\n{"text": "ho", "label": "b"}\n')
    put("table", "bom-crlf", "\x00\ufefftext,label\r\nhi,a\r\nho,b\r\n")
    put("series", "csv", "\x00time,ax,ay,label\n" + "".join(f"{i / 50:.2f},{i % 7},{-i % 5},{'walk' if i < 20 else 'sit'}\n" for i in range(40)))
    put("series", "jsonl", "\x02" + "".join(json.dumps({"time": i / 50, "ax": i, "label": "a"}) + "\n" for i in range(10)))

    for f in ["baseline.jpg", "progressive.jpg", "cmyk.jpg", "exif-rotated.jpg", "sixteen-bit.png", "animated.gif", "image.webp", "image.bmp", "bomb.png"]:
        put("image", f, (BAD / f).read_bytes())

    for width, name in [(1, "u8.wav"), (2, "s16.wav")]:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(width)
            w.setframerate(8000)
            w.writeframes(bytes((i * 37) % 256 for i in range(400 * width)))
        put("audio", name, b"\x00" + buf.getvalue())
    for f in sorted(CORPUS.rglob("*")):
        if f.is_file():
            print(f"{f.relative_to(CORPUS)}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
