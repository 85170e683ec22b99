#!/usr/bin/env python3
"""Generate the GGUF / dequantization test fixtures for CartridgeModelTests.

Run from the repository root (needs the `gguf` and `numpy` PyPI packages):

    pip install gguf numpy
    python3 scripts/make-gguf-fixtures.py

The outputs are committed to the repository, so the Swift tests never need Python;
rerun this script only to change the fixtures. Everything is seeded, so a rerun with
the same gguf-py version reproduces the same bytes.

It writes into Tests/CartridgeModelTests/Fixtures/:

  dequant.json         A JSON array with one entry per supported ggml type:
                       {"type": "Q4_K", "type_id": 12, "count": 512,
                        "raw_base64": "<quantized blocks, little-endian>",
                        "expected": [float32 values, shortest round-trip repr]}
                       `expected` is gguf-py's `gguf.quants.dequantize` of the raw bytes.
                       Raw bytes come from `gguf.quants.quantize` where gguf-py can quantize
                       the type (F32, F16, BF16, Q8_0, Q4_0, Q4_1); for the K-quants, which
                       it can only dequantize, the blocks are random bytes with finite fp16
                       scale fields.
  types.gguf           A small GGUF v3 file (gguf.GGUFWriter) holding the same raw data as
                       tensors t_f32 ... t_q6_k, plus metadata keys of every GGUF value type.
  types-expected.json  What a reader should find in types.gguf (keys, value types, values,
                       tensor types, shapes in ggml `ne` order, data offsets). Also printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "CartridgeModelTests" / "Fixtures"

QK_K = 256


def f16_bytes(values: np.ndarray) -> np.ndarray:
    """fp16 little-endian bytes of `values`, shape (n, 2)."""
    return np.asarray(values, dtype="<f2").reshape(-1, 1).view(np.uint8)


def random_k_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    """Random blocks of a K-quant type with sane, finite, positive fp16 scales."""
    def u8(n: int) -> np.ndarray:
        return rng.integers(0, 256, size=(n_blocks, n), dtype=np.uint8)

    d = f16_bytes(rng.uniform(0.002, 0.02, size=n_blocks))
    if qtype == T.Q4_K:
        # d, dmin, scales[12] (6-bit scales and mins), qs[128]
        dmin = f16_bytes(rng.uniform(0.001, 0.01, size=n_blocks))
        blocks = np.concatenate([d, dmin, u8(12), u8(QK_K // 2)], axis=1)
    elif qtype == T.Q5_K:
        # d, dmin, scales[12], qh[32], qs[128]
        dmin = f16_bytes(rng.uniform(0.001, 0.01, size=n_blocks))
        blocks = np.concatenate([d, dmin, u8(12), u8(QK_K // 8), u8(QK_K // 2)], axis=1)
    elif qtype == T.Q6_K:
        # ql[128], qh[64], scales[16] (int8), d
        blocks = np.concatenate([u8(QK_K // 2), u8(QK_K // 4), u8(QK_K // 16), d], axis=1)
    else:
        raise ValueError(qtype)
    assert blocks.shape[1] == gguf.GGML_QUANT_SIZES[qtype][1]
    return np.ascontiguousarray(blocks)


def make_entries() -> list[tuple[T, str, tuple[int, int], np.ndarray]]:
    """(type, tensor name, numpy shape (rows, cols), raw uint8 bytes) for each type."""
    rng = np.random.default_rng(20250101)
    entries = []

    # Plain float types: 64 values, including signed zeros, subnormals and extremes.
    f32 = (rng.standard_normal(64) * 2).astype(np.float32)
    f32[:6] = [0.0, -0.0, 1e-40, -3.4e38, 1.0 / 3.0, -1.0]
    entries.append((T.F32, "t_f32", (4, 16), quantize(f32, T.F32).view(np.uint8)))

    f16 = (rng.standard_normal(64) * 4).astype(np.float16)
    f16[:8] = [0.0, -0.0, 2.0**-24, -(2.0**-14), 3.0e-5, 65504.0, -65504.0, 0.1]
    entries.append((T.F16, "t_f16", (4, 16), quantize(f16, T.F16).view(np.uint8)))

    bf16 = (rng.standard_normal(64) * 3).astype(np.float32)
    bf16[:6] = [0.0, -0.0, 1e-39, 3.0e38, -1.0 / 3.0, 1.0e-3]
    entries.append((T.BF16, "t_bf16", (4, 16), quantize(bf16, T.BF16).view(np.uint8)))

    # 32-value block types: 4 blocks; the last block is all zeros (d == 0 path).
    for qtype, name in [(T.Q8_0, "t_q8_0"), (T.Q4_0, "t_q4_0"), (T.Q4_1, "t_q4_1")]:
        x = (rng.standard_normal(128) * rng.uniform(0.05, 2.0)).astype(np.float32)
        x[96:] = 0.0
        raw = quantize(x.reshape(2, 64), qtype).view(np.uint8).reshape(-1)
        entries.append((qtype, name, (2, 64), raw))

    # K-quants: 2 random blocks (512 values).
    for qtype, name in [(T.Q4_K, "t_q4_k"), (T.Q5_K, "t_q5_k"), (T.Q6_K, "t_q6_k")]:
        raw = random_k_blocks(rng, qtype, 2).reshape(-1)
        entries.append((qtype, name, (2, 256), raw))

    return entries


def float32_repr(x: np.float32) -> str:
    """Shortest decimal that round-trips to this float32 (also via double parsing)."""
    s = str(np.float32(x))
    assert np.isfinite(x), x
    # Swift may parse JSON numbers as Double and then narrow to Float; make sure that
    # path lands on the same bits too (double rounding could in principle differ).
    back = np.float32(float(s))
    assert back.view(np.uint32) == np.float32(x).view(np.uint32), (s, x)
    return s


def write_dequant_json(entries) -> None:
    parts = []
    for qtype, _name, _shape, raw in entries:
        raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        count = raw.size // type_size * block_size
        expected = np.asarray(dequantize(raw.copy(), qtype), dtype=np.float32).reshape(-1)
        assert expected.size == count
        head = json.dumps({
            "type": qtype.name,
            "type_id": int(qtype),
            "count": count,
            "raw_base64": base64.b64encode(raw.tobytes()).decode("ascii"),
        })
        values = ", ".join(float32_repr(v) for v in expected)
        parts.append(head[:-1] + ', "expected": [' + values + "]}")
    (OUT / "dequant.json").write_text("[\n" + ",\n".join(parts) + "\n]\n")


class Writer(gguf.GGUFWriter):
    """GGUFWriter that can also write an empty array (gguf-py refuses to)."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == V.ARRAY and len(val) == 0:
            assert sub_type is not None
            out = self._pack("I", vtype) if add_vtype else b""
            return out + self._pack("I", sub_type) + self._pack("Q", 0)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


