/**
 * Types for the part of @huggingface/tokenizers that hf.ts uses. The package ships declarations, but
 * their relative imports have no file extension ("./core/Tokenizer"), which NodeNext resolution does
 * not follow: under this project's tsconfig the package's Tokenizer resolves to an error type (any).
 * This ambient module takes precedence over the package's own index.d.ts; the signatures follow the
 * package's types/core/Tokenizer.d.ts (version 0.2.0). Drop this file once the package's
 * declarations resolve under NodeNext.
 */
declare module '@huggingface/tokenizers' {
  /** A token added on top of the model's vocabulary (only the fields read here). */
  export interface AddedToken {
    readonly content: string;
    readonly id: number;
    readonly special: boolean;
  }

  /** The result of encoding one text. */
  export interface Encoding {
    ids: number[];
    tokens: string[];
    attention_mask: number[];
    token_type_ids?: number[];
  }

  export interface EncodeOptions {
    text_pair?: string | null;
    add_special_tokens?: boolean;
  }

  export interface DecodeOptions {
    skip_special_tokens?: boolean;
    clean_up_tokenization_spaces?: boolean | null;
  }

  /** A tokenizer built from a parsed tokenizer.json and tokenizer_config.json; throws on what it cannot build. */
  export class Tokenizer {
    constructor(tokenizer: object, config: object);
    encode(text: string, options?: EncodeOptions): Encoding;
    decode(token_ids: number[] | bigint[], options?: DecodeOptions): string;
    /** The id of a token string, or undefined when it is not in the vocabulary. */
    token_to_id(token: string): number | undefined;
    /** The token string of an id, or undefined when the id is not in the vocabulary. */
    id_to_token(id: number): string | undefined;
    /** The added tokens by id. */
    get_added_tokens_decoder(): Map<number, AddedToken>;
    /** The vocabulary, token string to id, with the added tokens when `with_added_tokens`. */
    get_vocab(with_added_tokens?: boolean): Map<string, number>;
  }
}
