/**
 * Every configuration setting, once: its flag, its variables, its config-file key, its default and its
 * validation (zod). `load.ts` layers the sources (CLI > env > file > default) over this table, and the CLI
 * help is generated from it, so a setting cannot exist in one place and not another.
 *
 * Names and defaults follow the Clarion Python collector (DESIGN §5): `CLARION_COLLECTOR_<NAME>` variables,
 * `--netflow-port 2055`, `--ipfix-port 4739`, `--sflow-port 6343`, `--agent-port 8080`, `--batch-size 1000`,
 * `--batch-interval 5.0`, BIND_HOST 0.0.0.0, SWITCH_ID_FROM_IP true, UDP_RCVBUF 32 MiB (issue 11: 0 keeps the system default),
 * RETRY_ATTEMPTS 3, RETRY_BACKOFF 1.5, backend http://localhost:8000.
 */
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { LOG_LEVELS, type LogLevel } from "../core/log.ts";
import { parseAllowEntry, splitAllowList } from "../inputs/allow.ts";

/** Default SO_RCVBUF request: a burst of thousands of datagrams fits (issue 11). */
export const DEFAULT_UDP_RCVBUF = 32 * 1024 * 1024;

import { TEMPLATE_SCOPES, type TemplateScope } from "../protocols/context.ts";
import { parseSamplingMap, type SamplingMapEntry } from "../protocols/state/sampling-map.ts";

export const MODES = ["native", "agent", "both"] as const;
export const TUNNEL_HEADERS = ["outer", "inner"] as const;
export type TunnelHeader = (typeof TUNNEL_HEADERS)[number];
export type Mode = (typeof MODES)[number];

/**
 * One configured output: its URI and sink options: the global retryAttempts, retryBackoff and
 * switchIdFromIp, overridden by the output's own keys in the config file (`outputs: [{ uri, token }]`).
 * A key the output's sink does not read is refused (ConfigError naming `outputs[i].<key>`).
 */
export interface OutputConfig {
  uri: string;
  options: Readonly<Record<string, unknown>>;
}

export interface Config {
  mode: Mode;
  backendUrl: string;
  netflowPort: number;
  ipfixPort: number;
  sflowPort: number;
  agentPort: number;
  httpPort: number;
  bindHost: string;
  logLevel: LogLevel;
  batchSize: number;
  /** Seconds. */
  batchInterval: number;
  switchIdFromIp: boolean;
  /** Requested SO_RCVBUF in bytes (default 32 MiB); 0 keeps the system default. */
  udpRcvbuf: number;
  retryAttempts: number;
  retryBackoff: number;
  workers: number;
  /** Decode threads per receive worker (0: each worker decodes in its own thread). */
  decodeThreads: number;
  /** Addresses or prefixes allowed to send flows (IPv4/IPv6); empty: every source. */
  allowExporters: string[];
  outputs: OutputConfig[];
  /** Absolute path. */
  dataDir: string;
  /** Batches each sink queue holds before it drops. */
  queueSize: number;
  /** Seconds a template lives when neither refreshed nor used. */
  templateTimeout: number;
  /** Template keying: session (RFC 7011), exporter (address only) or fallback (session, then other ports). */
  templateScope: TemplateScope;
  scaleBySampling: boolean;
  /** Static sampling rates by exporter prefix (+ domain), issue 18. */
  samplingMap: SamplingMapEntry[];
  /** Which header of a tunnelled sampled packet a flow describes (sFlow raw headers, IPFIX sections). */
  tunnelHeader: TunnelHeader;
  /** Largest disk spool of each HTTP output and of the agent relay, bytes. */
  spoolMaxBytes: number;
  /** Age after which stored flows are deleted (SQLite outputs), ms; 0 keeps everything. */
  retention: number;
  /** Largest edge-agent request body (raw and decoded), bytes. */
  agentBodyLimit: number;
  /** Bearer token edge agents must present; "" for none. Secret: never logged or shown. */
  agentToken: string;
  /** File holding the agent token (read at load time into agentToken); "" for none. */
  agentTokenFile: string;
  /** flows-v1 outputs' `collector_id`. */
  collectorId: string;
  /** flows-v1 outputs' bearer key; "" for none. Secret: never logged or shown. */
  ingestToken: string;
  /** File holding the flows-v1 bearer key; "" for none. */
  ingestTokenFile: string;
  /**
   * The Clarion backend output added because --backend-url was set explicitly (mode native/both), also
   * in `outputs`; "" when none. Its delivered flows are the JSON /metrics `total_sent`.
   */
  backendOutput: string;
  /** Absolute path of the config file read, or "" when none. */
  configFile: string;
}

