/**
 * Configuration loading: CLI flags (commander) > CLARION_COLLECTOR_* variables > config file (YAML or
 * JSON) > defaults, every value validated by the option table's zod schema. A bad value throws a
 * ConfigError naming the flag, variable or file key that carried it and the value itself.
 */
import { accessSync, constants, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../core/errors.ts";
import { findSink } from "../sinks/index.ts";
import { parseJsonlUri } from "../sinks/jsonl.ts";
import { parseSqliteUri } from "../sinks/sqlite.ts";
import { CONFIG_FILE_OPTION, type Config, OPTIONS, type OptionSpec, type OutputConfig } from "./options.ts";

/** Thrown for --help and --version: the text goes to stdout and the process exits 0. */
export class HelpRequested extends Error {
  readonly text: string;
  constructor(text: string) {
    super("help requested");
    this.name = "HelpRequested";
    this.text = text;
  }
}

export interface LoadOptions {
  /** Directory relative paths resolve against; process.cwd() by default. */
  cwd?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

interface Raw {
  value: unknown;
  /** The flag, variable or file key the value came from, for error messages. */
  source: string;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function camel(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function describeDefault(spec: OptionSpec): string {
  if (spec.key === "outputs") return "sqlite:<data-dir>/flows.db";
  if (spec.key === "workers") return "one per core";
  return String(spec.default);
}

/** The commander program: parsing and the generated --help. */
export function buildCommand(): Command {
  const cmd = new Command("clarion-collector")
    .description(
      "Clarion Collector: NetFlow v5/v9, IPFIX and sFlow v5 into SQLite, JSON lines and HTTP backends",
    )
    .version(packageVersion(), "-V, --version")
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride();
  cmd.option(
    `${CONFIG_FILE_OPTION.flag} ${CONFIG_FILE_OPTION.arg}`,
    `${CONFIG_FILE_OPTION.description} [env ${CONFIG_FILE_OPTION.env[0]}]`,
  );
  for (const spec of OPTIONS) {
    const tail = `(default: ${describeDefault(spec)}) [env ${spec.env.join(", ")}; file key ${spec.fileKey}]`;
    if (spec.boolean) {
      cmd.addOption(new Option(`${spec.flag} [bool]`, `${spec.description} ${tail}`));
      cmd.addOption(new Option(`--no-${spec.flag.slice(2)}`, `turn ${spec.flag} off`));
    } else if (spec.key === "outputs") {
      cmd.addOption(
        new Option(`${spec.flag} ${spec.arg}`, `${spec.description} ${tail}`).argParser(
          (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
        ),
      );
    } else {
      cmd.addOption(new Option(`${spec.flag} ${spec.arg}`, `${spec.description} ${tail}`));
    }
    for (const alias of spec.aliases ?? []) {
      cmd.addOption(new Option(`${alias} ${spec.arg}`, `same as ${spec.flag}`).hideHelp());
    }
  }
  cmd.addHelpText(
    "after",
    [
      "",
      "Precedence: command line > CLARION_COLLECTOR_* variables > --config file > defaults.",
      "Outputs: sqlite:PATH (SQLite table flows), jsonl:PATH (GoFlow2 JSON lines), jsonl:- (stdout).",
      "Signals: SIGTERM/SIGINT flush every sink and exit 0; SIGHUP reopens output files.",
      "Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration.",
    ].join("\n"),
  );
  return cmd;
}

function parseCli(argv: readonly string[]): { values: Map<string, Raw>; configFile: Raw | null } {
  const cmd = buildCommand();
  let out = "";
  cmd.configureOutput({
    writeOut: (s) => {
      out += s;
    },
    writeErr: (s) => {
      out += s;
    },
  });
  try {
    cmd.parse([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version")
        throw new HelpRequested(out);
      const m = /'(-[^']+)'/.exec(err.message);
      throw new ConfigError(m?.[1] ?? "command line", err.message.replace(/^error: /, ""));
    }
    throw err;
  }
  const opts = cmd.opts<Record<string, unknown>>();
  const values = new Map<string, Raw>();
  for (const spec of OPTIONS) {
    const names = [spec.flag, ...(spec.aliases ?? [])];
    for (const flag of names) {
      const name = camel(flag);
      if (cmd.getOptionValueSource(name) === "cli" && opts[name] !== undefined) {
        values.set(spec.key, { value: opts[name], source: flag });
      }
    }
  }
  const cf = opts[camel(CONFIG_FILE_OPTION.flag)];
  return {
    values,
    configFile: typeof cf === "string" ? { value: cf, source: CONFIG_FILE_OPTION.flag } : null,
  };
}

function readConfigFile(path: string, source: string): Map<string, Raw> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      source,
      `cannot read config file "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  let doc: unknown;
  try {
    doc = extname(path).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(source, `cannot parse config file "${path}": ${(err as Error).message}`);
  }
  const values = new Map<string, Raw>();
  if (doc === null || doc === undefined) return values;
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(source, `config file "${path}" must hold a mapping of settings`);
  }
  const byFileKey = new Map(OPTIONS.map((s) => [s.fileKey, s]));
  byFileKey.set("output", OPTIONS.find((s) => s.key === "outputs")!);
  for (const [k, v] of Object.entries(doc)) {
    const spec = byFileKey.get(k.replace(/-/g, "_").toLowerCase());
    if (!spec) {
      throw new ConfigError(
        `${k} (in ${path})`,
        `unknown setting; known: ${OPTIONS.map((s) => s.fileKey).join(", ")}`,
      );
    }
    if (v === null || v === undefined) continue;
    values.set(spec.key, { value: v, source: `${k} (in ${path})` });
  }
  return values;
}

function fromEnv(spec: OptionSpec, env: Env): Raw | null {
  for (const name of spec.env) {
    const v = env[name];
    if (v !== undefined && v.trim() !== "") return { value: v, source: name };
  }
  return null;
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
}

function ensureWritableDir(dir: string, source: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(source, `${what} "${dir}" is not a writable directory (${code})`);
  }
}

function outputsFrom(raw: Raw): { uris: OutputConfig[]; source: string } {
  const { value, source } = raw;
  const list: OutputConfig[] = [];
  const add = (v: unknown): void => {
    if (typeof v === "string") {
      for (const part of source.startsWith("-") ? [v] : v.split(",")) {
        if (part.trim()) list.push({ uri: part.trim(), options: {} });
      }
    } else if (
      v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      typeof (v as { uri?: unknown }).uri === "string"
    ) {
      const { uri, ...options } = v as { uri: string } & Record<string, unknown>;
      list.push({ uri: uri.trim(), options });
    } else {
      throw new ConfigError(source, `invalid value ${show(v)}: expected a sink URI or { uri: ..., options }`);
    }
  };
  if (Array.isArray(value)) for (const v of value) add(v);
  else add(value);
  if (list.length === 0) throw new ConfigError(source, `invalid value ${show(value)}: no output given`);
  return { uris: list, source };
}

/** The file an output writes, for the writability check (the sinks' own path rules), or null. */
function outputPath(uri: string, cwd: string, dataDir: string): string | null {
  const scheme = uri.slice(0, uri.indexOf(":")).toLowerCase();
  if (scheme === "sqlite") {
    const p = parseSqliteUri(uri, dataDir);
    return p === ":memory:" ? null : resolve(cwd, p);
  }
  if (scheme === "jsonl") {
    const t = parseJsonlUri(uri);
    return t.kind === "file" ? resolve(cwd, t.path) : null;
  }
  return null;
}

function validateOutputs(outputs: OutputConfig[], source: string, cwd: string, dataDir: string): void {
  const seen = new Set<string>();
  for (const o of outputs) {
    if (o.uri.indexOf(":") <= 0) {
      throw new ConfigError(
        source,
        `invalid value ${show(o.uri)}: expected SCHEME:TARGET such as sqlite:flows.db or jsonl:-`,
      );
    }
    if (seen.has(o.uri)) throw new ConfigError(source, `invalid value ${show(o.uri)}: output given twice`);
    seen.add(o.uri);
    let path: string | null;
    try {
      const def = findSink(o.uri);
      def.createEncoder(o.uri, o.options);
      path = outputPath(o.uri, cwd, dataDir);
    } catch (err) {
      throw new ConfigError(source, `invalid value ${show(o.uri)}: ${(err as Error).message}`);
    }
    if (path !== null) {
      ensureWritableDir(dirname(path), source, `output ${show(o.uri)}: directory`);
      try {
        accessSync(path, constants.W_OK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
          throw new ConfigError(source, `invalid value ${show(o.uri)}: "${path}" is not writable`);
        }
      }
    }
  }
}

/**
 * Loads the configuration from the command line (`argv` without the node and script names), the
 * environment and the config file it names. Throws ConfigError (bad value; exit 2) or HelpRequested.
 * Side effect: creates the data directory (and output directories) to prove they are writable.
 */
export function loadConfig(argv: readonly string[], env: Env, opts: LoadOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  const cli = parseCli(argv);
  const cfgRaw = cli.configFile ?? fromEnv({ env: CONFIG_FILE_OPTION.env } as unknown as OptionSpec, env);
  const configFile = cfgRaw ? resolve(cwd, String(cfgRaw.value)) : "";
  const file = cfgRaw ? readConfigFile(configFile, cfgRaw.source) : new Map<string, Raw>();

  const out: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const spec of OPTIONS) {
    const raw = cli.values.get(spec.key) ?? fromEnv(spec, env) ?? file.get(spec.key) ?? null;
    if (spec.key === "outputs") continue;
    if (raw === null) {
      out[spec.key] = spec.default;
      sources[spec.key] = `default of ${spec.flag}`;
      continue;
    }
    const r = spec.schema.safeParse(raw.value);
    if (!r.success)
      throw new ConfigError(raw.source, `invalid value ${show(raw.value)}: expected ${spec.expect}`);
    out[spec.key] = r.data;
    sources[spec.key] = raw.source;
  }

  const dataDir = resolve(cwd, String(out.dataDir));
  ensureWritableDir(dataDir, sources.dataDir ?? "--data-dir", "data directory");

  const outSpec = OPTIONS.find((s) => s.key === "outputs")!;
  const outRaw = cli.values.get("outputs") ?? fromEnv(outSpec, env) ?? file.get("outputs") ?? null;
  const { uris, source } = outRaw
    ? outputsFrom(outRaw)
    : {
        uris: [{ uri: `sqlite:${resolve(dataDir, "flows.db")}`, options: {} }],
        source: "default of --output",
      };
  const shared = {
    retryAttempts: out.retryAttempts,
    retryBackoff: out.retryBackoff,
    switchIdFromIp: out.switchIdFromIp,
  };
  for (const o of uris) o.options = { ...shared, ...o.options };
  validateOutputs(uris, source, cwd, dataDir);

  return {
    ...(out as Omit<Config, "outputs" | "dataDir" | "configFile">),
    dataDir,
    outputs: uris,
    configFile,
  };
}
