/**
 * The layouts published ONNX language models come in, made from a model we built (for tests):
 *   toExternalData   weights in model.onnx_data beside the graph, or one file per tensor
 *                    (as onnx.save_model(save_as_external_data=True, all_tensors_to_one_file=...) writes)
 *   toFloat16        every float weight, input and output in float16, Casts to float made Casts to
 *                    float16: the graph computes in float16 (as optimum's --dtype fp16 exports)
 *   toMatMulNBits    every MatMul by a stored [K, N] weight (or a Transpose of one) replaced by
 *                    com.microsoft MatMulNBits with 4-bit blocks of 16, symmetric (zero point 8),
 *                    as onnxruntime's matmul_4bits_quantizer writes model_q4.onnx:
 *                    scale = max|W[:, n] in block| / 7,  q = clamp(round(W / scale) + 8, 0, 15)
 *   toDynamicUint8   every such MatMul made dynamically quantised, as onnxruntime's quantize_dynamic
 *                    writes model_quantized.onnx: DynamicQuantizeLinear(x) -> MatMulInteger by a uint8
 *                    weight (per tensor: scale = max|W| / 127, zero point 128) -> Cast -> Mul by x_scale * W_scale
 *   withMsDomain     nodes of the given op types put in the com.microsoft domain (fused ops)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Field, fields, ProtoWriter, text, varints } from '../../src/engine/protobuf.js';
import { float32ToFloat16 } from '../../src/io/float16.js';
import { valueInfo } from '../../src/lm/onnx-proto.js';

/** The model with each graph field mapped to zero or more fields, and extra ModelProto fields appended. */
function rewrite(model: Uint8Array, graphField: (f: Field) => Uint8Array[], extraModel: Uint8Array[] = []): Uint8Array {
  const m = new ProtoWriter();
  for (const f of fields(model)) {
    if (f.field !== 7) {
      m.raw(f.raw);
      continue;
    }
    const g = new ProtoWriter();
    for (const gf of fields(f.payload)) for (const out of graphField(gf)) g.raw(out);
    m.message(7, g);
  }
  for (const e of extraModel) m.raw(e);
  return m.finish();
}

const tensorName = (t: readonly Field[]): string => text(t.find((x) => x.field === 8)!.payload);
const raw = (t: readonly Field[]): Uint8Array | undefined => t.find((x) => x.field === 9)?.payload;

/** A TensorProto field (graph field 5). */
function initializer(name: string, dataType: number, dims: readonly number[], data: Uint8Array): Uint8Array {
  const t = new ProtoWriter();
  for (const d of dims) t.int(1, d);
  t.int(2, dataType).string(8, name).bytes(9, data);
  return new ProtoWriter().message(5, t).finish();
}

/** Writes `model` as dir/name with every weight of at least 64 bytes in external data: one file, or one per tensor. */
export function toExternalData(model: Uint8Array, dir: string, name: string, perTensor: boolean): void {
  const data: Uint8Array[] = [];
  let offset = 0;
  const out = rewrite(model, (f) => {
    if (f.field !== 5) return [f.raw];
    const t = fields(f.payload);
    const bytes = raw(t);
    if (bytes === undefined || bytes.length < 64) return [f.raw];
    const tn = new ProtoWriter();
    for (const x of t) if (x.field !== 9) tn.raw(x.raw);
    const entry = (k: string, v: string): ProtoWriter => new ProtoWriter().string(1, k).string(2, v);
    if (perTensor) {
      const file = tensorName(t).replace(/[^A-Za-z0-9_.-]/g, '_');
      writeFileSync(join(dir, file), bytes);
      tn.message(13, entry('location', file));
    } else {
      const pad = (4096 - (offset % 4096)) % 4096; // page-aligned, as onnx's writer can
      data.push(new Uint8Array(pad), bytes);
      offset += pad;
      tn.message(13, entry('location', `${name}_data`))
        .message(13, entry('offset', String(offset)))
        .message(13, entry('length', String(bytes.length)));
      offset += bytes.length;
    }
    tn.int(14, 1);
    return [new ProtoWriter().message(5, tn).finish()];
  });
  writeFileSync(join(dir, name), out);
  if (!perTensor) writeFileSync(join(dir, `${name}_data`), Buffer.concat(data));
}

/** A ValueInfo field with element type float made float16. */
function halfValueInfo(f: Field): Uint8Array {
  const v = fields(f.payload);
  const name = text(v.find((x) => x.field === 1)!.payload);
  const tt = fields(fields(v.find((x) => x.field === 2)!.payload)[0]!.payload);
  const elem = Number(tt.find((x) => x.field === 1)?.value ?? 0n);
  if (elem !== 1) return f.raw;
  const dims = fields(tt.find((x) => x.field === 2)?.payload ?? new Uint8Array()).map((d) => {
    const x = fields(d.payload)[0]!;
    return x.field === 1 ? Number(x.value) : text(x.payload);
  });
  return new ProtoWriter().bytes(f.field, valueInfo(name, 10, dims)).finish();
}

