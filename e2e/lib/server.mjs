// Starts the real reference server (built with `--profile server`) on a free loopback port,
// serving the demo (www/) and the package (pkg/), with a fresh SQLite database.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SERVER_BIN = join(ROOT, "target", "server", "clientdata-server");

// `extraArgs` are appended to the command line (e.g. `--allow-origin` for a cross-origin page).
export async function startServer({ listen = "127.0.0.1:0", database, quiet = true, extraArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "clientdata-e2e-"));
  const args = ["--listen", listen, "--database", database ?? join(dir, "demo.sqlite"), "--static", join(ROOT, "www"), "--static", `/pkg=${join(ROOT, "pkg")}`, ...extraArgs];
  const child = spawn(SERVER_BIN, args, { stdio: ["ignore", "pipe", quiet ? "ignore" : "inherit"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code} before listening: ${out}`)));
  });
  return {
    url,
    child,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.on("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
