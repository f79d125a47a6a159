/**
 * sae generate MODEL --prompt TEXT: the prompt's token ids and tokens and the model's greedy
 * continuation, to check that a model loads right (compare with llama.cpp or transformers).
 * With --json: {ids, tokens, continuation, continuation_ids}.
 */
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { closeLanguageModel, openLanguageModel, prefixOf, tokenize } from '../../lm/model.js';
import { generateTokens } from '../../lm/transformer-splice.js';
import { defineCommand, print } from '../command.js';
import { MODEL_HELP } from './harvest.js';

export const generateCommand = defineCommand(
  {
    name: 'generate',
    summary: `Prints a prompt's token ids and tokens and the model's greedy continuation (a check that a model loads right). MODEL: ${MODEL_HELP}.`,
    usage: 'sae generate MODEL --prompt TEXT [--max-new-tokens N] [--json]',
    positionals: ['MODEL'],
    options: {
      prompt: { kind: 'string', help: 'the text to continue', required: true },
      maxNewTokens: { kind: 'integer', help: 'tokens to generate (default 16; stops early at end of text)', default: 16, min: 0 },
      json: { kind: 'boolean', help: 'print {ids, tokens, continuation, continuation_ids} as JSON', default: false },
    },
  },
  async ({ positionals: [spec], prompt, maxNewTokens, json }, io) => {
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const m = await openLanguageModel(spec, engine);
    try {
      if (m.kind === 'encoder') throw new UserError(`${spec} is a sentence encoder: it does not generate text`);
      const ids = [...prefixOf(m), ...tokenize(m, prompt)];
      const tokenizer = m.kind === 'causal' ? m.lm.tokenizer : m.tf.tokenizer;
      const next = m.kind === 'causal' ? await m.lm.generate(ids, maxNewTokens) : await generateTokens(m.tf.model, ids, maxNewTokens, { eos: tokenizer.eosId });
      const tokens = ids.map((id) => tokenizer.token(id));
      const continuation = tokenizer.decode(next);
      if (json) print(io.stdout, JSON.stringify({ ids, tokens, continuation, continuation_ids: next }));
      else print(io.stdout, [`ids:          ${JSON.stringify(ids)}`, `tokens:       ${JSON.stringify(tokens)}`, `continuation: ${continuation}`].join('\n'));
    } finally {
      closeLanguageModel(m);
      await engine.release();
    }
    return 0;
  },
);
