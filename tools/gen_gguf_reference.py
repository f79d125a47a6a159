"""An independent numpy oracle for GGUF files and the dequantisation of ggml blocks.

Each block format is decoded here in numpy's whole-array style from llama.cpp's format description
(ggml-common.h block structs; ggml-quants.c dequantize_row_* and gguf-py quants.py formulas, read, not
copied), with float32 arithmetic (numpy float32 ops round once each, in ggml's order), so our
TypeScript and native kernels are expected to match these values bit for bit. Only the IQ2_XXS grid
is shared with them (data, tools/gen_gguf_tables.py).

usage:
  /usr/bin/python3 tools/gen_gguf_reference.py
      writes test/fixtures/gguf/: blocks-<TYPE>.bin (random valid blocks) and blocks-<TYPE>.f32 (their
      values, little-endian float32), tiny-v3.gguf and tiny-v2.gguf (metadata of every value type, a few
      tensors), tiny.json (what a reader must find in them)
  /usr/bin/python3 tools/gen_gguf_reference.py --rows FILE TENSOR:ROW[,ROW...] [TENSOR:ROW...]
      prints JSON {TENSOR: {"type", "shape", "rows": {ROW: [values]}}}: rows of tensors of a real GGUF file
"""
import json
import mmap
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_gguf_tables import IQ2_XXS_GRID  # noqa: E402

QK_K = 256
# name: (ggml id, values per block, bytes per block, byte offsets of float16 scale fields)
TYPES = {
    "F32": (0, 1, 4, []),
    "F16": (1, 1, 2, []),
    "Q4_0": (2, 32, 18, [0]),
    "Q4_1": (3, 32, 20, [0, 2]),
    "Q5_0": (6, 32, 22, [0]),
    "Q5_1": (7, 32, 24, [0, 2]),
    "Q8_0": (8, 32, 34, [0]),
    "Q2_K": (10, 256, 84, [80, 82]),
    "Q3_K": (11, 256, 110, [108]),
    "Q4_K": (12, 256, 144, [0, 2]),
    "Q5_K": (13, 256, 176, [0, 2]),
    "Q6_K": (14, 256, 210, [208]),
    "IQ2_XXS": (16, 256, 66, [0]),
    "BF16": (30, 1, 2, []),
}
NAME_OF_ID = {v[0]: k for k, v in TYPES.items()}
NAME_OF_ID[21] = "IQ3_S"  # known to readers, not dequantised: used for the error test
F32 = np.float32


def half(b, at):
    """b: [n, bytes] uint8 -> [n, 1] float32 of the float16 at byte `at`."""
    return b[:, at : at + 2].copy().view("<f2").astype(F32)


def nibbles(x):
    """[n, k] uint8 -> [n, 2k]: the k low nibbles, then the k high nibbles."""
    return np.concatenate([x & 15, x >> 4], axis=1)


def bits(x, count):
    """[n, k] uint8 -> [n, count, k]: bit j of every byte at [:, j, :]."""
    return np.stack([(x >> j) & 1 for j in range(count)], axis=1)


def k_scales(s):
    """The 12 scale bytes of Q4_K/Q5_K [n, 12] -> (scales, mins) [n, 8], 6 bits each."""
    a, b, c = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    sc = np.concatenate([a & 63, (c & 15) | ((a >> 6) << 4)], axis=1)
    mn = np.concatenate([b & 63, (c >> 4) | ((b >> 6) << 4)], axis=1)
    return sc.astype(F32), mn.astype(F32)


def deq_q8_0(b):
    return half(b, 0) * b[:, 2:].view(np.int8).astype(F32)


def deq_q4_0(b):
    return (nibbles(b[:, 2:]).astype(np.int32) - 8).astype(F32) * half(b, 0)


def deq_q4_1(b):
    return nibbles(b[:, 4:]).astype(F32) * half(b, 0) + half(b, 2)


def q5_values(qh_bytes, qs):
    """Q5_0/Q5_1: 4 low bits from the nibbles, bit i of the u32 qh as bit 4 of value i."""
    high = bits(qh_bytes, 8).transpose(0, 2, 1).reshape(-1, 32)  # bit i of the little-endian u32
    return nibbles(qs).astype(np.int32) | (high.astype(np.int32) << 4)


def deq_q5_0(b):
    return (q5_values(b[:, 2:6], b[:, 6:]) - 16).astype(F32) * half(b, 0)


def deq_q5_1(b):
    return q5_values(b[:, 4:8], b[:, 8:]).astype(F32) * half(b, 0) + half(b, 2)


