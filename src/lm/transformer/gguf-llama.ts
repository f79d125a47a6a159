/**
 * Llama-family weights from a GGUF file (llama.cpp's format), read through the Hugging Face names
 * so that the Llama loader serves both:
 *   token_embd -> model.embed_tokens, blk.L.attn_norm -> input_layernorm, blk.L.attn_{q,k,v,output}
 *   -> self_attn.{q,k,v,o}_proj, blk.L.ffn_norm -> post_attention_layernorm, blk.L.ffn_{gate,up,down}
 *   -> mlp.{gate,up,down}_proj, output_norm -> model.norm, output -> lm_head (absent: tied).
 * llama.cpp's converter permutes the rows of Q and K within each head so that rotary pairs are
 * adjacent (x_{2j}, x_{2j+1}); we undo it to get back the halves layout (x_j, x_{j + d/2}):
 *   hf[h d + i (d/2) + j] = gguf[h d + 2 j + i],  i in {0, 1}, j < d/2   (rows of d_model values)
 * The config comes from the metadata (llama.block_count, llama.embedding_length, ...). Tensors are
 * dequantised to float32 when read (src/io/gguf.ts).
 * Checked on the TinyLlama-1.1B GGUF (IQ2_XXS/Q2_K/Q4_K/Q5_K) against llama.cpp (node-llama-cpp 3.22.1,
 * tok branch's test/fixtures/tinyllama/llama-cpp.json): the 16-token greedy continuation of
 * "The capital of France is" is the same; the mean cross-entropy over [BOS] + 2000 Moby-Dick tokens in
 * one context is 3.7741 nats vs llama.cpp's 3.7893 (-0.40%).
 */
import { fileError } from '../../errors.js';
import { GgufFile } from '../../io/gguf.js';
import type { Kernels } from '../../engine/kernels.js';
import type { ConfigJson } from './config.js';
import type { TensorSource } from './hf-folder.js';

const LAYER = /^model\.layers\.(\d+)\.(.+)$/;
const LAYER_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};
const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/** gguf rows [heads * d, cols] with adjacent rotary pairs -> the halves layout. */
export function unpermuteRotary(w: Float32Array, heads: number, cols: number): Float32Array {
  const d = w.length / cols / heads;
  const half = d / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < half; j++) out.set(w.subarray((h * d + 2 * j + i) * cols, (h * d + 2 * j + i + 1) * cols), (h * d + i * half + j) * cols);
    }
  }
  return out;
}

export class GgufLlamaSource implements TensorSource {
  private constructor(
    readonly gguf: GgufFile,
    private readonly kernels: Kernels | undefined,
    private readonly heads: number,
    private readonly kvHeads: number,
  ) {}

  get file(): string {
    return this.gguf.path;
  }

  /** Opens the file and maps its metadata onto a Llama config.json. */
  static async open(path: string, kernels?: Kernels): Promise<{ source: GgufLlamaSource; config: ConfigJson }> {
    const g = await GgufFile.open(path);
    try {
      const arch = g.string('general.architecture');
      if (arch !== 'llama') throw fileError(path, `architecture '${arch}' is not supported from GGUF (only llama)`);
      const n = (key: string): number => g.number(`llama.${key}`);
      const opt = (key: string, fallback: number): number => (g.metadata.has(`llama.${key}`) ? n(key) : fallback);
      const scaling = g.metadata.has('llama.rope.scaling.type') ? g.string('llama.rope.scaling.type') : 'none';
      if (scaling !== 'none' && scaling !== 'linear') throw fileError(path, `rope scaling '${scaling}' is not supported`);
      if (g.tensors.has('rope_freqs.weight')) throw fileError(path, 'holds rope_freqs (Llama 3 rope scaling factors), which are not supported from GGUF yet');
      const embd = g.tensor('token_embd.weight').shape;
      const heads = n('attention.head_count');
      const dModel = n('embedding_length');
      const json: Record<string, unknown> = {
        model_type: 'llama',
        hidden_size: dModel,
        num_hidden_layers: n('block_count'),
        num_attention_heads: heads,
        num_key_value_heads: opt('attention.head_count_kv', heads),
        head_dim: opt('attention.key_length', dModel / heads),
        intermediate_size: n('feed_forward_length'),
        vocab_size: embd[0],
        max_position_embeddings: n('context_length'),
        rms_norm_eps: n('attention.layer_norm_rms_epsilon'),
        rope_theta: opt('rope.freq_base', 10000),
        rope_scaling: scaling === 'linear' ? { rope_type: 'linear', factor: n('rope.scaling.factor') } : null,
        tie_word_embeddings: !g.tensors.has('output.weight'),
      };
      const rotDim = opt('rope.dimension_count', Number(json['head_dim']));
      if (rotDim !== json['head_dim'])
        throw fileError(path, `llama.rope.dimension_count ${rotDim} differs from the head size (partial rotary is not supported)`);
      return { source: new GgufLlamaSource(g, kernels, heads, Number(json['num_key_value_heads'])), config: { file: path, json } };
    } catch (err) {
      await g.close();
      throw err;
    }
  }

  /** The GGUF name of a Hugging Face name (undefined: none). */
  private ggufName(name: string): string | undefined {
    const m = LAYER.exec(name);
    if (m) {
      const rest = LAYER_NAMES[m[2]!];
      return rest === undefined ? undefined : `blk.${m[1]}.${rest}`;
    }
    return GLOBAL_NAMES[name];
  }

  has(name: string): boolean {
    const g = this.ggufName(name);
    return g !== undefined && this.gguf.tensors.has(g);
  }

  shape(name: string): readonly number[] {
    const g = this.ggufName(name);
    if (g === undefined) throw fileError(this.file, `has no tensor for '${name}'`);
    return this.gguf.tensor(g).shape;
  }

  async read(name: string): Promise<Float32Array> {
    const g = this.ggufName(name);
    if (g === undefined) throw fileError(this.file, `has no tensor for '${name}'`);
    const data = await this.gguf.read(g, this.kernels);
    const cols = this.gguf.tensor(g).shape.at(-1) ?? 1;
    if (g.endsWith('attn_q.weight')) return unpermuteRotary(data, this.heads, cols);
    if (g.endsWith('attn_k.weight')) return unpermuteRotary(data, this.kvHeads, cols);
    return data;
  }

  close(): Promise<void> {
    return this.gguf.close();
  }
}