/** Keys of Config set from the option table (outputs and configFile are handled apart). */
export type OptionKey = Exclude<keyof Config, "outputs" | "configFile" | "backendOutput">;

export interface OptionSpec {
  key: OptionKey | "outputs";
  /** Long flag without value placeholder, e.g. "--netflow-port"; "" when the setting has no flag (secrets:
   * a command line is visible to every user of the host). */
  flag: string;
  /** Value placeholder for the help, e.g. "<port>"; "" for a boolean switch. */
  arg: string;
  /** Extra flag names accepted (compatibility). */
  aliases?: readonly string[];
  /** Variables, highest priority first. */
  env: readonly string[];
  /** Key in the config file (snake_case; kebab-case is accepted too). */
  fileKey: string;
  description: string;
  /** What a valid value looks like, for error messages. */
  expect: string;
  schema: z.ZodType;
  /** Default, or a function of the settings resolved so far (data-dir dependent defaults). */
  default: unknown;
  /** Boolean: the flag also has a --no-<name> form. */
  boolean?: boolean;
  /** A secret: its value is never shown in messages. */
  secret?: boolean;
}

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Numbers from text: strict (no "", no "12abc", no hex), so `Number()` quirks cannot slip through. */
function numeric(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const s = v.trim();
  return FLOAT_RE.test(s) ? Number(s) : v;
}

function integer(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const s = v.trim();
  return INT_RE.test(s) ? Number(s) : v;
}

const SIZE_RE = /^(\d+)\s*([kmg]i?b?)?$/i;
/** Byte sizes: an integer, optionally with k/m/g (powers of 1024). */
function byteSize(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const m = SIZE_RE.exec(v.trim());
  if (!m) return v;
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").charAt(0).toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}

const BYTES_MAX = 2 ** 50;

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*([smhd])$/i;
const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Ages: a number with s, m, h or d ("7d", "12h", "1.5h"), or 0 (forever); to ms. */
function duration(v: unknown): unknown {
  if (typeof v === "number" && v === 0) return 0;
  if (typeof v !== "string") return v;
  const s = v.trim();
  if (s === "0") return 0;
  const m = DURATION_RE.exec(s);
  return m ? Math.round(Number(m[1]) * DURATION_MS[m[2]!.toLowerCase()]!) : v;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);
function boolean(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const s = v.trim().toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  return v;
}

const LEVEL_ALIASES: Record<string, LogLevel> = { warning: "warn", critical: "fatal" };
function logLevel(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const s = v.trim().toLowerCase();
  return LEVEL_ALIASES[s] ?? s;
}

const port = z.preprocess(integer, z.number().int().min(0).max(65535));
const PORT_EXPECT = "an integer port from 0 to 65535 (0 picks a free port)";

const host = z.string().refine((s) => isIP(s) !== 0 || /^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(s));

const url = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
});

