/**
 * The package entry (`clientdata`): the generated module's API; `init` and `initSync` also
 * install the JS read path of `PluginStore.get`/`has`.
 * @module clientdata
 */
export * from "./clientdata.js";
export { default } from "./clientdata.js";
