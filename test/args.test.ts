import { describe, expect, expectTypeOf, it } from 'vitest';
import { configObject, defineOptions, formatHelp, parseArgv } from '../src/cli/args.js';

const shared = defineOptions({ seed: { kind: 'integer', help: 'seed', default: 0 } });
const spec = {
  name: 'toy',
  summary: 'A toy command.',
  usage: 'sae toy DIR [MORE...] --out FILE',
  positionals: ['DIR', 'MORE...'],
  options: {
    out: { kind: 'string', help: 'output file', required: true },
    topk: { kind: 'integer', help: 'k', min: 1 },
    mode: { kind: 'string', help: 'a | b', choices: ['a', 'b'] },
    meanRemoval: { kind: 'boolean', help: 'subtract the mean', default: true, group: 'data' },
    prefixes: { kind: 'list', help: 'widths', path: 'model.hyper.prefixes', group: 'data' },
    ...shared,
  },
} as const;

describe('parseArgv', () => {
  it('returns values typed by the schema', () => {
    const a = parseArgv(spec, ['d', 'e', 'f', '--out', 'o.npy', '--topk=3', '--no-mean-removal', '--mode', 'b', '--prefixes', '1,2'])!;
    expectTypeOf(a.out).toEqualTypeOf<string>();
    expectTypeOf(a.topk).toEqualTypeOf<number | undefined>();
    expectTypeOf(a.mode).toEqualTypeOf<'a' | 'b' | undefined>();
    expectTypeOf(a.meanRemoval).toEqualTypeOf<boolean>();
    expectTypeOf(a.seed).toEqualTypeOf<number>();
    expectTypeOf(a.positionals).toEqualTypeOf<[string, string[]]>();
    expect(a).toMatchObject({ out: 'o.npy', topk: 3, meanRemoval: false, mode: 'b', seed: 0, prefixes: [1, 2], positionals: ['d', ['e', 'f']] });
    expect(configObject(spec.options, a, a.given)).toEqual({ out: 'o.npy', topk: 3, meanRemoval: false, mode: 'b', model: { hyper: { prefixes: [1, 2] } } });
    expect(a.given.get('model.hyper.prefixes')).toBe('--prefixes');
  });

  it('places flags that share a path by the one given', () => {
    const shared = {
      name: 's',
      summary: '',
      usage: 'sae s',
      options: { beta: { kind: 'number', help: '', path: 'model.coefficient' }, l1: { kind: 'number', help: '', path: 'model.coefficient' } },
    } as const;
    for (const flag of ['--beta', '--l1']) {
      const a = parseArgv(shared, [flag, '2'])!;
      expect(configObject(shared.options, a, a.given)).toEqual({ model: { coefficient: 2 } });
      expect(a.given.get('model.coefficient')).toBe(flag);
    }
  });

  it('returns undefined for --help', () => {
    expect(parseArgv(spec, ['--help'])).toBeUndefined();
    expect(formatHelp(spec)).toMatch(/^usage: sae toy DIR/);
    expect(formatHelp(spec)).toMatch(/--out <string> +output file \(required\)/);
    expect(formatHelp(spec)).toMatch(/\ndata:\n {2}--mean-removal/);
  });

  it.each([
    [['d', '--out', 'o', '--bogus'], "unknown option --bogus for 'sae toy' (see sae toy --help)"],
    [['d', 'e', '--out'], '--out needs a value'],
    [['d', 'e', '--out', 'o', '--topk', 'x'], "--topk: expected a number, got 'x'"],
    [['d', 'e', '--out', 'o', '--topk', '1.5'], "--topk: expected an integer, got '1.5'"],
    [['d', 'e', '--out', 'o', '--topk', '0'], '--topk must be a positive integer'],
    [['d', 'e', '--out', 'o', '--mode', 'c'], "--mode: choose one of a, b (got 'c')"],
    [['d', 'e'], '--out is required: output file'],
    [['d', '--out', 'o'], 'missing MORE: usage: sae toy DIR [MORE...] --out FILE'],
    [['--out', 'o'], 'missing DIR: usage: sae toy DIR [MORE...] --out FILE'],
  ])('%j fails with one line', (argv, message) => {
    expect(() => parseArgv(spec, argv)).toThrow(message);
  });

  it('rejects extra positionals, naming the first', () => {
    const one = { name: 'one', summary: '', usage: 'sae one DIR', positionals: ['DIR', 'OUT?'], options: {} } as const;
    expect(parseArgv(one, ['a'])!.positionals).toEqual(['a', undefined]);
    expect(() => parseArgv(one, ['a', 'b', 'c'])).toThrow("unexpected argument 'c' (see sae one --help)");
  });
});
