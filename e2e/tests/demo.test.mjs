// The README's main job as a test: the demo's walkthrough (device A writes and syncs, device B
// syncs and reads it, B deletes, A sees the delete) against the real server serving the demo.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../lib/server.mjs";
import { walkthrough } from "../walkthrough.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test("the demo walkthrough: two devices converge through the server", async () => {
  const lines = [];
  await walkthrough(server.url, (line) => lines.push(line));
  assert.match(lines.at(-1), /converged/);
  assert.ok(lines.some((l) => l.startsWith("device B: get notes/greeting = {")), lines.join("\n"));
});
