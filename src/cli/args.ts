/**
 * Command-line options, declared once per command and parsed by one function. A command declares
 * its positionals and options as a schema; `parseArgv` checks argv against it (unknown option,
 * missing value, bad number, missing required option, wrong number of positionals: one line naming
 * the flag) and returns a value whose type is inferred from the schema. `formatHelp` prints --help.
 *
 * Declaring a command (src/cli/commands/<name>.ts):
 *
 *   export const encodeCommand = defineCommand(          // from ./command.js
 *     {
 *       name: 'encode',
 *       summary: 'Encodes every row of an input file with a trained SAE.',
 *       usage: 'sae encode SAE_DIR --out FILE [options]',
 *       positionals: ['SAE_DIR'],     // exactly one; 'OUT?' is optional, 'FILES...' one or more (last)
 *       options: {
 *         out: { kind: 'string', help: 'output file', required: true },          // out: string
 *         topk: { kind: 'integer', help: 'keep the k largest', min: 1 },          // topk: number | undefined
 *         batchSize: { kind: 'integer', help: 'rows per call', default: 4096 },   // --batch-size: number
 *         format: { kind: 'string', help: 'npy | raw', choices: ['npy', 'raw'] },  // 'npy' | 'raw' | undefined
 *         ...INPUT_OPTIONS,           // a shared group, declared with defineOptions({...})
 *       },
 *     },
 *     async ({ positionals: [dir], out, topk, batchSize, format }, io) => { ...; return 0; },
 *   );
 *
 * The flag is the key in kebab case (batchSize -> --batch-size) unless `flag` says otherwise; a
 * boolean also takes --no-<flag>. `path` (dotted, 'data.batchSize') places a value in a nested
 * config object (`configObject`), for commands validated by a zod schema afterwards (train).
 * Shared option groups are plain objects spread into `options` (declare them with
 * `defineOptions` so their literal types survive).
 */
import { UserError } from '../errors.js';
import { isRecord } from '../io/json.js';

export type OptionKind = 'string' | 'number' | 'integer' | 'boolean' | 'list';

export interface Option {
  readonly kind: OptionKind;
  readonly help: string;
  /** A heading under which --help groups it. */
  readonly group?: string;
  readonly required?: boolean;
  /** The value when the flag is not given (then the value's type has no undefined). */
  readonly default?: string | number | boolean | readonly number[];
  /** The strings a 'string' option accepts. */
  readonly choices?: readonly string[];
  /** Smallest value a number, integer or each list element may take. */
  readonly min?: number;
  /** Without the dashes; default: the key in kebab case. */
  readonly flag?: string;
  /** Dotted path in the config object built by `configObject` (default: the key). */
  readonly path?: string;
}

export type Options = Readonly<Record<string, Option>>;

/** What a command declares: its positionals (names; 'X?' optional, 'X...' one or more, last) and options. */
export interface ArgsSpec {
  /** Names the command in errors: `sae <name>`. */
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly positionals?: readonly string[];
  readonly options: Options;
  /**
   * The option naming a JSON config file that can supply the rest: then `required` is checked by
   * the command's own schema after merging (train), not here.
   */
  readonly configOption?: string;
}

type KindValue<K extends OptionKind> = K extends 'string' ? string : K extends 'number' | 'integer' ? number : K extends 'boolean' ? boolean : number[];
type BaseValue<O extends Option> = O extends { readonly choices: readonly (infer C extends string)[] } ? C : KindValue<O['kind']>;
/** The parsed value of one option: undefined unless required or defaulted. */
export type OptionValue<O extends Option> = O extends { readonly required: true } | { readonly default: string | number | boolean | readonly number[] }
  ? BaseValue<O>
  : BaseValue<O> | undefined;
type PositionalValue<N extends string> = N extends `${string}...` ? string[] : N extends `${string}?` ? string | undefined : string;
export type PositionalValues<P extends readonly string[]> = { -readonly [I in keyof P]: PositionalValue<P[I]> };

/** argv parsed against a command's schema. */
export type Parsed<S extends ArgsSpec> = { readonly [K in keyof S['options']]: OptionValue<S['options'][K]> } & {
  readonly positionals: S['positionals'] extends readonly string[] ? PositionalValues<S['positionals']> : [];
  /** The flags given, by path ('data.batchSize' -> '--batch-size'): to name them in later errors. */
  readonly given: ReadonlyMap<string, string>;
};

/** Keeps a shared group of options' literal types (required, choices, defaults) for spreading. */
export function defineOptions<const O extends Options>(options: O): O {
  return options;
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function flagOf(key: string, o: Option): string {
  return o.flag ?? kebab(key);
}

function positiveWord(o: Option): string {
  if (o.min === 1 && o.kind === 'integer') return 'a positive integer';
  if (o.min === 0 && o.kind === 'integer') return 'a non-negative integer';
  return `${o.kind === 'integer' ? 'an integer' : 'a number'} >= ${o.min}`;
}

function convert(flag: string, o: Option, raw: string): string | number | boolean | number[] {
  const where = `--${flag}`;
  switch (o.kind) {
    case 'string':
      if (o.choices && !o.choices.includes(raw)) throw new UserError(`${where}: choose one of ${o.choices.join(', ')} (got '${raw}')`);
      return raw;
    case 'number':
    case 'integer': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UserError(`${where}: expected a number, got '${raw}'`);
      if (o.kind === 'integer' && !Number.isInteger(v)) throw new UserError(`${where}: expected an integer, got '${raw}'`);
      if (o.min !== undefined && v < o.min) throw new UserError(`${where} must be ${positiveWord(o)}`);
      return v;
    }
    case 'list':
      return raw.split(',').map((s) => {
        const v = Number(s);
        if (s.trim() === '' || !Number.isFinite(v)) throw new UserError(`${where}: expected numbers separated by commas, got '${raw}'`);
        if (o.min !== undefined && v < o.min) throw new UserError(`${where}: each value must be >= ${o.min}, got '${raw}'`);
        return v;
      });
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new UserError(`${where}: expected true or false, got '${raw}'`);
  }
}

