#!/usr/bin/env python3
"""What is in a wasm module: code bytes by crate (from the function names), data and the rest.

    python3 scripts/wasm-sizes.py target/wasm32-unknown-unknown/wasm/tabtune.wasm [--top 25]

Reads the module's sections and its `name` section (cargo's output has one; wasm-opt's does
not), demangles Rust's legacy (`_ZN...E`) and v0 (`_R...`) symbol prefixes far enough to tell
the crate that holds each function's code (the crate of the function, or of the type an impl
is for), and prints a Markdown table for BENCHMARKS.md. Standard library only, like the
converters.
"""

import re
import sys
from collections import Counter


def leb(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def sections(data):
    if data[:4] != b"\0asm":
        sys.exit("not a wasm module (no \\0asm magic)")
    pos = 8
    while pos < len(data):
        kind = data[pos]
        size, body = leb(data, pos + 1)
        yield kind, data[body : body + size], body + size - pos
        pos = body + size


def function_names(body):
    """The `name` section's function names by function index."""
    name, pos = leb(body, 0)
    pos += name
    names = {}
    while pos < len(body):
        sub = body[pos]
        size, pos = leb(body, pos + 1)
        end = pos + size
        if sub == 1:
            count, p = leb(body, pos)
            for _ in range(count):
                index, p = leb(body, p)
                length, p = leb(body, p)
                names[index] = body[p : p + length].decode("utf-8", "replace")
                p += length
        pos = end
    return names


def imported_functions(body):
    count, pos = leb(body, 0)
    functions = 0
    for _ in range(count):
        for _ in range(2):
            length, pos = leb(body, pos)
            pos += length
        kind = body[pos]
        pos += 1
        if kind == 0:
            _, pos = leb(body, pos)
            functions += 1
        elif kind == 1:
            pos += 1
            flags, pos = leb(body, pos)
            _, pos = leb(body, pos)
            if flags & 1:
                _, pos = leb(body, pos)
        elif kind == 2:
            flags, pos = leb(body, pos)
            _, pos = leb(body, pos)
            if flags & 1:
                _, pos = leb(body, pos)
        elif kind == 3:
            pos += 2
        elif kind == 4:
            pos += 1
            _, pos = leb(body, pos)
    return functions


def code_sizes(body):
    count, pos = leb(body, 0)
    sizes = []
    for _ in range(count):
        size, start = leb(body, pos)
        sizes.append(size + start - pos)
        pos = start + size
    return sizes


LEGACY = re.compile(r"^_ZN(\d+)")
IMPL = re.compile(r"_\$LT\$([A-Za-z0-9_]+)\.\.")


def crate_of(name):
    """The crate a function's code belongs to, told from its mangled or plain name."""
    match = LEGACY.match(name)
    if match:
        length = int(match.group(1))
        first = name[match.end() : match.end() + length]
        if first.startswith("_$LT$"):
            # `<Type as Trait>::method`: the type's crate.
            inner = IMPL.match(first) or IMPL.search(first)
            return inner.group(1) if inner else "(impl)"
        return first
    if name.startswith("_R"):
        # v0 mangling: the first identifier after the crate-root marker `C`.
        match = re.search(r"C(?:s[0-9a-zA-Z_]*_)?(\d+)([A-Za-z_][A-Za-z0-9_]*)", name)
        if match:
            return match.group(2)[: int(match.group(1))]
    if "::" in name:
        return name.split("::")[0].lstrip("<")
    return "(unnamed or C: " + (name.split("_")[0] or name[:12]) + ")"


def normalise(crate):
    crate = re.sub(r"^core$|^alloc$|^std$", r"std (\g<0>)", crate)
    return crate.replace("_", "-")


def main():
    args = sys.argv[1:]
    top = 25
    if "--top" in args:
        top = int(args[args.index("--top") + 1])
        del args[args.index("--top") : args.index("--top") + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    data = open(args[0], "rb").read()
    imports = 0
    names = {}
    sizes = []
    by_section = Counter()
    section_names = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table",
                     5: "memory", 6: "global", 7: "export", 8: "start", 9: "element",
                     10: "code", 11: "data", 12: "data count"}
    for kind, body, total in sections(data):
        label = section_names.get(kind, str(kind))
        if kind == 0:
            length, pos = leb(body, 0)
            label = "custom: " + body[pos : pos + length].decode("utf-8", "replace")
            if body[pos : pos + length] == b"name":
                names = function_names(body)
        if kind == 2:
            imports = imported_functions(body)
        if kind == 10:
            sizes = code_sizes(body)
        by_section[label] += total
    if not names:
        sys.exit("the module has no name section (wasm-opt drops it): use cargo's output")
    crates = Counter()
    counts = Counter()
    for i, size in enumerate(sizes):
        crate = normalise(crate_of(names.get(imports + i, "?")))
        crates[crate] += size
        counts[crate] += 1
    code = sum(sizes)
    print(f"{args[0]}: {len(data) / 1024:,.0f} KiB, {len(sizes):,} functions")
    print()
    print("| section | KiB | share |")
    print("|---|---|---|")
    for label, total in by_section.most_common():
        print(f"| {label} | {total / 1024:,.0f} | {100 * total / len(data):.1f}% |")
    print()
    print("| crate (code) | KiB | functions | share of code |")
    print("|---|---|---|---|")
    rest = 0
    for i, (crate, total) in enumerate(crates.most_common()):
        if i < top:
            print(f"| {crate} | {total / 1024:,.0f} | {counts[crate]:,} | {100 * total / code:.1f}% |")
        else:
            rest += total
    if rest:
        print(f"| {len(crates) - top} others | {rest / 1024:,.0f} | | {100 * rest / code:.1f}% |")


if __name__ == "__main__":
    main()
