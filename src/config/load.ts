/**
 * Configuration loading: CLI flags (commander) > CLARION_COLLECTOR_* variables > config file (YAML or
 * JSON) > defaults, every value validated by the option table's zod schema. A bad value throws a
 * ConfigError naming the flag, variable or file key that carried it and the value itself.
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { dirname, extname, resolve, sep } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../core/errors.ts";
import { makeDirs, PRIVATE_DIR_MODE } from "../core/fs.ts";
import { clarionUriFromBackendUrl } from "../sinks/http.ts";
import { findSink } from "../sinks/index.ts";
import type { SinkDefinition, SinkGlobals } from "../sinks/types.ts";
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
  /**
   * Create the data directory and the outputs' directories and check they are writable (default true: the
   * collector). False for the commands that only read what a collector wrote (`top`, `tail`): they must not
   * create an empty ./data where they were run, nor need write access to read.
   */
  prepareDirs?: boolean;
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
  if (spec.key === "spoolMaxBytes") return "1G";
  if (spec.key === "retention") return "7d";
  if (spec.key === "agentBodyLimit") return "10M";
  if (spec.default === "") return "none";
  return String(spec.default);
}

/** The commander program: parsing and the generated --help. */
export function buildCommand(): Command {
  const cmd = new Command("clarion-collector")
    .description(
      "Clarion Collector: NetFlow v5/v9, IPFIX and sFlow v5 into SQLite, JSON lines, HTTP backends and Kafka",
    )
    .usage("[options]  |  decode|top|tail [options] [args]  |  help [decode|top|tail]")
    .version(packageVersion(), "-V, --version")
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride();
  cmd.option(
    `${CONFIG_FILE_OPTION.flag} ${CONFIG_FILE_OPTION.arg}`,
    `${CONFIG_FILE_OPTION.description} [env ${CONFIG_FILE_OPTION.env[0]}]`,
  );
  for (const spec of OPTIONS) {
    if (spec.flag === "") continue;
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
      "Commands (each has --help):",
      "  decode FILE...    decode pcap/pcapng captures or raw payloads offline, one JSON line per record",
      "  top [FILTER]      top talkers, ports, protocols... over the SQLite store (like nfdump -s)",
      "  tail [FILTER]     flows as the running collector receives them, one line each",
      "",
      "Precedence: command line > CLARION_COLLECTOR_* variables > --config file > defaults.",
      "Secrets (no flag, so they never show in a process list; never logged):",
      ...OPTIONS.filter((s) => s.flag === "").map(
        (s) => `  ${s.env.join(", ")} (file key ${s.fileKey}): ${s.description}`,
      ),
      "Modes: native runs the UDP collector (ops server on --http-port); agent runs only the edge-agent",
      "  relay on --agent-port (/api/edge/*, /health, /metrics; no UDP); both runs the two.",
      "Outputs: sqlite:PATH (SQLite table flows), jsonl:PATH (GoFlow2 JSON lines), jsonl:- (stdout),",
      "  clarion+http(s)://HOST[:PORT][/PREFIX] (POST PREFIX/api/netflow/netflow, one request per exporter),",
      "  flows-v1+http(s)://HOST[:PORT]/v1/ingest (telemetry API, 200 records per request, sent at least",
      "  every second, gzip above 50 KiB), kafka(s)://HOST[:PORT][,HOST[:PORT]...]/TOPIC (one message per",
      "  flow: GoFlow2's protobuf FlowMessage, or format json; keyed by exporter), parquet:DIR (columnar",
      "  archive, Parquet files rotated every 5 min).",
      "  Without --output the flows go to sqlite:<data-dir>/flows.db. When --backend-url (or",
      "  CLARION_COLLECTOR_BACKEND_URL, or backend_url in the file) is set, modes native and both also send",
      "  every flow to the Clarion backend (output clarion+<url>), as the Clarion collector does; then",
      "  without --output that is the only output. Unset, the backend URL (http://localhost:8000) is used only",
      "  by the agent relay.",
      "  HTTP and Kafka outputs and the agent relay write every batch to a disk spool under <data-dir>/spool",
      "  before sending it (write-ahead), then send the spool oldest first with retries, backoff and a circuit",
      "  breaker; what the destination rejects for good goes to <data-dir>/deadletter. Spool fsync policy: a",
      "  batch counts as accepted once written to the spool file (write(2)), so a crash of the process",
      "  (SIGKILL, OOM kill) loses nothing accepted; the file is fsync'ed every second, so a power loss or",
      "  kernel crash can lose up to the last second. Flows still in a batcher (up to --batch-interval)",
      "  or a sink queue are not yet accepted.",
      "Signals: SIGTERM/SIGINT flush every sink and exit 0; SIGHUP reopens output files.",
      "Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration.",
      "Offline decoding: clarion-collector decode [--raw] [--exporter IP] [--elements] [--element-ids] FILE...",
      "  prints the records of pcap/pcapng captures (or raw payloads) as JSON lines (see decode --help).",
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
    if (spec.flag === "") continue;
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

/** Makes `dir` (created 0700 when `private`: the data directory and what is under it) and checks it. */
function ensureWritableDir(dir: string, source: string, what: string, isPrivate: boolean): void {
  try {
    makeDirs(dir, isPrivate ? PRIVATE_DIR_MODE : undefined);
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(source, `${what} "${dir}" is not a writable directory (${code})`);
  }
}

/**
 * A comma-separated list of sink URIs. A part that does not start with `scheme:` (or starts with
 * `host:port`) belongs to the URI before it: Kafka broker lists, `kafka://k1:9092,k2:9092/flows`.
 */
function splitUris(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(",")) {
    const continues = !/^\s*[a-z][a-z0-9+.-]*:/i.test(part) || /^\s*[^:/]+:\d/.test(part);
    if (out.length > 0 && continues) out[out.length - 1] += `,${part}`;
    else out.push(part);
  }
  return out;
}

function outputsFrom(raw: Raw): { uris: OutputConfig[]; source: string } {
  const { value, source } = raw;
  const list: OutputConfig[] = [];
  const add = (v: unknown): void => {
    if (typeof v === "string") {
      for (const part of source.startsWith("-") ? [v] : splitUris(v)) {
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

/** Keys loadConfig puts into every output's options from the global settings; always accepted. */
const INJECTED_OPTION_KEYS = ["retryAttempts", "retryBackoff", "switchIdFromIp"] as const;

/** `token_file` → `tokenFile`: the name a sink reads for a config key given in snake_case. */
function camelKey(key: string): string {
  return key.replace(/[-_]+([a-z0-9])/gi, (_m, c: string) => c.toUpperCase());
}

/** The setting an output's option key came from, e.g. `outputs[1].tokenFile (in /etc/c.yaml)`. */
function optionSource(source: string, index: number, key: string): string {
  const sp = source.indexOf(" ");
  return sp < 0 ? `${source}[${index}].${key}` : `${source.slice(0, sp)}[${index}].${key}${source.slice(sp)}`;
}

/**
 * The output's options under the names its sink reads: each key given in snake_case (canonical, like every
 * other config key) or camelCase (deprecated alias). Throws ConfigError naming `outputs[i].<key>` for a
 * key the sink does not read, or one given twice under both spellings.
 */
function canonicalOptions(
  o: OutputConfig,
  def: SinkDefinition,
  index: number,
  source: string,
): Record<string, unknown> {
  const own = def.optionKeys;
  const known = new Set<string>([...own, ...INJECTED_OPTION_KEYS]);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(o.options)) {
    const name = known.has(key) ? key : camelKey(key);
    if (!known.has(name)) {
      const scheme = o.uri.slice(0, Math.max(0, o.uri.indexOf(":"))).toLowerCase();
      throw new ConfigError(
        optionSource(source, index, key),
        `unknown option for output ${show(o.uri)}; ${own.length ? `known: ${own.map(snakeKey).join(", ")}` : `${scheme} outputs take no options of their own`}`,
      );
    }
    if (name in out) {
      throw new ConfigError(
        optionSource(source, index, key),
        `option given twice (as ${snakeKey(name)} and ${name})`,
      );
    }
    out[name] = value;
  }
  return out;
}

/** `tokenFile` → `token_file`, the documented spelling. */
function snakeKey(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The sink definition for an output's URI; ConfigError naming the output for a missing or unknown scheme. */
function sinkFor(o: OutputConfig, source: string): SinkDefinition {
  if (o.uri.indexOf(":") <= 0) {
    throw new ConfigError(
      source,
      `invalid value ${show(o.uri)}: expected SCHEME:TARGET such as sqlite:flows.db or jsonl:-`,
    );
  }
  try {
    return findSink(o.uri);
  } catch (err) {
    throw new ConfigError(source, `invalid value ${show(o.uri)}: ${(err as Error).message}`);
  }
}

function validateOutputs(
  outputs: OutputConfig[],
  source: string,
  cwd: string,
  dataDir: string,
  prepareDirs: boolean,
): void {
  const seen = new Set<string>();
  for (const o of outputs) {
    if (seen.has(o.uri)) throw new ConfigError(source, `invalid value ${show(o.uri)}: output given twice`);
    seen.add(o.uri);
    const def = sinkFor(o, source);
    let path: string | null;
    try {
      def.createEncoder(o.uri, o.options);
      path = def.path?.(o.uri, dataDir, cwd) ?? null;
    } catch (err) {
      throw new ConfigError(source, `invalid value ${show(o.uri)}: ${(err as Error).message}`);
    }
    if (path !== null && prepareDirs) {
      const dir = dirname(path);
      const isPrivate = dir === dataDir || dir.startsWith(dataDir + sep);
      ensureWritableDir(dir, source, `output ${show(o.uri)}: directory`, isPrivate);
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

/** A secret from its literal setting, else from the file its companion setting names ("" for none). */
function secretFrom(
  out: Record<string, unknown>,
  sources: Record<string, string>,
  key: "agentToken" | "ingestToken",
  fileKey: "agentTokenFile" | "ingestTokenFile",
  cwd: string,
): string {
  const literal = String(out[key] ?? "");
  if (literal) return literal;
  const file = String(out[fileKey] ?? "");
  if (!file) return "";
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      sources[fileKey] ?? fileKey,
      `cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  const token = text.trim();
  if (!token || /\s/.test(token)) {
    throw new ConfigError(sources[fileKey] ?? fileKey, `"${path}" must hold one token without spaces`);
  }
  return token;
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
      sources[spec.key] = `default of ${spec.flag || spec.env[0]}`;
      continue;
    }
    const r = spec.schema.safeParse(raw.value);
    if (!r.success) {
      const shown = spec.secret ? "(hidden)" : show(raw.value);
      // a schema's own message marked as detail (which sampling map entry is bad and why) says more
      const detail = r.error.issues.find((i) => i.code === "custom" && i.params?.detail === true);
      const why = spec.secret ? undefined : detail?.message;
      throw new ConfigError(
        raw.source,
        `invalid value ${shown}: ${why === undefined ? "" : `${why}; `}expected ${spec.expect}`,
      );
    }
    out[spec.key] = r.data;
    sources[spec.key] = raw.source;
  }

  const dataDir = resolve(cwd, String(out.dataDir));
  const prepareDirs = opts.prepareDirs ?? true;
  if (prepareDirs) ensureWritableDir(dataDir, sources.dataDir ?? "--data-dir", "data directory", true);

  const outSpec = OPTIONS.find((s) => s.key === "outputs")!;
  const outRaw = cli.values.get("outputs") ?? fromEnv(outSpec, env) ?? file.get("outputs") ?? null;
  const { uris, source } = outRaw
    ? outputsFrom(outRaw)
    : {
        uris: [{ uri: `sqlite:${resolve(dataDir, "flows.db")}`, options: {} }],
        source: "default of --output",
      };
  const agentToken = secretFrom(out, sources, "agentToken", "agentTokenFile", cwd);
  const ingestToken = secretFrom(out, sources, "ingestToken", "ingestTokenFile", cwd);

  // --backend-url set explicitly: the flows go to the Clarion backend too (the only output without --output).
  let backendOutput = "";
  if (out.mode !== "agent" && !sources.backendUrl?.startsWith("default of")) {
    try {
      backendOutput = clarionUriFromBackendUrl(String(out.backendUrl));
    } catch (err) {
      throw new ConfigError(sources.backendUrl ?? "--backend-url", (err as Error).message);
    }
    if (!outRaw) uris.length = 0;
    if (!uris.some((o) => o.uri === backendOutput)) uris.push({ uri: backendOutput, options: {} });
  }

  const shared = {
    retryAttempts: out.retryAttempts,
    retryBackoff: out.retryBackoff,
    switchIdFromIp: out.switchIdFromIp,
  };
  const globals: SinkGlobals = {
    spoolMaxBytes: Number(out.spoolMaxBytes),
    collectorId: String(out.collectorId),
    ingestToken,
    retentionMs: Number(out.retention),
  };
  for (const [i, o] of uris.entries()) {
    const def = sinkFor(o, source);
    const own = canonicalOptions(o, def, i, source);
    const spool = def.spool ? { spoolMaxBytes: globals.spoolMaxBytes } : {};
    o.options = { ...shared, ...spool, ...def.globals?.(globals, own), ...own };
  }
  validateOutputs(uris, source, cwd, dataDir, prepareDirs);

  return {
    ...(out as Omit<Config, "outputs" | "dataDir" | "configFile" | "backendOutput">),
    agentToken,
    ingestToken,
    dataDir,
    outputs: uris,
    backendOutput,
    configFile,
  };
}
