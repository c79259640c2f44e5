import type { ClientData } from "./clientdata.js";

export declare const LIST_PAGE: number;
/** One bucket: a plugin namespace holding byte values. */
export interface Bucket {
  get(key: string): Uint8Array | undefined;
  set(key: string, value: Uint8Array): void;
  delete(key: string): void;
  exists(key: string): boolean;
  listKeys(cursor?: string): { keys: string[]; cursor: string | undefined };
}
/** The wasi:keyvalue `store` interface over an open ClientData. */
export declare function keyValueStore(cd: ClientData): { open(identifier: string): Bucket };