# (key, GGUF value type, value, array element type)
METADATA = [
    ("test.u8", V.UINT8, 200, None),
    ("test.i8", V.INT8, -100, None),
    ("test.u16", V.UINT16, 60000, None),
    ("test.i16", V.INT16, -30000, None),
    ("test.u32", V.UINT32, 4000000000, None),
    ("test.i32", V.INT32, -2000000000, None),
    ("test.f32", V.FLOAT32, 3.25, None),
    ("test.bool", V.BOOL, True, None),
    ("test.string", V.STRING, "héllo wörld ✓", None),
    ("test.u64", V.UINT64, 18000000000000000000, None),
    ("test.i64", V.INT64, -9000000000000000000, None),
    ("test.f64", V.FLOAT64, 2.718281828459045, None),
    ("test.array_i32", V.ARRAY, [1, -2, 3, 2147483647, -2147483648], V.INT32),
    ("test.array_str", V.ARRAY, ["a", "", "ünïcode", "three words"], V.STRING),
    ("test.array_empty", V.ARRAY, [], V.INT32),
]


def write_gguf(entries) -> dict:
    path = OUT / "types.gguf"
    w = Writer(path, arch="test")  # adds general.architecture = "test"
    w.add_custom_alignment(64)  # adds general.alignment (u32) = 64
    for key, vtype, value, sub in METADATA:
        w.add_key_value(key, value, vtype, sub_type=sub)
    for qtype, name, shape, raw in entries:
        rows, cols = shape
        data = np.ascontiguousarray(raw, dtype=np.uint8).reshape(rows, -1)
        w.add_tensor(name, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Read it back and describe what a reader must find.
    r = gguf.GGUFReader(path)
    by_key = {f.name: f for f in r.fields.values()}
    kv = []
    expected_meta = [
        ("general.architecture", V.STRING, "test", None),
        ("general.alignment", V.UINT32, 64, None),
    ] + METADATA
    assert [k for k, *_ in expected_meta] == [f.name for f in r.fields.values() if not f.name.startswith("GGUF.")]
    for key, vtype, value, sub in expected_meta:
        field = by_key[key]
        assert field.types[0] == vtype, (key, field.types)
        read = field.contents()
        if vtype == V.FLOAT32:
            assert np.float32(read) == np.float32(value), (key, read)
        else:
            assert read == value, (key, read, value)
        item = {"key": key, "type": vtype.name, "value": value}
        if sub is not None:
            item["element_type"] = sub.name
        kv.append(item)

    tensors = []
    raws = {name: raw for _q, name, _s, raw in entries}
    for t in r.tensors:
        assert bytes(np.asarray(t.data).view(np.uint8).reshape(-1)) == raws[t.name].tobytes(), t.name
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "ne": [int(n) for n in t.shape],  # ggml order: ne[0] is the contiguous row length
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "offset": int(t.data_offset - r.data_offset),  # relative to the data section
        })
    return {
        "file": "types.gguf",
        "version": 3,
        "alignment": 64,
        "data_offset": int(r.data_offset),  # absolute byte offset of the tensor data section
        "file_size": os.path.getsize(path),
        "kv_count": len(kv),
        "metadata": kv,
        "tensors": tensors,
        "note": "tensor data of t_<type> equals raw_base64 of the matching dequant.json entry",
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    entries = make_entries()
    write_dequant_json(entries)
    info = write_gguf(entries)
    text = json.dumps(info, indent=2, ensure_ascii=False) + "\n"
    (OUT / "types-expected.json").write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    from importlib.metadata import version
    print(f"gguf-py {version('gguf')}, numpy {np.__version__}: wrote {OUT}")


if __name__ == "__main__":
    main()
