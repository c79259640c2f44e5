/**
 * A wasi:keyvalue-shaped store over clientdata (`clientdata/wasi-keyvalue.js`): buckets of byte
 * values, one per plugin namespace; every call is synchronous and `set` is durable on return.
 * @module wasi-keyvalue
 */
import type { ClientData } from "./clientdata.js";

/** Keys per `listKeys` page. */
export declare const LIST_PAGE: number;
/** One bucket: a plugin namespace holding byte values. */
export interface Bucket {
  /**
   * The bytes at `key`, or undefined.
   * @example
   * ```js
   * const bytes = bucket.get("k");
   * ```
   */
  get(key: string): Uint8Array | undefined;
  /**
   * Stores `value` at `key`, durable on return.
   * @example
   * ```js
   * bucket.set("k", new TextEncoder().encode("v"));
   * ```
   */
  set(key: string, value: Uint8Array): void;
  /**
   * Deletes `key` (nothing happens if it is absent).
   * @example
   * ```js
   * bucket.delete("k");
   * ```
   */
  delete(key: string): void;
  /**
   * Whether `key` holds a value.
   * @example
   * ```js
   * if (bucket.exists("k")) console.log("present");
   * ```
   */
  exists(key: string): boolean;
  /**
   * One page of keys (`LIST_PAGE` at most) after `cursor`; `cursor` in the answer is undefined
   * on the last page.
   * @example
   * ```js
   * let cursor;
   * do {
   *   const page = bucket.listKeys(cursor);
   *   console.log(page.keys);
   *   cursor = page.cursor;
   * } while (cursor !== undefined);
   * ```
   */
  listKeys(cursor?: string): { keys: string[]; cursor: string | undefined };
}
/**
 * The wasi:keyvalue `store` interface over an open ClientData.
 * @example
 * ```js
 * import { keyValueStore } from "clientdata/wasi-keyvalue.js";
 * const bucket = keyValueStore(cd).open("my-plugin");
 * bucket.set("k", new TextEncoder().encode("v"));
 * bucket.listKeys(); // { keys: ["k"], cursor: undefined }
 * ```
 */
export declare function keyValueStore(cd: ClientData): { open(identifier: string): Bucket };
