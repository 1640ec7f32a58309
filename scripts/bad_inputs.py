"""Write tests/fixtures/bad: the files of the bad-input matrix (tests/bad_input.rs and
tests/e2e/bad_input.test.mjs) that tabtune cannot make itself, each made by the library users'
files come from. Run once with bench/.venv's Python (Pillow, torch, tokenizers; `make bench`'s
setup installs them); the outputs are committed, so tests need none of these.

    bench/.venv/bin/python scripts/bad_inputs.py
"""

import json
import struct
import zlib
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "bad"


def quadrants(width=64, height=48):
    """Red top-left, green top-right, blue bottom-left, white bottom-right: any rotation or
    flip shows."""
    image = Image.new("RGB", (width, height))
    w, h = width // 2, height // 2
    for (x, y), colour in {
        (0, 0): (220, 30, 30),
        (w, 0): (30, 200, 30),
        (0, h): (30, 30, 220),
        (w, h): (240, 240, 240),
    }.items():
        image.paste(colour, (x, y, x + w, y + h))
    return image


def png(width, height, bit_depth, colour_type, rows):
    """A PNG of `rows` (filter byte included), written chunk by chunk."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    image = quadrants()
    image.save(OUT / "baseline.jpg", quality=95)
    image.save(OUT / "progressive.jpg", quality=95, progressive=True)
    image.convert("CMYK").save(OUT / "cmyk.jpg", quality=95)
    image.save(OUT / "image.webp", lossless=True)
    image.save(OUT / "image.bmp")
    # Stored turned a quarter counter-clockwise; EXIF orientation 6 tells a viewer to turn it
    # a quarter clockwise, which shows `image` again.
    exif = Image.Exif()
    exif[0x0112] = 6
    image.transpose(Image.Transpose.ROTATE_90).save(OUT / "exif-rotated.jpg", quality=95, exif=exif)
    # Two frames: red, then blue. The first is the image.
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    red.save(OUT / "animated.gif", save_all=True, append_images=[blue], duration=100, loop=0)
    # 16 bits per channel: the quadrants, each 8-bit value v as v * 257.
    rows = b""
    for y in range(image.height):
        rows += b"\x00" + b"".join(struct.pack(">HHH", *(c * 257 for c in image.getpixel((x, y)))) for x in range(image.width))
    (OUT / "sixteen-bit.png").write_bytes(png(image.width, image.height, 16, 2, rows))
    # A decompression bomb's header: 30,000 x 30,000 RGB (2.7 GB decoded), a few bytes of data.
    (OUT / "bomb.png").write_bytes(png(30000, 30000, 8, 2, b"\x00" * 64))

    # A right-architecture model saved by torch.save itself (zip format): the activity network.
    state = load_file(ROOT / "assets" / "models" / "har_conv1d" / "model.safetensors")
    torch.save(state, OUT / "har_conv1d.pth")

    # Hugging Face's own ids for texts in several scripts, by MiniLM's tokenizer.json.
    tokenizer = Tokenizer.from_file(str(ROOT / "assets" / "models" / "all-MiniLM-L6-v2" / "tokenizer.json"))
    # tabtune pads a batch to its longest row, not to the file's fixed 128.
    tokenizer.no_padding()
    texts = [
        "Crème brûlée, naïve café — déjà vu!",
        "Съешь же ещё этих мягких французских булок",
        "東京は日本の首都です。",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "Emoji 🎉🚀 and ＦＵＬＬＷＩＤＴＨ",
        "Ελληνικά γράμματα",
    ]
    ids = [{"text": t, "ids": tokenizer.encode(t).ids} for t in texts]
    (OUT / "tokenizer_ids.json").write_text(json.dumps(ids, ensure_ascii=False, indent=1) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.name}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
