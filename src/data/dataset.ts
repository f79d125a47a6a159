/**
 * The data interface. A Dataset is a random-access table of float32 rows; a BatchStream (see
 * batches.ts) turns it into shuffled, resumable batches with a held-out split.
 */

export interface Dataset {
  /** The file or folder it reads, for messages and metadata. */
  readonly name: string;
  /** Row width. */
  readonly dIn: number;
  readonly rows: number;
  /**
   * Copies rows [start, start + count) into out[0 .. count * dIn), as float32. A new read may start
   * before an earlier one has finished (the batch stream reads ahead), so reads must not share
   * scratch buffers. A range outside [0, rows) is a RangeError (a bug, not a user error).
   */
  read(start: number, count: number, out: Float32Array): Promise<void>;
  /** Closes its files; reads after close fail. */
  close(): Promise<void>;
  /** What the data is and how it was made (format, tensor, preprocessing), saved in cfg.json metadata. */
  readonly description: Readonly<Record<string, unknown>>;
}
