// The `orion` command line: parses the commands and flags, resolves the configuration, and loads each command's code lazily (bin/orion calls main).
export { main } from "./main.js";
export { loadConfig, defaultCacheDir, type Config, type ResolvedConfig, type LoadConfigInput } from "./config.js";
export { Reporter, type ReporterMode, type Output } from "./reporter.js";
