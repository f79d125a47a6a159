/**
 * onnxruntime sessions for the dense matrix products. Inputs are read without a copy; every output
 * comes back as a fresh array (about 0.6 ms per MB), so graphs return only what the caller needs.
 * `session.run` blocks the event loop while it computes.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';

/** The part of onnxruntime's JS API we use: onnxruntime-node in Node, onnxruntime-web in a browser. */
export interface OrtApi {
  readonly InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  readonly Tensor: typeof Tensor;
}

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

/** A typed array and its dims, the engine's tensor. */
export interface HostTensor<T extends TensorData = TensorData> {
  readonly data: T;
  readonly dims: readonly number[];
}

export type Feeds = Record<string, HostTensor>;

/** A compiled graph: run it with host tensors, get its outputs back as typed arrays. */
export class Graph {
  constructor(
    private readonly ort: OrtApi,
    private readonly session: InferenceSession,
  ) {}

  /** Runs the graph; feeds it does not take are ignored, so callers can pass one record of everything. */
  async run(feeds: Feeds): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, Tensor> = {};
    for (const name of this.session.inputNames) {
      const t = feeds[name];
      if (!t) throw new Error(`graph input '${name}' was not fed`);
      ortFeeds[name] = toOrt(this.ort, t);
    }
    const out = await this.session.run(ortFeeds);
    const result: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(out)) result[name] = { data: t.data as TensorData, dims: t.dims };
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function toOrt(ort: OrtApi, t: HostTensor): Tensor {
  const dims = [...t.dims];
  const d = t.data;
  if (d instanceof Float32Array) return new ort.Tensor('float32', d, dims);
  if (d instanceof Int32Array) return new ort.Tensor('int32', d, dims);
  if (d instanceof BigInt64Array) return new ort.Tensor('int64', d, dims);
  return new ort.Tensor('bool', d, dims);
}

/**
 * onnxruntime's own telemetry (a Microsoft 1DS client inside libonnxruntime) writes
 * ~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db on the first session and, on runs over
 * about 10 s, looks up and posts to a Microsoft collector. It reads ORT_DISABLE_TELEMETRY when the first
 * session is created, so setting it here, before any session, turns it off (checked: no file written).
 * SAE_ORT_TELEMETRY=1 leaves onnxruntime's default.
 */
function disableOrtTelemetry(): void {
  if (process.env['SAE_ORT_TELEMETRY'] !== '1') process.env['ORT_DISABLE_TELEMETRY'] ||= '1';
}

export interface CompileOptions {
  /**
   * Keep onnxruntime's CPU arena (default true): intermediates are reused between runs, and the
   * arena keeps its peak size for the session's life. false: intermediates are freed after each run
   * (for graphs with large intermediates, such as language models' logits, cached side by side).
   */
  readonly arena?: boolean;
}

/** Compiles ONNX model bytes into a Graph with `threads` intra-op threads. */
export async function compileGraph(ort: OrtApi, model: Uint8Array, threads: number, options: CompileOptions = {}): Promise<Graph> {
  disableOrtTelemetry();
  const session = await ort.InferenceSession.create(model, {
    enableCpuMemArena: options.arena ?? true,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // A memory pattern plans one block for all intermediates: measured 30-60% more peak memory
    // for the training graphs, and no faster.
    enableMemPattern: false,
  });
  return new Graph(ort, session);
}
