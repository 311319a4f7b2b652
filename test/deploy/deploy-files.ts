/**
 * Readers for the shipped deploy files (systemd unit and environment file, Dockerfile, compose file,
 * Kubernetes manifests) and the facts of the code they must agree with (option registry defaults, flags,
 * variables and config-file keys), shared by test/deploy/*.test.ts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { CONFIG_FILE_OPTION, OPTIONS, type OptionKey, type OptionSpec } from "../../src/config/options.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;
export const read = (rel: string): string => readFileSync(join(ROOT, rel), "utf8");
export const PACKAGE = JSON.parse(read("package.json")) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  files: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

export function option(key: OptionKey | "outputs"): OptionSpec {
  const spec = OPTIONS.find((o) => o.key === key);
  if (!spec) throw new Error(`no option ${key}`);
  return spec;
}

/** Every variable the collector reads (the option registry and --config's). */
export const KNOWN_ENV = new Set<string>([...OPTIONS.flatMap((o) => o.env), ...CONFIG_FILE_OPTION.env]);
/** Every config-file key (snake_case as documented). */
export const KNOWN_FILE_KEYS = new Set(OPTIONS.map((o) => o.fileKey));
/** Every long flag (and alias), with --config. */
export const KNOWN_FLAGS = new Set<string>([
  ...OPTIONS.flatMap((o) => (o.flag ? [o.flag, ...(o.aliases ?? [])] : [])),
  ...OPTIONS.filter((o) => o.boolean).map((o) => o.flag.replace(/^--/, "--no-")),
  CONFIG_FILE_OPTION.flag,
]);

/** The default UDP ports and the ops HTTP port, from the registry. */
export const DEFAULT_PORTS = {
  netflow: option("netflowPort").default as number,
  ipfix: option("ipfixPort").default as number,
  sflow: option("sflowPort").default as number,
  http: option("httpPort").default as number,
};

/** Programs that must never stand between a service manager and the collector. */
export const WRAPPERS = /(^|\/)(npx|npm|pnpm|yarn|sh|bash|dash)$/;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `clarion-${prefix}-`));
}

// ---- systemd ---------------------------------------------------------------------------------------

export interface UnitEntry {
  section: string;
  key: string;
  value: string;
}

/** systemd.syntax(7): sections, `Key=value`, comments (# ;), backslash continuation. */
export function parseUnit(text: string): UnitEntry[] {
  const out: UnitEntry[] = [];
  let section = "";
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`unit line without '=': ${line}`);
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

/** Values of one key in one section, in order. */
export function unitValues(unit: UnitEntry[], section: string, key: string): string[] {
  return unit.filter((e) => e.section === section && e.key === key).map((e) => e.value);
}

/** Splits a command line the way systemd and a shell's simple words do (double and single quotes). */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (const m of line.matchAll(re)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** `VAR=value` lines of an environment file; with `commented`, also the `#VAR=value` examples. */
export function parseEnvFile(text: string, commented = false): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = commented ? raw.replace(/^#\s?(?=[A-Z_][A-Z0-9_]*=)/, "") : raw;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!.replace(/^"(.*)"$/, "$1"));
  }
  return out;
}

// ---- Dockerfile ------------------------------------------------------------------------------------

export interface DockerInstruction {
  instruction: string;
  /** The arguments as written (continuations joined). */
  args: string;
  /** Exec (JSON) form arguments, when the instruction used it. */
  json?: string[];
  stage: number;
}

/** Dockerfile instructions: comments dropped, continuations joined, stages numbered from 0. */
export function parseDockerfile(text: string): DockerInstruction[] {
  const out: DockerInstruction[] = [];
  let stage = -1;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) {
      const next = lines[++i]!.trim();
      if (next.startsWith("#")) continue;
      line = `${line.slice(0, -1).trimEnd()} ${next}`;
    }
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const instruction = m[1]!.toUpperCase();
    const args = m[2]!;
    if (instruction === "FROM") stage++;
    const jsonText = instruction === "HEALTHCHECK" ? /\bCMD\s+(\[.*\])$/.exec(args)?.[1] : args;
    let json: string[] | undefined;
    if (jsonText?.startsWith("[")) json = JSON.parse(jsonText) as string[];
    out.push({ instruction, args, ...(json ? { json } : {}), stage });
  }
  return out;
}

/** ARG defaults declared before the first FROM, for `FROM ${X}`. */
export function dockerGlobalArgs(ins: DockerInstruction[]): Map<string, string> {
  const args = new Map<string, string>();
  for (const i of ins) {
    if (i.instruction === "FROM") break;
    if (i.instruction === "ARG") {
      const [k, v] = i.args.split("=");
      args.set(k!.trim(), (v ?? "").trim());
    }
  }
  return args;
}

/** ENV key=value pairs of one stage. */
export function dockerEnv(ins: DockerInstruction[], stage: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of ins) {
    if (i.stage !== stage || i.instruction !== "ENV") continue;
    for (const w of splitWords(i.args)) {
      const eq = w.indexOf("=");
      if (eq > 0) env.set(w.slice(0, eq), w.slice(eq + 1));
    }
  }
  return env;
}

// ---- YAML (compose, Kubernetes) -------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: free-form manifests, narrowed by the tests' assertions
export type Doc = any;

/** Every document of one YAML file; a syntax error fails. */
export function yamlDocs(rel: string): Doc[] {
  return parseAllDocuments(read(rel)).map((d) => {
    if (d.errors.length) throw new Error(`${rel}: ${d.errors.map((e) => e.message).join("; ")}`);
    return d.toJS();
  });
}

/** Every Kubernetes object under deploy/kubernetes/ (*.yaml except kustomization.yaml), with its file. */
export function kubeObjects(): { file: string; obj: Doc }[] {
  const dir = "deploy/kubernetes";
  const out: { file: string; obj: Doc }[] = [];
  for (const f of readdirSync(join(ROOT, dir)).sort()) {
    if (!f.endsWith(".yaml") || f === "kustomization.yaml") continue;
    for (const obj of yamlDocs(`${dir}/${f}`)) if (obj) out.push({ file: f, obj });
  }
  return out;
}

export const exists = (rel: string): boolean => existsSync(join(ROOT, rel));