def deq_q2_k(b):
    n = b.shape[0]
    scales, qs = b[:, 0:16], b[:, 16:80]
    dl = (half(b, 80) * (scales & 15).astype(F32))[:, :, None]  # [n, 16, 1]
    ml = (half(b, 82) * (scales >> 4).astype(F32))[:, :, None]
    # per 32-byte half: 4 shifts of its 32 bytes, each 32 values = groups of 16
    q = np.stack([(qs.reshape(n, 2, 1, 32) >> (2 * s)) & 3 for s in range(4)], axis=2).reshape(n, 16, 16)
    return (dl * q.astype(F32) - ml).reshape(n, QK_K)


def deq_q3_k(b):
    n = b.shape[0]
    hmask, qs, s = b[:, 0:32], b[:, 32:96], b[:, 96:108]
    low = np.concatenate([s[:, 0:8] & 15, s[:, 0:8] >> 4], axis=1)  # [n, 16]
    high = np.concatenate([(s[:, 8:12] >> (2 * k)) & 3 for k in range(4)], axis=1)
    scale = ((low | (high << 4)).astype(np.int32) - 32).astype(F32)
    dl = (half(b, 108) * scale)[:, :, None]
    q = np.stack([(qs.reshape(n, 2, 32) >> (2 * s_)) & 3 for s_ in range(4)], axis=2)  # [n, 2, 4, 32]
    h = np.stack([(hmask >> j) & 1 for j in range(8)], axis=1).reshape(n, 2, 4, 32)  # bit 4*half + shift
    v = q.astype(np.int32) - np.where(h == 1, 0, 4)
    return (dl * v.reshape(n, 16, 16).astype(F32)).reshape(n, QK_K)


def deq_q4_k(b):
    n = b.shape[0]
    sc, mn = k_scales(b[:, 4:16])
    dl = (half(b, 0) * sc)[:, :, None]
    ml = (half(b, 2) * mn)[:, :, None]
    qs = b[:, 16:144].reshape(n, 4, 32)
    q = np.stack([qs & 15, qs >> 4], axis=2).reshape(n, 8, 32)
    return (dl * q.astype(F32) - ml).reshape(n, QK_K)


def deq_q5_k(b):
    n = b.shape[0]
    sc, mn = k_scales(b[:, 4:16])
    dl = (half(b, 0) * sc)[:, :, None]
    ml = (half(b, 2) * mn)[:, :, None]
    qs = b[:, 48:176].reshape(n, 4, 32)
    low = np.stack([qs & 15, qs >> 4], axis=2).reshape(n, 8, 32)
    high = bits(b[:, 16:48], 8)  # [n, 8, 32]: bit g of qh[l] belongs to group g
    q = low.astype(np.int32) + 16 * high.astype(np.int32)
    return (dl * q.astype(F32) - ml).reshape(n, QK_K)


def deq_q6_k(b):
    n = b.shape[0]
    ql, qh = b[:, 0:128].reshape(n, 2, 64), b[:, 128:192].reshape(n, 2, 32)
    scales = b[:, 192:208].view(np.int8).astype(F32)
    low = np.concatenate([ql & 15, ql >> 4], axis=2).reshape(n, 2, 4, 32)
    high = np.stack([(qh >> (2 * k)) & 3 for k in range(4)], axis=2)  # [n, 2, 4, 32]
    q = ((low | (high << 4)).astype(np.int32) - 32).reshape(n, 16, 16).astype(F32)
    d = (half(b, 208) * scales)[:, :, None]
    return (d * q).reshape(n, QK_K)


GRID = np.array([[(g >> (8 * j)) & 0xFF for j in range(8)] for g in IQ2_XXS_GRID], dtype=np.uint8)


def deq_iq2_xxs(b):
    n = b.shape[0]
    words = b[:, 2:66].copy().view("<u4").reshape(n, 8, 2)  # per group of 32: (4 grid indices, signs and scale)
    idx = b[:, 2:66].reshape(n, 8, 8)[:, :, 0:4]  # the bytes of the first word
    aux = words[:, :, 1]
    db = (half(b, 0) * (F32(0.5) + (aux >> 28).astype(F32))) * F32(0.25)  # [n, 8]
    mag = GRID[idx].astype(F32)  # [n, 8, 4, 8]
    sign7 = np.stack([(aux >> (7 * l)) & 127 for l in range(4)], axis=2)  # [n, 8, 4]
    parity = np.array([bin(i).count("1") & 1 for i in range(128)], dtype=np.uint32)
    sign8 = sign7 | (parity[sign7] << 7)  # the 8th sign makes the count of minus signs even
    neg = ((sign8[..., None] >> np.arange(8, dtype=np.uint32)) & 1) == 1
    y = db[:, :, None, None] * mag
    return np.where(neg, -y, y).reshape(n, QK_K)


def deq_scalar(name, raw):
    if name == "F32":
        return raw.view("<f4").astype(F32)
    if name == "F16":
        return raw.view("<f2").astype(F32)
    return (raw.view("<u2").astype(np.uint32) << 16).view(F32)  # BF16


