export { buildCommand, HelpRequested, type LoadOptions, loadConfig } from "./load.ts";
export { type Config, MODES, type Mode, OPTIONS, type OptionSpec, type OutputConfig } from "./options.ts";
