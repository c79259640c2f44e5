// Starts the real reference server (built with `--profile server`) on a free loopback port,
// serving the demo (www/) and the package (pkg/), with a fresh database: SQLite, or PostgreSQL
// when CLIENTDATA_E2E_BACKEND=postgres (a new database in the cluster at CLIENTDATA_TEST_PG,
// which scripts/test.sh starts with scripts/pg.sh).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SERVER_BIN = join(ROOT, "target", "server", "clientdata-server");

let databases = 0;

/** A new, empty PostgreSQL database in the test cluster; returns its URL. */
export function freshPostgres() {
  const admin = process.env.CLIENTDATA_TEST_PG;
  if (!admin) throw new Error("CLIENTDATA_TEST_PG is not set: no PostgreSQL cluster to use");
  const name = `e2e_${process.pid}_${databases++}`;
  execFileSync("psql", [admin, "-qc", `CREATE DATABASE ${name}`], { stdio: ["ignore", "ignore", "inherit"] });
  const [base, query] = admin.split("?");
  return `${base.slice(0, base.lastIndexOf("/"))}/${name}${query ? `?${query}` : ""}`;
}

/** A fresh database for a server: a file in `dir`, or a PostgreSQL database (see above). */
export function freshDatabase(dir, file = "demo.sqlite") {
  return process.env.CLIENTDATA_E2E_BACKEND === "postgres" ? freshPostgres() : join(dir, file);
}

// `extraArgs` are appended to the command line (e.g. `--allow-origin` for a cross-origin page);
// `env` is added to the server's environment (e.g. a test hook).
export async function startServer({ listen = "127.0.0.1:0", database, quiet = true, extraArgs = [], env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "clientdata-e2e-"));
  const args = ["--listen", listen, "--database", database ?? freshDatabase(dir), "--static", join(ROOT, "www"), "--static", `/pkg=${join(ROOT, "pkg")}`, ...extraArgs];
  const child = spawn(SERVER_BIN, args, { stdio: ["ignore", "pipe", quiet ? "ignore" : "inherit"], env: { ...process.env, ...env } });
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
      // A child killed by a signal has signalCode set and exitCode null: it has exited too.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.on("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
