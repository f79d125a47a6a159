/**
 * Command-line options: each command declares its options once (flag, where the value goes in the
 * config object, kind, help); this module parses argv against them, merges a JSON config file and
 * prints --help. Values are checked for their kind here and validated as a whole by the command's
 * schema afterwards.
 */
import { UserError } from '../errors.js';
import { isRecord } from '../io/json.js';

export type OptionKind = 'string' | 'number' | 'integer' | 'boolean' | 'list';

export interface OptionSpec {
  /** Without the dashes: 'batch-size'. */
  readonly flag: string;
  /** Dotted path in the config object: 'data.batchSize'. */
  readonly key: string;
  readonly kind: OptionKind;
  readonly help: string;
  /** A heading under which --help groups it. */
  readonly group?: string;
  readonly required?: boolean;
}

export interface ParsedArgs {
  /** The config object built from the flags (not yet validated). */
  readonly values: Record<string, unknown>;
  readonly positionals: string[];
  readonly help: boolean;
  /** Flags that were given, by config key (to name the flag in error messages). */
  readonly given: Map<string, string>;
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) cur = next as Record<string, unknown>;
    else cur = cur[k] = {};
  }
  cur[keys[keys.length - 1]!] = value;
}

function convert(spec: OptionSpec, raw: string): unknown {
  const where = `--${spec.flag}`;
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'number':
    case 'integer': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UserError(`${where}: expected a number, got '${raw}'`);
      if (spec.kind === 'integer' && !Number.isInteger(v)) throw new UserError(`${where}: expected an integer, got '${raw}'`);
      return v;
    }
    case 'list':
      return raw.split(',').map((s) => {
        const v = Number(s);
        if (s.trim() === '' || !Number.isFinite(v)) throw new UserError(`${where}: expected numbers separated by commas, got '${raw}'`);
        return v;
      });
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new UserError(`${where}: expected true or false, got '${raw}'`);
  }
}

/** Parses argv (after the command name) against the command's options. */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], command: string): ParsedArgs {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const given = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let spec = byFlag.get(flag);
    if (!spec && flag.startsWith('no-') && byFlag.get(flag.slice(3))?.kind === 'boolean' && inline === undefined) {
      flag = flag.slice(3);
      spec = byFlag.get(flag);
      inline = 'false';
    }
    if (!spec) throw new UserError(`unknown option --${flag} for 'sae ${command}' (see sae ${command} --help)`);
    let raw: string;
    if (inline !== undefined) raw = inline;
    else if (spec.kind === 'boolean') raw = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UserError(`--${flag} needs a value`);
      raw = next;
      i++;
    }
    setPath(values, spec.key, convert(spec, raw));
    given.set(spec.key, `--${flag}`);
  }
  return { values, positionals, help, given };
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

export function formatHelp(usage: string, summary: string, specs: readonly OptionSpec[]): string {
  const lines = [`usage: ${usage}`, '', summary];
  let group: string | undefined;
  const width = Math.min(34, Math.max(...specs.map((s) => s.flag.length + (s.kind === 'boolean' ? 0 : 4 + s.kind.length)), 10) + 4);
  for (const s of specs) {
    if (s.group !== group) {
      group = s.group;
      lines.push('', `${group ?? 'options'}:`);
    }
    const left = `  --${s.flag}${s.kind === 'boolean' ? '' : ` <${s.kind === 'list' ? 'a,b,...' : s.kind}>`}`;
    lines.push(`${left.padEnd(width)} ${s.help}${s.required ? ' (required)' : ''}`);
  }
  lines.push('', `  --help${''.padEnd(width - 8)} show this help`);
  return lines.join('\n');
}