function takePositionals(spec: ArgsSpec, given: readonly string[]): (string | string[] | undefined)[] {
  const names = spec.positionals ?? [];
  const out: (string | string[] | undefined)[] = [];
  let i = 0;
  for (const n of names) {
    if (n.endsWith('...')) {
      if (i >= given.length) throw new UserError(`missing ${n.slice(0, -3)}: usage: ${spec.usage}`);
      out.push(given.slice(i));
      i = given.length;
    } else if (n.endsWith('?')) out.push(given[i++]);
    else {
      if (i >= given.length) throw new UserError(`missing ${n}: usage: ${spec.usage}`);
      out.push(given[i++]);
    }
  }
  if (i < given.length) throw new UserError(`unexpected argument '${given[i]}' (see sae ${spec.name} --help)`);
  return out;
}

/**
 * Parses argv (after the command name) against the schema; undefined when --help or -h was given.
 * `as` names the command in errors when another command delegates to this one.
 */
export function parseArgv<const S extends ArgsSpec>(spec: S, argv: readonly string[], as?: string): Parsed<S> | undefined;
// The one place where the values' types are established: each was converted for its declared kind.
export function parseArgv(spec: ArgsSpec, argv: readonly string[], as: string = spec.name): Record<string, unknown> | undefined {
  const entries = Object.entries(spec.options);
  const byFlag = new Map(entries.map(([key, o]) => [flagOf(key, o), [key, o] as const]));
  const values: Record<string, unknown> = {};
  const rest: string[] = [];
  const given = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let found = byFlag.get(flag);
    if (!found && flag.startsWith('no-') && byFlag.get(flag.slice(3))?.[1].kind === 'boolean' && inline === undefined) {
      flag = flag.slice(3);
      found = byFlag.get(flag);
      inline = 'false';
    }
    if (!found) throw new UserError(`unknown option --${flag} for 'sae ${as}' (see sae ${as} --help)`);
    const [key, o] = found;
    let raw: string;
    if (inline !== undefined) raw = inline;
    else if (o.kind === 'boolean') raw = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UserError(`--${flag} needs a value`);
      raw = next;
      i++;
    }
    values[key] = convert(flag, o, raw);
    given.set(o.path ?? key, `--${flag}`);
  }
  if (help) return undefined;
  const positionals = takePositionals({ ...spec, name: as }, rest);
  for (const [key, o] of entries) {
    if (values[key] !== undefined) continue;
    if (o.default !== undefined) values[key] = typeof o.default === 'object' ? [...o.default] : o.default;
    else if (o.required && spec.configOption === undefined) throw new UserError(`--${flagOf(key, o)} is required: ${o.help}`);
  }
  return Object.assign(values, { positionals, given });
}

/** The given (not defaulted) values placed at their dotted paths: { data: { batchSize: 4096 } }. */
export function configObject(options: Options, values: Readonly<Record<string, unknown>>, given: ReadonlyMap<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, o] of Object.entries(options)) {
    const path = o.path ?? key;
    // several flags may share a path (each architecture's coefficient flag): take the one given
    if (!given.has(path) || values[key] === undefined) continue;
    const keys = path.split('.');
    let cur = out;
    for (const k of keys.slice(0, -1)) {
      const next = cur[k];
      if (isRecord(next)) cur = next;
      else cur = cur[k] = {};
    }
    cur[keys[keys.length - 1]!] = values[key];
  }
  return out;
}

/** Deep merge: `over` wins. */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isRecord(b) && isRecord(v) ? merge(b, v) : v;
  }
  return out;
}

export function formatHelp(spec: ArgsSpec): string {
  const lines = [`usage: ${spec.usage}`, '', spec.summary];
  const entries = Object.entries(spec.options).map(([key, o]) => [flagOf(key, o), o] as const);
  let group: string | undefined;
  const width = Math.min(34, Math.max(...entries.map(([f, o]) => f.length + (o.kind === 'boolean' ? 0 : 4 + o.kind.length)), 10) + 4);
  for (const [flag, o] of entries) {
    if (o.group !== group) {
      group = o.group;
      lines.push('', `${group ?? 'options'}:`);
    }
    const left = `  --${flag}${o.kind === 'boolean' ? '' : ` <${o.kind === 'list' ? 'a,b,...' : o.kind}>`}`;
    lines.push(`${left.padEnd(width)} ${o.help}${o.required ? ' (required)' : ''}`);
  }
  lines.push('', `  --help${''.padEnd(width - 8)} show this help`);
  return lines.join('\n');
}