/** The model computing in float16. */
export function toFloat16(model: Uint8Array): Uint8Array {
  return rewrite(model, (f) => {
    if (f.field === 5) {
      const t = fields(f.payload);
      const type = Number(t.find((x) => x.field === 2)?.value ?? 0n);
      const bytes = raw(t);
      if (type !== 1 || bytes === undefined) return [f.raw];
      const half = float32ToFloat16(new Float32Array(new Uint8Array(bytes).buffer));
      return [initializer(tensorName(t), 10, varints(t, 1), new Uint8Array(half.buffer))];
    }
    if (f.field === 11 || f.field === 12) return [halfValueInfo(f)];
    if (f.field !== 1) return [f.raw];
    const n = fields(f.payload);
    if (text(n.find((x) => x.field === 4)!.payload) !== 'Cast') return [f.raw];
    const node = new ProtoWriter();
    for (const x of n) {
      const isTo = x.field === 5 && text(fields(x.payload).find((a) => a.field === 1)!.payload) === 'to';
      if (isTo && fields(x.payload).some((a) => a.field === 3 && a.value === 1n)) node.message(5, new ProtoWriter().string(1, 'to').int(20, 2).int(3, 10));
      else node.raw(x.raw);
    }
    return [new ProtoWriter().message(1, node).finish()];
  });
}

const MS_OPSET = new ProtoWriter().message(8, new ProtoWriter().string(1, 'com.microsoft').int(2, 1)).finish();

/** Nodes of the given op types in the com.microsoft domain (and its opset imported). */
export function withMsDomain(model: Uint8Array, ops: ReadonlySet<string>): Uint8Array {
  return rewrite(
    model,
    (f) => {
      if (f.field !== 1 || !ops.has(text(fields(f.payload).find((x) => x.field === 4)!.payload))) return [f.raw];
      return [new ProtoWriter().message(1, new ProtoWriter().raw(f.payload).string(7, 'com.microsoft')).finish()];
    },
    [MS_OPSET],
  );
}

/** Symmetric 4-bit blocks of 16 along K of W [K, N]: q [N, K/16, 8] packed low nibble first, scales [N * K/16], and W dequantised [K, N]. */
export function quantize4(w: Float32Array, K: number, N: number): { q: Uint8Array; scales: Float32Array; dequantized: Float32Array } {
  const blocks = K / 16;
  const q = new Uint8Array(N * blocks * 8);
  const scales = new Float32Array(N * blocks);
  const dequantized = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      let max = 0;
      for (let i = 0; i < 16; i++) max = Math.max(max, Math.abs(w[(b * 16 + i) * N + n]!));
      const scale = Math.fround(max / 7 || 1);
      scales[n * blocks + b] = scale;
      for (let i = 0; i < 16; i++) {
        const v = Math.min(15, Math.max(0, Math.round(w[(b * 16 + i) * N + n]! / scale) + 8));
        q[(n * blocks + b) * 8 + (i >> 1)]! |= v << ((i & 1) * 4);
        dequantized[(b * 16 + i) * N + n] = (v - 8) * scale;
      }
    }
  }
  return { q, scales, dequantized };
}

/** MatMul nodes by a stored [K, N] weight (or a 2-D Transpose of one) replaced by what `replace` returns (nodes and new initializers). */
function replaceMatMuls(
  model: Uint8Array,
  replace: (a: string, out: string, w: Float32Array, K: number, N: number, id: number) => { nodes: Uint8Array[]; inits: Uint8Array[] } | undefined,
  extraModel: Uint8Array[],
): Uint8Array {
  const graph = fields(fields(model).find((f) => f.field === 7)!.payload);
  const inits = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const f of graph) {
    if (f.field !== 5) continue;
    const t = fields(f.payload);
    const bytes = raw(t);
    if (Number(t.find((x) => x.field === 2)?.value ?? 0n) === 1 && bytes)
      inits.set(tensorName(t), { dims: varints(t, 1), data: new Float32Array(new Uint8Array(bytes).buffer) });
  }
  const transposeOf = new Map<string, string>(); // output of a 2-D Transpose -> its initializer input
  for (const f of graph) {
    if (f.field !== 1) continue;
    const n = fields(f.payload);
    const ins = n.filter((x) => x.field === 1).map((x) => text(x.payload));
    if (text(n.find((x) => x.field === 4)!.payload) === 'Transpose' && inits.get(ins[0]!)?.dims.length === 2)
      transposeOf.set(text(n.find((x) => x.field === 2)!.payload), ins[0]!);
  }
  const added: Uint8Array[] = [];
  let count = 0;
  return rewrite(
    model,
    (f) => {
      if (f.field === 11 && added.length > 0) return [...added.splice(0), f.raw]; // new initializers before the inputs
      if (f.field !== 1) return [f.raw];
      const n = fields(f.payload);
      if (text(n.find((x) => x.field === 4)!.payload) !== 'MatMul') return [f.raw];
      const [a, b] = n.filter((x) => x.field === 1).map((x) => text(x.payload));
      const out = text(n.find((x) => x.field === 2)!.payload);
      const stored = inits.get(b!);
      const viaT = transposeOf.get(b!);
      let w: Float32Array;
      let K: number;
      let N: number;
      if (stored?.dims.length === 2) [w, K, N] = [stored.data, stored.dims[0]!, stored.dims[1]!];
      else if (viaT !== undefined) {
        const t = inits.get(viaT)!;
        [N, K] = [t.dims[0]!, t.dims[1]!];
        w = new Float32Array(K * N);
        for (let k = 0; k < K; k++) for (let c = 0; c < N; c++) w[k * N + c] = t.data[c * K + k]!;
      } else return [f.raw];
      const r = replace(a!, out, w, K, N, count);
      if (r === undefined) return [f.raw];
      count++;
      added.push(...r.inits);
      return r.nodes;
    },
    extraModel,
  );
}

