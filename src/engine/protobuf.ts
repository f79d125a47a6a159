/**
 * The one protobuf codec of the project (ONNX models are protobuf): a reader that splits a message
 * into its fields without copying, and a writer that keeps its output as a list of byte chunks
 * (weights are appended as views, never copied byte by byte) until `finish()` joins them once.
 * Wire format: a field is key = (number << 3 | wire type) as a varint, then a varint (wire 0),
 * 8 bytes (wire 1), a varint length and that many bytes (wire 2), or 4 bytes (wire 5).
 */

/** A message that is not valid protobuf. */
export class ProtoError extends Error {}

/** One field of a message: its number, wire type, and its bytes (payload for length-delimited fields). */
export interface Field {
  readonly field: number;
  readonly wire: number;
  /** Varint value (wire 0). */
  readonly value: bigint;
  /** The whole field as it was encoded (key included). */
  readonly raw: Uint8Array;
  /** Length-delimited payload (wire 2). */
  readonly payload: Uint8Array;
}

export function readVarint(buf: Uint8Array, at: number): [value: bigint, next: number] {
  let v = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length; i++) {
    const b = buf[i]!;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, i + 1];
    shift += 7n;
    if (shift > 63n) break;
  }
  throw new ProtoError('bad varint');
}

/** A field's key and where its payload lies: [field, wire, varint value, payload start, end of field]. */
export function fieldHead(buf: Uint8Array, at: number): { field: number; wire: number; value: bigint; start: number; end: number } {
  const [key, afterKey] = readVarint(buf, at);
  const field = Number(key >> 3n);
  const wire = Number(key & 7n);
  if (wire === 0) {
    const [value, end] = readVarint(buf, afterKey);
    return { field, wire, value, start: afterKey, end };
  }
  if (wire === 1) return { field, wire, value: 0n, start: afterKey, end: afterKey + 8 };
  if (wire === 5) return { field, wire, value: 0n, start: afterKey, end: afterKey + 4 };
  if (wire === 2) {
    const [len, afterLen] = readVarint(buf, afterKey);
    return { field, wire, value: 0n, start: afterLen, end: afterLen + Number(len) };
  }
  throw new ProtoError(`unsupported wire type ${wire}`);
}

/** The fields of a message, in order. */
export function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const h = fieldHead(buf, at);
    if (h.end > buf.length) throw new ProtoError('field runs past the end');
    out.push({
      field: h.field,
      wire: h.wire,
      value: h.value,
      raw: buf.subarray(at, h.end),
      payload: h.wire === 2 ? buf.subarray(h.start, h.end) : buf.subarray(0, 0),
    });
    at = h.end;
  }
  return out;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export const text = (b: Uint8Array): string => decoder.decode(b);

/** Varints of a repeated integer field, packed (wire 2) or not (wire 0), as signed numbers. */
export function varints(fs: readonly Field[], field: number): number[] {
  const out: number[] = [];
  for (const f of fs) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(Number(BigInt.asIntN(64, f.value)));
    else if (f.wire === 2)
      for (let at = 0; at < f.payload.length;) {
        const [v, next] = readVarint(f.payload, at);
        out.push(Number(BigInt.asIntN(64, v)));
        at = next;
      }
  }
  return out;
}

function varintBytes(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/** Builds a message as a list of chunks; payloads are kept as views until `finish()`. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  /** Bytes already encoded as fields (a field copied from another message). */
  raw(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.size += bytes.length;
    return this;
  }

  varint(value: number | bigint): this {
    return this.raw(varintBytes(value));
  }

  private key(field: number, wireType: 0 | 2 | 5): this {
    return this.varint(field * 8 + wireType);
  }

  int(field: number, value: number | bigint): this {
    return this.key(field, 0).varint(value);
  }

  float(field: number, value: number): this {
    return this.key(field, 5).raw(new Uint8Array(new Float32Array([value]).buffer));
  }

  bytes(field: number, data: Uint8Array): this {
    return this.key(field, 2).varint(data.length).raw(data);
  }

  string(field: number, s: string): this {
    return this.bytes(field, encoder.encode(s));
  }

  /** A nested message, its chunks taken over without joining them. */
  message(field: number, m: ProtoWriter): this {
    this.key(field, 2).varint(m.size);
    for (const c of m.chunks) this.raw(c);
    return this;
  }

  /** The chunks, for writing to a file without joining them. */
  parts(): readonly Uint8Array[] {
    return this.chunks;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
