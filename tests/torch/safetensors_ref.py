"""A plain safetensors reader (struct + json + numpy; no safetensors package), to check sprout's
export against the format as its specification states it: an 8-byte little-endian header
length N, N bytes of JSON {name: {dtype, shape, data_offsets [begin, end]}, "__metadata__": {...}},
then the data, offsets relative to the first byte after the header."""
import json
import struct

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def read(path):
    """-> (tensors {name: np.ndarray}, metadata dict, header_len). BF16 tensors come back as
    their raw uint16 bit patterns (numpy has no bfloat16); see bf16_to_f32."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), f"{path}: header length {n} runs past the file"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out, spans = {}, []
    for name, e in header.items():
        assert set(e) == {"dtype", "shape", "data_offsets"}, f"{name}: keys {sorted(e)}"
        dt = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        assert end - b == count * dt.itemsize, f"{name}: {end - b} bytes for {count} values"
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"]).copy()
        spans.append((b, end, name))
    spans.sort()
    pos = 0
    for b, end, name in spans:  # safetensors' own check: contiguous, no gap, no overlap
        assert b == pos, f"{name}: begins at {b}, expected {pos}"
        pos = end
    assert pos == len(data), f"{len(data) - pos} bytes after the last tensor"
    return out, meta, n


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)
