/**
 * Conformance checks for the DistributedLock contract (`clientdata/lock-conformance.js`),
 * runnable against any implementation.
 * @module lock-conformance
 */
import type { DistributedLock, LockOptions } from "./clientdata.js";

/**
 * Runs the DistributedLock conformance checks against `createLock`; throws a
 * `LockConformanceError` on the first failure, resolves to the names of the checks that passed.
 * @example
 * ```js
 * import { createLock } from "clientdata";
 * import { runLockConformance } from "clientdata/lock-conformance.js";
 * const passed = await runLockConformance((path, opts) => createLock("mydb", path, opts), { log: console.log });
 * ```
 */
export declare function runLockConformance(
  createLock: (path: string, options: LockOptions) => Pick<DistributedLock, "acquire" | "release" | "withLock" | "inspect" | "forceRelease">,
  options?: { log?: (line: string) => void; prefix?: string },
): Promise<string[]>;
