/**
 * Mutations of files, as fast-check arbitraries: byte-level changes (truncations, byte edits biased
 * to the header, numbers spliced into the header, appended bytes) for binary formats, and structural
 * changes (a value replaced or deleted somewhere in the tree) for JSON formats.
 */
import fc from 'fast-check';

/** Bytes that steer JSON and header parsers into their rarer paths. */
// eslint-disable-next-line @typescript-eslint/no-misused-spread -- ASCII only: one character, one byte
const INTERESTING = [...'{}[]()"\':,-0123456789eE.L \n\\'].map((c) => c.charCodeAt(0)).concat([0, 0x7f, 0x80, 0xc0, 0xff]);

/** Texts spliced into a header in place of a number or a name. */
const SPLICES = ['0', '-1', '1e308', '4294967296', '9007199254740993', '99999999999999999999', '[]', '{}', 'null', '"x"', '"../x"', '1.5', 'NaN'];

/** Values a JSON field is set to. */
const ODD_VALUES: readonly unknown[] = [
  -1,
  0,
  1.5,
  1e308,
  2 ** 53,
  2 ** 31,
  '',
  'x',
  '../../elsewhere/shard.safetensors',
  null,
  true,
  [],
  {},
  [0, 0],
  '\u202e',
];

export type Mutation =
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'bytes'; readonly edits: readonly (readonly [number, number])[] }
  | { readonly kind: 'splice'; readonly at: number; readonly length: number; readonly text: string }
  | { readonly kind: 'append'; readonly bytes: Uint8Array }
  | { readonly kind: 'set'; readonly path: readonly number[]; readonly value: unknown }
  | { readonly kind: 'delete'; readonly path: readonly number[] };

const byte = fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 }));

/** Byte-level mutations of a file of `length` bytes whose first `header` bytes are its header. */
export function byteMutation(length: number, header: number): fc.Arbitrary<Mutation> {
  const hot = Math.max(1, Math.min(header, length));
  const at = (max: number): fc.Arbitrary<number> => fc.nat({ max: Math.max(0, max - 1) });
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: at(length) }),
    fc.record({ kind: fc.constant('bytes' as const), edits: fc.array(fc.tuple(at(hot), byte), { minLength: 1, maxLength: 6 }) }),
    fc.record({ kind: fc.constant('bytes' as const), edits: fc.array(fc.tuple(at(length), byte), { minLength: 1, maxLength: 6 }) }),
    fc.record({ kind: fc.constant('splice' as const), at: at(hot), length: fc.nat({ max: 12 }), text: fc.constantFrom(...SPLICES) }),
    fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  );
}

/** Structural mutations of a JSON document, and byte-level ones of its text. */
export function jsonMutation(length: number): fc.Arbitrary<Mutation> {
  const path = fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 4 });
  const value = fc.oneof(fc.constantFrom(...ODD_VALUES), fc.jsonValue({ maxDepth: 2 }));
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), path, value }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), path }) },
    { weight: 2, arbitrary: byteMutation(length, length) },
  );
}

/** Applies a mutation to a file's bytes. */
export function applyMutation(src: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'truncate':
      return src.slice(0, m.at);
    case 'bytes': {
      const out = src.slice();
      for (const [at, b] of m.edits) if (at < out.length) out[at] = b;
      return out;
    }
    case 'splice': {
      const text = new TextEncoder().encode(m.text);
      return Uint8Array.from([...src.subarray(0, m.at), ...text, ...src.subarray(Math.min(src.length, m.at + m.length))]);
    }
    case 'append':
      return Uint8Array.from([...src, ...m.bytes]);
    case 'set':
    case 'delete': {
      const doc: unknown = JSON.parse(new TextDecoder().decode(src));
      const changed = m.kind === 'set' ? setAt(doc, m.path, m.value) : setAt(doc, m.path, DELETE);
      return new TextEncoder().encode(JSON.stringify(changed));
    }
  }
}

const DELETE = Symbol('delete');

/** doc with the node that `path` picks (each step an index, modulo the keys or elements there) replaced or deleted. */
function setAt(doc: unknown, path: readonly number[], value: unknown): unknown {
  const [step, ...rest] = path;
  if (step === undefined || typeof doc !== 'object' || doc === null) return value === DELETE ? undefined : value;
  if (Array.isArray(doc)) {
    if (doc.length === 0) return value === DELETE ? doc : [value];
    const i = step % doc.length;
    const copy: unknown[] = [...(doc as readonly unknown[])];
    if (rest.length === 0 && value === DELETE) copy.splice(i, 1);
    else copy[i] = setAt(copy[i], rest, value);
    return copy;
  }
  const entries = Object.entries(doc as Record<string, unknown>);
  if (entries.length === 0) return value === DELETE ? doc : { x: value };
  const [key, child] = entries[step % entries.length]!;
  if (rest.length === 0 && value === DELETE) return Object.fromEntries(entries.filter(([k]) => k !== key));
  return { ...Object.fromEntries(entries), [key]: setAt(child, rest, value) };
}
