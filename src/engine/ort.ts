/**
 * onnxruntime sessions for the dense matrix products. Inputs are read without a copy; every output
 * comes back as a fresh array (about 0.6 ms per MB), so graphs return only what the caller needs.
 * `session.run` blocks the event loop while it computes.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';

/** The part of onnxruntime's JS API we use: onnxruntime-node in Node, onnxruntime-web in a browser. */
export interface OrtApi {
  /** onnxruntime's session factory (onnxruntime-node's, or a test's stand-in). */
  readonly InferenceSession: {
    /** Compiles a serialised ONNX model into a session. */
    create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
  readonly Tensor: typeof Tensor;
}

/** Uint8Array is bool, Uint16Array is float16 (bit patterns). */
export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

/** A typed array and its dims, the engine's tensor. */
export interface HostTensor<T extends TensorData = TensorData> {
  readonly data: T;
  readonly dims: readonly number[];
}

/** A graph's inputs by name. */
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

  /** Releases the onnxruntime session. */
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
  if (d instanceof Uint16Array) return new ort.Tensor('float16', d, dims);
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

/** How a graph is compiled into an onnxruntime session. */
export interface CompileOptions {
  /**
   * Keep onnxruntime's CPU arena (default true): intermediates are reused between runs, and the
   * arena keeps its peak size for the session's life. false: intermediates are freed after each run
   * (for graphs with large intermediates, such as language models' logits, cached side by side).
   */
  readonly arena?: boolean;
  /** The folder that the model's external data locations are relative to (weights read from files). */
  readonly externalDataFolder?: string;
}

/** Compiles ONNX model bytes into a Graph with `threads` intra-op threads. */
export async function compileGraph(ort: OrtApi, model: Uint8Array, threads: number, options: CompileOptions = {}): Promise<Graph> {
  disableOrtTelemetry();
  const sessionOptions: InferenceSession.SessionOptions = {
    enableCpuMemArena: options.arena ?? true,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // A memory pattern plans one block for all intermediates: measured 30-60% more peak memory
    // for the training graphs, and no faster.
    enableMemPattern: false,
    ...(options.externalDataFolder === undefined ? {} : { extra: { session: { model_external_initializers_file_folder_path: options.externalDataFolder } } }),
  };
  const session = await ort.InferenceSession.create(model, sessionOptions);
  return new Graph(ort, session);
}