/** A NodeProto graph field, in `domain` when given, with integer attributes. */
function node(op: string, inputs: readonly string[], outputs: readonly string[], ints: Record<string, number> = {}, domain?: string): Uint8Array {
  const n = new ProtoWriter();
  for (const i of inputs) n.string(1, i);
  for (const o of outputs) n.string(2, o);
  n.string(3, `${op}_${outputs[0]}`).string(4, op);
  if (domain !== undefined) n.string(7, domain);
  for (const [k, v] of Object.entries(ints)) n.message(5, new ProtoWriter().string(1, k).int(20, 2).int(3, v));
  return new ProtoWriter().message(1, n).finish();
}

/** The model with its MatMuls by stored weights made 4-bit MatMulNBits. */
export function toMatMulNBits(model: Uint8Array): Uint8Array {
  return replaceMatMuls(
    model,
    (a, out, w, K, N, id) => {
      if (K % 16 !== 0) return undefined;
      const { q, scales } = quantize4(w, K, N);
      const name = `q4_${id}`;
      return {
        nodes: [node('MatMulNBits', [a, `${name}.q`, `${name}.scales`], [out], { K, N, bits: 4, block_size: 16 }, 'com.microsoft')],
        inits: [initializer(`${name}.q`, 2, [N, K / 16, 8], q), initializer(`${name}.scales`, 1, [N * (K / 16)], new Uint8Array(scales.buffer))],
      };
    },
    [MS_OPSET],
  );
}

/** W [K, N] quantised to uint8 per tensor: q = clamp(round(W / scale) + 128, 0, 255), scale = max|W| / 127; and dequantised. */
export function quantize8(w: Float32Array): { q: Uint8Array; scale: number; dequantized: Float32Array } {
  const scale = Math.fround(w.reduce((m, x) => Math.max(m, Math.abs(x)), 0) / 127 || 1);
  const q = Uint8Array.from(w, (x) => Math.min(255, Math.max(0, Math.round(x / scale) + 128)));
  return { q, scale, dequantized: Float32Array.from(q, (v) => (v - 128) * scale) };
}

/** The model with its MatMuls by stored weights dynamically quantised (uint8 activations and weights). */
export function toDynamicUint8(model: Uint8Array): Uint8Array {
  return replaceMatMuls(
    model,
    (a, out, w, K, N, id) => {
      const { q, scale } = quantize8(w);
      const p = `dq_${id}`;
      return {
        nodes: [
          node('DynamicQuantizeLinear', [a], [`${p}.xq`, `${p}.xs`, `${p}.xz`]),
          node('MatMulInteger', [`${p}.xq`, `${p}.w`, `${p}.xz`, `${p}.wz`], [`${p}.acc`]),
          node('Cast', [`${p}.acc`], [`${p}.accf`], { to: 1 }),
          node('Mul', [`${p}.xs`, `${p}.ws`], [`${p}.s`]),
          node('Mul', [`${p}.accf`, `${p}.s`], [out]),
        ],
        inits: [
          initializer(`${p}.w`, 2, [K, N], q),
          initializer(`${p}.wz`, 2, [], Uint8Array.of(128)),
          initializer(`${p}.ws`, 1, [], new Uint8Array(Float32Array.of(scale).buffer)),
        ],
      };
    },
    [],
  );
}

/** The model with an extra bool input use_cache_branch, as merged decoders have (their layers in an If). */
export function asMergedDecoder(model: Uint8Array): Uint8Array {
  let done = false;
  return rewrite(model, (f) => {
    if (f.field !== 11 || done) return [f.raw];
    done = true;
    return [f.raw, new ProtoWriter().bytes(11, valueInfo('use_cache_branch', 9, [1])).finish()];
  });
}