export const OPTIONS: readonly OptionSpec[] = [
  {
    key: "mode",
    flag: "--mode",
    arg: "<mode>",
    env: ["CLARION_COLLECTOR_MODE"],
    fileKey: "mode",
    description: "native (UDP NetFlow/IPFIX/sFlow), agent (edge-agent HTTP relay) or both",
    expect: "native, agent or both",
    schema: z.preprocess((v) => (typeof v === "string" ? v.trim().toLowerCase() : v), z.enum(MODES)),
    default: "native",
  },
  {
    key: "backendUrl",
    flag: "--backend-url",
    arg: "<url>",
    env: ["CLARION_COLLECTOR_BACKEND_URL"],
    fileKey: "backend_url",
    description:
      "Clarion backend URL: the agent relay's destination; when set explicitly (flag, variable or file) mode native/both also POSTs flows to <url>/api/netflow/netflow (output clarion+<url>)",
    expect: "an http:// or https:// URL",
    schema: url,
    default: "http://localhost:8000",
  },
  {
    key: "netflowPort",
    flag: "--netflow-port",
    arg: "<port>",
    env: ["CLARION_COLLECTOR_NETFLOW_PORT"],
    fileKey: "netflow_port",
    description: "UDP port for NetFlow (every port accepts every protocol)",
    expect: PORT_EXPECT,
    schema: port,
    default: 2055,
  },
  {
    key: "ipfixPort",
    flag: "--ipfix-port",
    arg: "<port>",
    env: ["CLARION_COLLECTOR_IPFIX_PORT"],
    fileKey: "ipfix_port",
    description: "UDP port for IPFIX",
    expect: PORT_EXPECT,
    schema: port,
    default: 4739,
  },
  {
    key: "sflowPort",
    flag: "--sflow-port",
    arg: "<port>",
    env: ["CLARION_COLLECTOR_SFLOW_PORT"],
    fileKey: "sflow_port",
    description: "UDP port for sFlow",
    expect: PORT_EXPECT,
    schema: port,
    default: 6343,
  },
  {
    key: "agentPort",
    flag: "--agent-port",
    arg: "<port>",
    env: ["CLARION_COLLECTOR_AGENT_PORT"],
    fileKey: "agent_port",
    description: "HTTP port of the agent collector (mode agent/both)",
    expect: PORT_EXPECT,
    schema: port,
    default: 8080,
  },
  {
    key: "httpPort",
    flag: "--http-port",
    arg: "<port>",
    aliases: ["--native-http-port"],
    env: ["CLARION_COLLECTOR_HTTP_PORT", "CLARION_COLLECTOR_NATIVE_HTTP_PORT"],
    fileKey: "http_port",
    description: "ops HTTP port: /health, /metrics, /templates, /exporters",
    expect: PORT_EXPECT,
    schema: port,
    default: 8081,
  },
  {
    key: "bindHost",
    flag: "--bind-host",
    arg: "<address>",
    env: ["CLARION_COLLECTOR_BIND_HOST", "BIND_HOST"],
    fileKey: "bind_host",
    description: "address the UDP listeners and HTTP servers bind (:: listens on IPv4 and IPv6)",
    expect: "an IPv4/IPv6 address or a host name",
    schema: z.preprocess((v) => (typeof v === "string" ? v.trim() : v), host),
    default: "0.0.0.0",
  },
  {
    key: "logLevel",
    flag: "--log-level",
    arg: "<level>",
    env: ["CLARION_COLLECTOR_LOG_LEVEL"],
    fileKey: "log_level",
    description: "trace, debug, info, warn (warning), error, fatal or silent",
    expect: LOG_LEVELS.join(", "),
    schema: z.preprocess(logLevel, z.enum(LOG_LEVELS)),
    default: "info",
  },
  {
    key: "batchSize",
    flag: "--batch-size",
    arg: "<records>",
    env: ["CLARION_COLLECTOR_BATCH_SIZE"],
    fileKey: "batch_size",
    description: "records per batch (a batch is sent when full or when the interval passes)",
    expect: "an integer from 1 to 1000000",
    schema: z.preprocess(integer, z.number().int().min(1).max(1_000_000)),
    default: 1000,
  },
  {
    key: "batchInterval",
    flag: "--batch-interval",
    arg: "<seconds>",
    env: ["CLARION_COLLECTOR_BATCH_INTERVAL"],
    fileKey: "batch_interval",
    description: "seconds before a partial batch is sent",
    expect: "a number of seconds from 0.01 to 3600",
    schema: z.preprocess(numeric, z.number().min(0.01).max(3600)),
    default: 5.0,
  },
  {
    key: "switchIdFromIp",
    flag: "--switch-id-from-ip",
    arg: "",
    boolean: true,
    env: ["CLARION_COLLECTOR_SWITCH_ID_FROM_IP", "SWITCH_ID_FROM_IP"],
    fileKey: "switch_id_from_ip",
    description: "name each record's switch_id after its exporter IP",
    expect: "true or false",
    schema: z.preprocess(boolean, z.boolean()),
    default: true,
  },
  {
    key: "udpRcvbuf",
    flag: "--udp-rcvbuf",
    arg: "<bytes>",
    env: ["CLARION_COLLECTOR_UDP_RCVBUF", "UDP_RCVBUF"],
    fileKey: "udp_rcvbuf",
    description:
      "UDP receive buffer (SO_RCVBUF) per socket, e.g. 33554432 or 32M; 0 keeps the system default (a warning names the size the kernel granted when it is less)",
    expect: "a byte size such as 8388608, 8M or 0",
    schema: z.preprocess(
      byteSize,
      z
        .number()
        .int()
        .min(0)
        .max(2 ** 31 - 1),
    ),
    default: DEFAULT_UDP_RCVBUF,
  },
  {
    key: "retryAttempts",
    flag: "--retry-attempts",
    arg: "<n>",
    env: ["CLARION_COLLECTOR_RETRY_ATTEMPTS", "RETRY_ATTEMPTS"],
    fileKey: "retry_attempts",
    description: "delivery attempts of remote sinks",
    expect: "an integer from 1 to 100",
    schema: z.preprocess(integer, z.number().int().min(1).max(100)),
    default: 3,
  },
  {
    key: "retryBackoff",
    flag: "--retry-backoff",
    arg: "<factor>",
    env: ["CLARION_COLLECTOR_RETRY_BACKOFF", "RETRY_BACKOFF"],
    fileKey: "retry_backoff",
    description: "backoff factor between delivery attempts of remote sinks",
    expect: "a number from 1 to 60",
    schema: z.preprocess(numeric, z.number().min(1).max(60)),
    default: 1.5,
  },
  {
    key: "workers",
    flag: "--workers",
    arg: "<n>",
    env: ["CLARION_COLLECTOR_WORKERS"],
    fileKey: "workers",
    description: "receive worker threads, each with its own SO_REUSEPORT sockets",
    expect: "an integer from 1 to 256, or auto",
    schema: z.preprocess(
      (v) =>
        typeof v === "string" && v.trim().toLowerCase() === "auto" ? availableParallelism() : integer(v),
      z.number().int().min(1).max(256),
    ),
    default: availableParallelism(),
  },
  {
    key: "decodeThreads",
    flag: "--decode-threads",
    arg: "<n>",
    env: ["CLARION_COLLECTOR_DECODE_THREADS"],
    fileKey: "decode_threads",
    description:
      "decode threads per receive worker: the worker then only receives and hands each datagram to one of them, so one busy exporter can use several cores; 0 (default): each worker decodes itself",
    expect: "an integer from 0 to 64",
    schema: z.preprocess(integer, z.number().int().min(0).max(64)),
    default: 0,
  },
  {
    key: "allowExporters",
    flag: "--allow-exporters",
    arg: "<list>",
    env: ["CLARION_COLLECTOR_ALLOW_EXPORTERS"],
    fileKey: "allow_exporters",
    description:
      "addresses or prefixes allowed to send flows, comma-separated, IPv4 and IPv6 (e.g. 192.0.2.1,10.0.0.0/8,2001:db8::/32); datagrams from other sources are dropped before decoding and counted per source; default: every source",
    expect: "IP addresses or prefixes such as 192.0.2.1,10.0.0.0/8,2001:db8::/32",
    schema: z.preprocess(
      splitAllowList,
      z.array(z.string().refine((s) => parseAllowEntry(s) !== null)).max(100_000),
    ),
    default: [],
  },
  {
    key: "outputs",
    flag: "--output",
    arg: "<uri>",
    env: ["CLARION_COLLECTOR_OUTPUTS", "CLARION_COLLECTOR_OUTPUT"],
    fileKey: "outputs",
    description:
      "where records go, repeatable (variable: comma-separated): sqlite:PATH, jsonl:PATH, jsonl:- (stdout), clarion+http(s)://HOST[:PORT], flows-v1+http(s)://HOST[:PORT]/v1/ingest, parquet:DIR",
    expect: "a sink URI such as sqlite:./data/flows.db or jsonl:-",
    schema: z.unknown(),
    default: null,
  },
  {
    key: "dataDir",
    flag: "--data-dir",
    arg: "<dir>",
    env: ["CLARION_COLLECTOR_DATA_DIR"],
    fileKey: "data_dir",
    description: "directory for the SQLite database, the template state file and spools",
    expect: "a writable directory",
    schema: z.string().min(1),
    default: "./data",
  },
  {
    key: "queueSize",
    flag: "--queue-size",
    arg: "<batches>",
    env: ["CLARION_COLLECTOR_QUEUE_SIZE"],
    fileKey: "queue_size",
    description: "batches each sink queue holds; when full the oldest batch is dropped and counted",
    expect: "an integer from 1 to 100000",
    schema: z.preprocess(integer, z.number().int().min(1).max(100_000)),
    default: 64,
  },
  {
    key: "spoolMaxBytes",
    flag: "--spool-max-bytes",
    arg: "<bytes>",
    env: ["CLARION_COLLECTOR_SPOOL_MAX_BYTES"],
    fileKey: "spool_max_bytes",
    description:
      "disk spool bound of each HTTP output and of the agent relay (under <data-dir>/spool), e.g. 512M or 4G; when full the oldest data is dropped and counted",
    expect: "a byte size from 256K, such as 1073741824, 512M or 4G",
    schema: z.preprocess(
      byteSize,
      z
        .number()
        .int()
        .min(256 * 1024)
        .max(BYTES_MAX),
    ),
    default: 1024 ** 3,
  },
  {
    key: "retention",
    flag: "--retention",
    arg: "<age>",
    env: ["CLARION_COLLECTOR_RETENTION"],
    fileKey: "retention",
    description:
      "how long the SQLite outputs keep flows (by receive time), e.g. 7d, 12h, 30m; 0 keeps everything; an output's own retentionMs option wins",
    expect: "an age such as 7d, 12h, 30m or 90s, or 0 to keep everything",
    schema: z.preprocess(
      duration,
      z
        .number()
        .int()
        .min(0)
        .max(100 * 365 * 86_400_000),
    ),
    default: 7 * 86_400_000,
  },
  {
    key: "agentBodyLimit",
    flag: "--agent-body-limit",
    arg: "<bytes>",
    env: ["CLARION_COLLECTOR_AGENT_BODY_LIMIT"],
    fileKey: "agent_body_limit",
    description: "largest edge-agent request body, raw and after gunzip (413 above), e.g. 10M",
    expect: "a byte size from 1K to 1G, such as 10485760 or 10M",
    schema: z.preprocess(
      byteSize,
      z
        .number()
        .int()
        .min(1024)
        .max(1024 ** 3),
    ),
    default: 10 * 1024 ** 2,
  },
  {
    key: "agentToken",
    flag: "",
    arg: "<token>",
    env: ["CLARION_COLLECTOR_AGENT_TOKEN"],
    fileKey: "agent_token",
    description: "bearer token edge agents must send to /api/edge/* (401 otherwise); none by default",
    expect: "a token without spaces",
    schema: z.preprocess((v) => (typeof v === "string" ? v.trim() : v), z.string().regex(/^\S*$/)),
    default: "",
    secret: true,
  },
  {
    key: "agentTokenFile",
    flag: "--agent-token-file",
    arg: "<file>",
    env: ["CLARION_COLLECTOR_AGENT_TOKEN_FILE"],
    fileKey: "agent_token_file",
    description: "file holding the edge-agent bearer token (instead of CLARION_COLLECTOR_AGENT_TOKEN)",
    expect: "a readable file",
    schema: z.string(),
    default: "",
  },
  {
    key: "collectorId",
    flag: "--collector-id",
    arg: "<id>",
    env: ["CLARION_COLLECTOR_COLLECTOR_ID"],
    fileKey: "collector_id",
    description: "collector_id of flows-v1 outputs (an output's own collectorId wins)",
    expect: "a non-empty string",
    schema: z.preprocess((v) => (typeof v === "string" ? v.trim() : v), z.string().min(1).max(256)),
    default: "gw-local",
  },
  {
    key: "ingestToken",
    flag: "",
    arg: "<key>",
    env: ["CLARION_COLLECTOR_INGEST_TOKEN"],
    fileKey: "ingest_token",
    description: "bearer key of flows-v1 outputs (Authorization: Bearer); an output's own token wins",
    expect: "a key without spaces",
    schema: z.preprocess((v) => (typeof v === "string" ? v.trim() : v), z.string().regex(/^\S*$/)),
    default: "",
    secret: true,
  },
  {
    key: "ingestTokenFile",
    flag: "--ingest-token-file",
    arg: "<file>",
    env: ["CLARION_COLLECTOR_INGEST_TOKEN_FILE"],
    fileKey: "ingest_token_file",
    description: "file holding the flows-v1 bearer key (instead of CLARION_COLLECTOR_INGEST_TOKEN)",
    expect: "a readable file",
    schema: z.string(),
    default: "",
  },
  {
    key: "templateTimeout",
    flag: "--template-timeout",
    arg: "<seconds>",
    env: ["CLARION_COLLECTOR_TEMPLATE_TIMEOUT"],
    fileKey: "template_timeout",
    description: "seconds a NetFlow v9/IPFIX template lives when neither refreshed nor used",
    expect: "a number of seconds from 1 to 604800",
    schema: z.preprocess(numeric, z.number().min(1).max(604_800)),
    default: 1800,
  },
  {
    key: "templateScope",
    flag: "--template-scope",
    arg: "<scope>",
    env: ["CLARION_COLLECTOR_TEMPLATE_SCOPE"],
    fileKey: "template_scope",
    description:
      "template keying: session (exporter address + source port, RFC 7011), exporter (address only) or fallback (session, else another source port's template of the same address when the data fits)",
    expect: "session, exporter or fallback",
    schema: z.preprocess(
      (v) => (typeof v === "string" ? v.trim().toLowerCase() : v),
      z.enum(TEMPLATE_SCOPES),
    ),
    default: "fallback",
  },
  {
    key: "scaleBySampling",
    flag: "--scale-by-sampling",
    arg: "",
    boolean: true,
    env: ["CLARION_COLLECTOR_SCALE_BY_SAMPLING"],
    fileKey: "scale_by_sampling",
    description: "multiply bytes and packets by the exporter's sampling rate",
    expect: "true or false",
    schema: z.preprocess(boolean, z.boolean()),
    default: false,
  },
  {
    key: "samplingMap",
    flag: "--sampling-map",
    arg: "<entries>",
    env: ["CLARION_COLLECTOR_SAMPLING_MAP"],
    fileKey: "sampling_map",
    description:
      "static sampling rates for exporters that announce none, comma-separated PREFIX[@DOMAIN][%IF][#SAMPLER]=RATE[!] (! overrides an announced rate; the most specific entry applies), e.g. 192.0.2.0/24=1000,198.51.100.7@256=512!,192.0.2.9%3=64",
    expect:
      "entries PREFIX[@DOMAIN][%IF][#SAMPLER]=RATE[!] (in a file also a list of {exporter, domain, interface, sampler, rate, override})",
    schema: z.unknown().transform((v, ctx) => {
      const r = parseSamplingMap(v);
      if (typeof r === "string") {
        ctx.addIssue({ code: "custom", message: r, params: { detail: true } });
        return z.NEVER;
      }
      return r;
    }),
    default: [],
  },
  {
    key: "tunnelHeader",
    flag: "--tunnel-header",
    arg: "<outer|inner>",
    env: ["CLARION_COLLECTOR_TUNNEL_HEADER"],
    fileKey: "tunnel_header",
    description:
      "which header a tunnelled sampled packet's flow describes (sFlow raw headers, IPFIX packet sections): the outer one, or the inner one after decapsulation",
    expect: "outer or inner",
    schema: z.preprocess((v) => (typeof v === "string" ? v.trim().toLowerCase() : v), z.enum(TUNNEL_HEADERS)),
    default: "outer",
  },
];

export const CONFIG_FILE_OPTION = {
  flag: "--config",
  arg: "<file>",
  env: ["CLARION_COLLECTOR_CONFIG"],
  description: "YAML or JSON file with any of the settings (snake_case keys, e.g. netflow_port, outputs)",
} as const;
