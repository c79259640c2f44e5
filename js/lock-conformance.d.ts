import type { DistributedLock, LockOptions } from "./clientdata.js";

/** Runs the DistributedLock conformance checks against `createLock`; throws a `LockConformanceError` on the first failure, resolves to the names of the checks that passed. */
export declare function runLockConformance(
  createLock: (path: string, options: LockOptions) => Pick<DistributedLock, "acquire" | "release" | "withLock" | "inspect" | "forceRelease">,
  options?: { log?: (line: string) => void; prefix?: string },
): Promise<string[]>;
