#!/usr/bin/env python3
"""The float32 datasets of an HDF5 file (superblock version 0, as h5py 2.x and Keras 2 wrote
them), with the standard library only.

Reads what a Keras `save_weights` file holds and nothing more: groups as symbol tables
(version-1 B-trees of symbol-table nodes, names in a local heap) and datasets whose data is
contiguous or compact, of little-endian IEEE floats. Anything else (chunked or compressed
data, newer superblocks, other types) is refused with the reason, rather than read wrongly.

  python3 scripts/hdf5.py har_model_save       # lists path, shape and dtype of every dataset
"""
import struct, sys


class Hdf5Error(ValueError):
    pass


class File:
    def __init__(self, data):
        self.b = memoryview(data)
        if bytes(self.b[:8]) != b"\x89HDF\r\n\x1a\n":
            raise Hdf5Error("not an HDF5 file (no signature at byte 0)")
        version = self.b[8]
        if version not in (0, 1):
            raise Hdf5Error(f"HDF5 superblock version {version}: only 0 and 1 are read")
        self.so, self.sl = self.b[13], self.b[14]
        if (self.so, self.sl) != (8, 8):
            raise Hdf5Error(f"offsets of {self.so} and lengths of {self.sl} bytes: only 8 are read")
        at = 24 + (4 if version == 1 else 0)  # v1 adds the indexed-storage K and 2 reserved bytes
        self.base = self.u(at, 8)
        root_entry = at + 32
        self.root = self.u(root_entry + 8, 8)  # the root group's object header

    def u(self, at, n):
        return int.from_bytes(self.b[at:at + n], "little")

    def messages(self, addr):
        """(type, body offset, size) of each message of the version-1 object header at addr."""
        if self.b[addr] != 1:
            raise Hdf5Error(f"object header version {self.b[addr]} at {addr}: only 1 is read")
        count = self.u(addr + 2, 2)
        blocks = [(addr + 16, self.u(addr + 8, 4))]
        out = []
        while blocks and len(out) < count:
            at, size = blocks.pop(0)
            end = at + size
            while at + 8 <= end and len(out) < count:
                kind, length = self.u(at, 2), self.u(at + 2, 2)
                body = at + 8
                if kind == 0x10:  # continuation: more messages elsewhere
                    blocks.append((self.u(body, 8), self.u(body + 8, 8)))
                out.append((kind, body, length))
                at = body + length
        return out

    def children(self, addr):
        """{name: object header address} of the group whose object header is at addr."""
        table = [m for m in self.messages(addr) if m[0] == 0x11]
        if not table:
            raise Hdf5Error(f"object at {addr} is not a group with a symbol table")
        body = table[0][1]
        btree, heap = self.u(body, 8), self.u(body + 8, 8)
        if bytes(self.b[heap:heap + 4]) != b"HEAP":
            raise Hdf5Error(f"no local heap at {heap}")
        names = self.u(heap + 24, 8)
        out = {}
        self._walk(btree, names, out)
        return out

    def _walk(self, node, names, out):
        if bytes(self.b[node:node + 4]) != b"TREE":
            raise Hdf5Error(f"no B-tree node at {node}")
        level, used = self.b[node + 5], self.u(node + 6, 2)
        at = node + 24 + 8  # past the signature, type, level, count, siblings and key 0
        for _ in range(used):
            child = self.u(at, 8)
            if level > 0:
                self._walk(child, names, out)
            else:
                self._symbols(child, names, out)
            at += 16
        return out

    def _symbols(self, node, names, out):
        if bytes(self.b[node:node + 4]) != b"SNOD":
            raise Hdf5Error(f"no symbol-table node at {node}")
        for i in range(self.u(node + 6, 2)):
            entry = node + 8 + 40 * i
            start = names + self.u(entry, 8)
            end = bytes(self.b[start:start + 1024]).index(b"\0")
            out[bytes(self.b[start:start + end]).decode()] = self.u(entry + 8, 8)

    def dataset(self, addr, path):
        """(shape, little-endian float32 bytes) of the dataset at addr."""
        shape, dtype, layout = None, None, None
        for kind, body, _ in self.messages(addr):
            if kind == 0x01:
                version, rank = self.b[body], self.b[body + 1]
                first = body + (8 if version == 1 else 4)
                shape = [self.u(first + 8 * i, 8) for i in range(rank)]
            elif kind == 0x03:
                cls, bits, size = self.b[body] & 0x0F, self.b[body + 1], self.u(body + 4, 4)
                dtype = (cls, bits, size)
            elif kind == 0x08:
                layout = body
        if shape is None or dtype is None or layout is None:
            raise Hdf5Error(f"{path}: not a dataset (no dataspace, datatype or layout)")
        cls, bits, size = dtype
        if cls != 1 or size not in (4, 8) or bits & 1:
            raise Hdf5Error(f"{path}: datatype class {cls}, {size} bytes: only little-endian floats")
        count = 1
        for d in shape:
            count *= d
        version = self.b[layout]
        if version == 3:
            kind = self.b[layout + 1]
            if kind == 1:
                start, length = self.u(layout + 2, 8), self.u(layout + 10, 8)
            elif kind == 0:
                length, start = self.u(layout + 2, 2), layout + 4
            else:
                raise Hdf5Error(f"{path}: chunked storage (filters, compression) is not read")
        elif version in (1, 2):
            rank, kind = self.b[layout + 1], self.b[layout + 2]
            if kind != 1:
                raise Hdf5Error(f"{path}: layout class {kind} of version {version} is not read")
            start, length = self.u(layout + 8, 8), count * size
        else:
            raise Hdf5Error(f"{path}: data layout message version {version} is not read")
        if start != 0xFFFFFFFFFFFFFFFF and kind == 1:
            start += self.base
        if length != count * size:
            raise Hdf5Error(f"{path}: {length} bytes of data for shape {shape} x {size} bytes")
        raw = bytes(self.b[start:start + length])
        if size == 8:
            raw = struct.pack(f"<{count}f", *struct.unpack(f"<{count}d", raw))
        return shape, raw

    def datasets(self):
        """{path: (shape, float32 bytes)} of every dataset, depth first."""
        out = {}

        def visit(addr, prefix):
            kinds = {m[0] for m in self.messages(addr)}
            if 0x11 in kinds:
                for name, child in self.children(addr).items():
                    visit(child, f"{prefix}/{name}" if prefix else name)
            elif 0x08 in kinds:
                out[prefix] = self.dataset(addr, prefix)

        visit(self.root, "")
        return out


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        for path, (shape, _) in File(f.read()).datasets().items():
            print(path, shape)
