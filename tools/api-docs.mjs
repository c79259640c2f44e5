// docs/API.md from the shipped types: typedoc (+ typedoc-plugin-markdown) over the packed
// package's .d.ts (the entry and each adapter), one Markdown page per module, joined in a fixed
// order. Every function and method must carry an `@example` (in Rust, the `/// @example` before
// its ```js block, which wasm-bindgen copies into the .d.ts): a missing one fails the build.
//   node tools/api-docs.mjs <pkg dir> <out file>
// scripts/api-docs.sh runs it (write, or --check: regenerate into a temp dir and diff).
import { Application, Converter, ReflectionKind } from "typedoc";
import { mkdtemp, readFile, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [pkgDir, outFile] = process.argv.slice(2).map((p) => resolve(p));
if (!pkgDir || !outFile) throw new Error("usage: node tools/api-docs.mjs <pkg dir> <out file>");

// [import name, its .d.ts in the package, its @module name (typedoc's page name)], in the
// order of the page.
const MODULES = [
  ["clientdata", "index.d.ts", "clientdata"],
  ["clientdata/swamp.js", "swamp.d.ts", "swamp"],
  ["clientdata/wasi-keyvalue.js", "wasi-keyvalue.d.ts", "wasi-keyvalue"],
  ["clientdata/lock-conformance.js", "lock-conformance.d.ts", "lock-conformance"],
];

const work = await mkdtemp(join(tmpdir(), "clientdata-api-"));
try {
  const app = await Application.bootstrapWithPlugins({
    entryPoints: MODULES.map(([, file]) => join(pkgDir, file)),
    plugin: ["typedoc-plugin-markdown"],
    out: work,
    readme: "none",
    router: "module",
    disableSources: true,
    hideGenerator: true,
    hideBreadcrumbs: true,
    hidePageHeader: true,
    excludeExternals: true,
    excludeNotDocumented: false,
    skipErrorChecking: true,
    compilerOptions: { skipLibCheck: true, strict: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext", lib: ["es2022", "dom"] },
  });
  // InitOutput lists the raw wasm exports (wasm-bindgen's, typed any): not API, and it would
  // change with every internal function. Removed before typedoc groups the members.
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const raw of context.project.getReflectionsByKind(ReflectionKind.Interface)) {
      if (raw.name === "InitOutput") context.project.removeReflection(raw);
    }
  });
  const project = await app.convert();
  if (!project) throw new Error("typedoc could not read the package's types");

  const missing = [];
  for (const reflection of project.getReflectionsByKind(ReflectionKind.Function | ReflectionKind.Method)) {
    // The raw wasm exports (generated; removed below), and methods of an inline object type,
    // whose owner's example shows them (e.g. `configSchema.safeParse`).
    if (reflection.parent?.name === "InitOutput" || reflection.parent?.kind === ReflectionKind.TypeLiteral) continue;
    const signatures = reflection.signatures ?? [];
    if (!signatures.some((s) => s.comment?.getTag("@example"))) missing.push(reflection.getFullName());
  }
  if (missing.length) throw new Error(`no @example for: ${missing.join(", ")}`);

  await app.generateOutputs(project);
  // One page: the modules in order, links between their pages made links within it.
  const anchor = (name) => `#${name.toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-")}`;
  const pages = [];
  for (const [name, , module] of MODULES) {
    const page = await readFile(join(work, `${module}.md`), "utf8");
    pages.push(
      page
        .replace(/^# .*$/m, `# ${name}`)
        .replace(/\]\(([\w-]+)\.md(#[^)]*)?\)/g, (_, target, hash) => `](${hash ?? anchor(MODULES.find(([, , m]) => m === target)?.[0] ?? target)})`)
        .trimEnd(),
    );
  }
  const header = [
    "# API reference",
    "",
    "Generated from the package's shipped `.d.ts` by `scripts/api-docs.sh` (typedoc with",
    "typedoc-plugin-markdown, pinned in tools/package.json); do not edit by hand: change the doc",
    "comments (`///` in src/api/, or js/*.d.ts) and regenerate. `scripts/test.sh` fails when this",
    "file is stale.",
    "",
    ...MODULES.map(([name]) => `- [${name}](${anchor(name)})`),
  ].join("\n");
  await writeFile(outFile, `${header}\n\n${pages.join("\n\n")}\n`);
  console.log(`${outFile}: ${MODULES.length} modules, every function and method with an example`);
} finally {
  await rm(work, { recursive: true, force: true });
}
