#!/usr/bin/env python3
"""Convert a legacy (pre-1.6) torch.save checkpoint to .safetensors, standard library only.

The browser cannot read .pth (burn-store's PyTorch reader needs a file path), so `make assets`
ships each PyTorch checkpoint also as safetensors with the same key names.

Legacy layout: pickled magic number, protocol, sys_info; the state-dict pickle whose tensors
refer to storages by persistent id; the pickled list of storage keys; then each storage as an
int64 element count followed by its raw little-endian bytes.

  python3 scripts/pth2safetensors.py IN.pth OUT.safetensors
"""
import collections, json, pickle, struct, sys, zipfile

MAGIC = 0x1950A86A20F9469CFC6C
# storage type -> (safetensors dtype, bytes per element)
DTYPES = {"FloatStorage": ("F32", 4), "DoubleStorage": ("F64", 8), "HalfStorage": ("F16", 2),
          "LongStorage": ("I64", 8), "IntStorage": ("I32", 4), "ShortStorage": ("I16", 2),
          "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1), "BoolStorage": ("BOOL", 1)}


class Storage:
    def __init__(self, kind):
        self.dtype, self.size = DTYPES[kind]
        self.data = None


class Tensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def raw(self, name):
        """The tensor's bytes in C order. Contiguous tensors are one slice of the storage;
        others (e.g. weights ported from TF and transposed without a copy) are gathered."""
        expected, step = [], 1
        for dim in reversed(self.shape):
            expected.insert(0, step)
            step *= dim
        n = step
        size = self.storage.size
        start = self.offset * size
        if not self.shape or n == 0 or all(d == 1 or s == e for d, s, e
                                           in zip(self.shape, self.stride, expected)):
            raw = self.storage.data[start:start + n * size]
        else:
            raw = self._gather(name)
        if len(raw) != n * size:
            raise ValueError(f"tensor {name} reaches past the end of its storage")
        return raw

    def _gather(self, name):
        # Size-1 dimensions do not move through memory; drop them, then copy one C-order row
        # (the last dimension, a strided slice of a memoryview) at a time.
        dims = [(d, s) for d, s in zip(self.shape, self.stride) if d != 1]
        (*outer, (last, last_stride)) = dims
        if any(s < 0 for _, s in dims):
            raise ValueError(f"tensor {name} has negative strides {self.stride}")
        size = self.storage.size
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        mv = memoryview(self.storage.data).cast(fmt)
        rows = []
        index = [0] * len(outer)
        while True:
            base = self.offset + sum(i * s for i, (_, s) in zip(index, outer))
            end = base + (last - 1) * last_stride + 1
            if end > len(mv):
                raise ValueError(f"tensor {name} reaches past the end of its storage")
            rows.append(mv[base:end:last_stride].tobytes())
            for k in reversed(range(len(outer))):  # odometer over the outer dimensions
                index[k] += 1
                if index[k] < outer[k][0]:
                    break
                index[k] = 0
            else:
                return b"".join(rows)


class Unpickler(pickle.Unpickler):
    """Builds only what a state dict needs; any other class is refused (no code runs)."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return lambda storage, offset, shape, stride, *rest: Tensor(storage, offset, shape, stride)
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, *rest: data
        if module == "torch" and name in DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or storage_type not in DTYPES:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid[:2]}")
        return self.storages.setdefault(key, Storage(storage_type))


def load_legacy(path):
    storages = {}
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            raise ValueError(f"{path}: not a legacy torch.save file (bad magic number)")
        pickle.load(f), pickle.load(f)  # protocol version, sys_info
        state = Unpickler(f, storages).load()
        for key in pickle.load(f):
            count = struct.unpack("<q", f.read(8))[0]
            storage = storages[key]
            storage.data = f.read(count * storage.size)
            if len(storage.data) != count * storage.size:
                raise ValueError(f"{path}: truncated in storage {key}")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def save_safetensors(state, out, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in state.items():
        if not isinstance(tensor, Tensor):
            continue
        raw = tensor.raw(name)
        header[name] = {"dtype": tensor.storage.dtype, "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)
    return len(header) - 1


def save_zip(state, out):
    """The same tensors as a PyTorch >= 1.6 `torch.save` zip: `archive/data.pkl` (the state
    dict, protocol 2, tensors referring to storages by persistent id), one `archive/data/N` per
    storage, `archive/version`. The pickle is written opcode by opcode: the classes it names
    (torch._utils._rebuild_tensor_v2, torch.FloatStorage) are not importable without torch."""
    storage_of = {dtype: kind for kind, (dtype, _) in DTYPES.items()}
    p = bytearray(b"\x80\x02")  # PROTO 2

    def glob(module, name):  # GLOBAL
        p.extend(b"c" + f"{module}\n{name}\n".encode())

    def text(value):  # BINUNICODE
        raw = value.encode()
        p.extend(b"X" + struct.pack("<I", len(raw)) + raw)

    def integer(value):  # BININT
        p.extend(b"J" + struct.pack("<i", value))

    def ints(values):  # MARK ... TUPLE
        p.extend(b"(")
        for v in values:
            integer(v)
        p.extend(b"t")

    glob("collections", "OrderedDict")
    p.extend(b")R(")  # EMPTY_TUPLE REDUCE, MARK for SETITEMS
    files = []
    for key, (name, tensor) in enumerate((n, t) for n, t in state.items() if isinstance(t, Tensor)):
        raw = tensor.raw(name)
        numel = len(raw) // tensor.storage.size
        strides, step = [], 1
        for dim in reversed(tensor.shape):
            strides.insert(0, step)
            step *= dim
        text(name)
        glob("torch._utils", "_rebuild_tensor_v2")
        p.extend(b"((")  # MARK args, MARK persistent id
        text("storage")
        glob("torch", storage_of[tensor.storage.dtype])
        text(str(key))
        text("cpu")
        integer(numel)
        p.extend(b"tQ")  # TUPLE BINPERSID
        integer(0)
        ints(tensor.shape)
        ints(strides)
        p.extend(b"\x89")  # NEWFALSE (requires_grad)
        glob("collections", "OrderedDict")
        p.extend(b")RtR")  # backward hooks; TUPLE REDUCE
        files.append((f"archive/data/{key}", raw))
    p.extend(b"u.")  # SETITEMS STOP
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", bytes(p))
        z.writestr("archive/byteorder", "little")
        for member, raw in files:
            z.writestr(member, raw)
        z.writestr("archive/version", "3\n")
    return len(files)


def load_zip(path):
    """Read back a zip checkpoint (used to check save_zip)."""
    storages = {}
    with zipfile.ZipFile(path) as z:
        prefix = z.namelist()[0].split("/")[0]
        state = Unpickler(__import__("io").BytesIO(z.read(f"{prefix}/data.pkl")), storages).load()
        for key, storage in storages.items():
            storage.data = z.read(f"{prefix}/data/{key}")
    return state


if __name__ == "__main__":
    n = save_safetensors(load_legacy(sys.argv[1]), sys.argv[2], {"format": "pt"})
    print(f"wrote {n} tensors to {sys.argv[2]}")
