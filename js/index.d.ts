// The package entry (index.js): the generated module's API; `init` and `initSync` also install
// the JS read path of `PluginStore.get`/`has`.
export * from "./clientdata.js";
export { default } from "./clientdata.js";