DEQ = {
    "Q4_0": deq_q4_0, "Q4_1": deq_q4_1, "Q5_0": deq_q5_0, "Q5_1": deq_q5_1, "Q8_0": deq_q8_0,
    "Q2_K": deq_q2_k, "Q3_K": deq_q3_k, "Q4_K": deq_q4_k, "Q5_K": deq_q5_k, "Q6_K": deq_q6_k,
    "IQ2_XXS": deq_iq2_xxs,
}


def dequantize(name, raw):
    """raw: uint8 bytes of whole blocks -> float32 values."""
    _, values, size, _ = TYPES[name]
    raw = np.frombuffer(bytes(raw), dtype=np.uint8)
    assert raw.size % size == 0
    if values == 1:
        return deq_scalar(name, raw)
    return DEQ[name](raw.reshape(-1, size)).reshape(-1).astype(F32)


# ----------------------------------------------------------------------------- random valid blocks


def random_blocks(name, n, rng):
    """n random blocks of a type: random bytes, float16 scales finite (some negative, tiny or zero)."""
    _, values, size, scale_at = TYPES[name]
    if values == 1:
        if name == "F32":
            x = rng.standard_normal(n).astype(F32) * F32(3)
            x[:4] = [0.0, -0.0, 1e-40, -np.inf]
            return x.astype("<f4").tobytes()
        bitsv = rng.integers(0, 1 << 16, n, dtype=np.uint32)
        exp_all_ones, mantissa = (0x7C00, 0x03FF) if name == "F16" else (0x7F80, 0x007F)
        nan = ((bitsv & exp_all_ones) == exp_all_ones) & ((bitsv & mantissa) != 0)
        bitsv[nan] &= ~np.uint32(exp_all_ones)  # no NaNs: an exponent of all ones becomes zero
        bitsv[:3] = [0x0000, 0x8000, 0x0001]  # +0, -0, the smallest subnormal
        bitsv[3] = exp_all_ones  # +inf
        return bitsv.astype("<u2").tobytes()
    b = rng.integers(0, 256, (n, size), dtype=np.uint8)
    for at in scale_at:
        d = (rng.standard_normal(n) * 0.05).astype(np.float16)
        d[0] = np.float16(0)
        if n > 1:
            d[1] = np.float16(6e-8)  # a subnormal scale
        b[:, at : at + 2] = d.astype("<f2").view(np.uint8).reshape(n, 2)
    return b.tobytes()


# ----------------------------------------------------------------------------- GGUF writing


def gguf_string(s):
    data = s.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_value(vtype, v):
    if vtype in SCALAR:
        return struct.pack(SCALAR[vtype], v)
    if vtype == 7:
        return struct.pack("<B", 1 if v else 0)
    if vtype == 8:
        return gguf_string(v)
    item_type, items = v
    return struct.pack("<IQ", item_type, len(items)) + b"".join(gguf_value(item_type, x) for x in items)


def write_gguf(path, version, kvs, tensors, alignment):
    """kvs: [(key, type, value)]; tensors: [(name, type name, shape row-major, raw bytes)]."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)))
    for key, vtype, v in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, v)
    offset = 0
    placed = []
    for name, tname, shape, raw in tensors:
        ne = list(reversed(shape))
        out += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", TYPES[tname][0] if tname in TYPES else 21, offset)
        placed.append((offset, raw))
        offset += (len(raw) + alignment - 1) // alignment * alignment
    out += bytes(-len(out) % alignment)
    data = bytearray(offset)
    for at, raw in placed:
        data[at : at + len(raw)] = raw
    with open(path, "wb") as f:
        f.write(bytes(out) + bytes(data))


def tiny_files(folder, rng):
    """tiny-v3.gguf (alignment 64), tiny-v2.gguf (default 32) and tiny.json describing both."""
    kvs = [
        ("general.architecture", 8, "llama"),
        ("test.u8", 0, 200), ("test.i8", 1, -100), ("test.u16", 2, 60000), ("test.i16", 3, -30000),
        ("test.u32", 4, 4000000000), ("test.i32", 5, -2000000000), ("test.f32", 6, 0.5),
        ("test.bool", 7, True), ("test.string", 8, "h\u00e9llo \u4e16\u754c"),
        ("test.u64", 10, 2**63 + 5), ("test.i64", 11, -(2**62)), ("test.f64", 12, 0.1),
        ("test.strings", 9, (8, ["<unk>", "<s>", "\u2581the"])),
        ("test.floats", 9, (6, [0.0, -1.5, 2.25])),
        ("test.nested", 9, (9, [(4, [1, 2]), (4, [])])),
        ("test.empty", 9, (0, [])),
    ]
    shapes = {"F32": [2, 3], "F16": [3, 4], "BF16": [5], "Q8_0": [2, 64], "Q4_K": [2, 256], "IQ2_XXS": [1, 256], "Q6_K": [1, 1, 256]}
    tensors = []
    expected_tensors = {}
    for tname, shape in shapes.items():
        count = int(np.prod(shape)) // TYPES[tname][1]
        raw = random_blocks(tname, count, rng)
        name = f"t.{tname.lower()}"
        tensors.append((name, tname, shape, raw))
        values = dequantize(tname, raw)
        expected_tensors[name] = {"type": tname, "shape": shape, "values": [float_json(x) for x in values]}
    unsupported = rng.integers(0, 256, 110, dtype=np.uint8).tobytes()  # one IQ3_S block (256 values, 110 bytes)
    tensors.append(("t.iq3_s", "IQ3_S", [1, 256], unsupported))
    expected_tensors["t.iq3_s"] = {"type": "IQ3_S", "shape": [1, 256]}
    for version, alignment in ((3, 64), (2, 32)):
        extra = [("general.alignment", 4, alignment)] if alignment != 32 else []
        write_gguf(os.path.join(folder, f"tiny-v{version}.gguf"), version, kvs + extra, tensors, alignment)
    meta = {key: {"type": vtype, "value": json_value(vtype, v)} for key, vtype, v in kvs}
    with open(os.path.join(folder, "tiny.json"), "w") as f:
        json.dump({"metadata": meta, "tensors": expected_tensors}, f, indent=1)
        f.write("\n")


def float_json(x):
    x = float(x)
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 and np.signbit(x):
        return "-0"
    return x


def json_value(vtype, v):
    """A value as JSON: 64-bit integers as strings (bigint in TypeScript), floats as float32 where stored so."""
    if vtype in (10, 11):
        return str(v)
    if vtype == 6:
        return float(np.float32(v))
    if vtype == 9:
        item_type, items = v
        return [json_value(item_type, x) for x in items]
    return v


# ----------------------------------------------------------------------------- reading a real file


def read_rows(path, wanted):
    """wanted: {tensor name: [row, ...]} -> {tensor name: {"type", "shape", "rows": {row: values}}}."""
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    assert magic == b"GGUF" and version in (2, 3)
    at = 24

    def read_string(at):
        (n,) = struct.unpack_from("<Q", data, at)
        return data[at + 8 : at + 8 + n].decode("utf-8"), at + 8 + n

    def skip_value(vtype, at):
        if vtype in SCALAR:
            return at + struct.calcsize(SCALAR[vtype])
        if vtype == 7:
            return at + 1
        if vtype == 8:
            return read_string(at)[1]
        item_type, n = struct.unpack_from("<IQ", data, at)
        at += 12
        for _ in range(n):
            at = skip_value(item_type, at)
        return at

    alignment = 32
    for _ in range(n_kv):
        key, at = read_string(at)
        (vtype,) = struct.unpack_from("<I", data, at)
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", data, at + 4)
        at = skip_value(vtype, at + 4)
    infos = {}
    for _ in range(n_tensors):
        name, at = read_string(at)
        (nd,) = struct.unpack_from("<I", data, at)
        ne = struct.unpack_from(f"<{nd}Q", data, at + 4)
        ttype, offset = struct.unpack_from("<IQ", data, at + 4 + 8 * nd)
        at += 4 + 8 * nd + 12
        infos[name] = (list(ne), NAME_OF_ID[ttype], offset)
    start = (at + alignment - 1) // alignment * alignment
    result = {}
    for tensor, rows in wanted.items():
        ne, tname, offset = infos[tensor]
        _, values, size, _ = TYPES[tname]
        row_bytes = ne[0] // values * size
        out = {}
        for r in rows:
            at = start + offset + r * row_bytes
            out[str(r)] = [float(x) for x in dequantize(tname, data[at : at + row_bytes])]
        result[tensor] = {"type": tname, "shape": list(reversed(ne)), "rows": out}
    return result


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--rows":
        wanted = {}
        for arg in sys.argv[3:]:
            tensor, rows = arg.rsplit(":", 1)
            wanted[tensor] = [int(r) for r in rows.split(",")]
        json.dump(read_rows(sys.argv[2], wanted), sys.stdout)
        return
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "gguf")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(20261130)
    for name, (_, values, _, _) in TYPES.items():
        n = 64 if values == 1 else (12 if values == 32 else 5)
        raw = random_blocks(name, n * (16 if values == 1 else 1), rng)
        with open(os.path.join(folder, f"blocks-{name}.bin"), "wb") as f:
            f.write(raw)
        with open(os.path.join(folder, f"blocks-{name}.f32"), "wb") as f:
            f.write(dequantize(name, raw).astype("<f4").tobytes())
    tiny_files(folder, rng)


if __name__ == "__main__":
    main()
