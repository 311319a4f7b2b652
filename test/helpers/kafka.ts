/**
 * Kafka test helpers: librdkafka's mock cluster driven on command (test/helpers/kafka-mock.c, built here
 * with cc against Debian's librdkafka-dev), a consumer (kcat) that reads a topic back byte for byte, and an
 * independent protobuf decoder driven by the shipped .proto files (proto/goflow2/*.proto), so the tests
 * check the encoder against the schema text, not against its own tables.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext } from "node:test";
import { findTool, requireTool } from "./tools.ts";

const SOURCE = new URL("./kafka-mock.c", import.meta.url).pathname;
const HEADER = "/usr/include/librdkafka/rdkafka_mock.h";
let built: string | null = null;
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Builds the mock helper once per test process; null (test skipped) outside CI when tools are missing. */
export function buildMock(t: TestContext): string | null {
  if (built) return built;
  const cc = requireTool(t, "cc");
  if (!cc || !requireTool(t, "kcat")) return null;
  if (!existsSync(HEADER)) {
    const msg = "librdkafka-dev is not installed (Debian package; .ci/run installs it)";
    if (process.env.CI) throw new Error(`${msg}: required in CI`);
    t.skip(msg);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "kafka-mock-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "kafka-mock");
  const r = spawnSync(cc, ["-O1", "-o", out, SOURCE, "-lrdkafka"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot build the Kafka mock helper: ${r.stderr}`);
  built = out;
  return out;
}

/** A running mock cluster. */
export class MockCluster {
  readonly bootstrap: string;
  readonly #proc: ChildProcessWithoutNullStreams;
  #lines: string[] = [];
  #waiters: ((line: string) => void)[] = [];
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(proc: ChildProcessWithoutNullStreams, bootstrap: string, rest: string[]) {
    this.#proc = proc;
    this.bootstrap = bootstrap;
    this.#lines = rest;
  }

  static async start(binary: string, brokers = 3): Promise<MockCluster> {
    const proc = spawn(binary, [String(brokers)], { stdio: ["pipe", "pipe", "pipe"] });
    cleanups.push(() => proc.kill("SIGKILL"));
    let buf = "";
    const lines: string[] = [];
    let onLine: ((l: string) => void) | null = null;
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (onLine) onLine(line);
        else lines.push(line);
      }
    });
    const first = await new Promise<string>((resolve, reject) => {
      onLine = resolve;
      proc.once("exit", (code) => reject(new Error(`kafka-mock exited ${code}`)));
    });
    if (!first.startsWith("BOOTSTRAP ")) throw new Error(`kafka-mock: unexpected ${first}`);
    const c = new MockCluster(proc, first.slice("BOOTSTRAP ".length).trim(), lines);
    onLine = (l) => c.#line(l);
    return c;
  }

  #line(l: string): void {
    const w = this.#waiters.shift();
    if (w) w(l);
    else this.#lines.push(l);
  }

  /** Runs one command (see kafka-mock.c); rejects on "error ...". */
  command(line: string): Promise<void> {
    const run = async (): Promise<void> => {
      const answer = new Promise<string>((resolve) => {
        const queued = this.#lines.shift();
        if (queued !== undefined) resolve(queued);
        else this.#waiters.push(resolve);
      });
      this.#proc.stdin.write(`${line}\n`);
      const a = await answer;
      if (a !== "ok") throw new Error(`kafka-mock ${line}: ${a}`);
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => {});
    return p;
  }

  async close(): Promise<void> {
    if (this.#proc.exitCode !== null) return;
    const exited = new Promise((r) => this.#proc.once("exit", r));
    this.#proc.stdin.end("quit\n");
    await exited;
  }
}

export interface ConsumedMessage {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer;
}

/** Every message of a topic, read with kcat from the beginning to the current end of each partition. */
export function consumeAll(bootstrap: string, topic: string): ConsumedMessage[] {
  const kcat = findTool("kcat");
  if (!kcat) throw new Error("kcat missing");
  const r = spawnSync(
    kcat,
    ["-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %K %S\n%k%s"],
    { maxBuffer: 1 << 30, timeout: 60_000 },
  );
  if (r.status !== 0) throw new Error(`kcat failed (${r.status}): ${r.stderr.toString()}`);
  const b = r.stdout;
  const out: ConsumedMessage[] = [];
  let p = 0;
  while (p < b.length) {
    const nl = b.indexOf(10, p);
    if (nl < 0) throw new Error("kcat output: truncated header");
    const [part, off, kl, vl] = b.subarray(p, nl).toString("latin1").split(" ").map(Number);
    p = nl + 1;
    const keyLen = kl! < 0 ? 0 : kl!;
    const key = kl! < 0 ? null : Buffer.from(b.subarray(p, p + keyLen));
    p += keyLen;
    const value = Buffer.from(b.subarray(p, p + vl!));
    p += vl!;
    out.push({ partition: part!, offset: off!, key, value });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// A small protobuf decoder driven by the .proto text

export interface ProtoField {
  name: string;
  number: number;
  type: string;
  repeated: boolean;
}

/** Field definitions of `message NAME` in a .proto file (scalar, bytes, string and enum fields). */
export function protoFields(path: string, message: string): Map<number, ProtoField> {
  const text = readFileSync(path, "utf8").replace(/\/\/[^\n]*/g, "");
  const start = text.indexOf(`message ${message}`);
  if (start < 0) throw new Error(`no message ${message} in ${path}`);
  const fields = new Map<number, ProtoField>();
  const re = /^\s*(repeated\s+|optional\s+)?([A-Za-z0-9_.]+)\s+([a-z0-9_]+)\s*=\s*(\d+)\s*;/gm;
  re.lastIndex = start;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    fields.set(Number(m[4]), {
      name: m[3]!,
      number: Number(m[4]),
      type: m[2]!,
      repeated: m[1]?.trim() === "repeated",
    });
  }
  return fields;
}

function readVarint(b: Uint8Array, at: { p: number }): bigint {
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    const c = b[at.p++];
    if (c === undefined) throw new Error("truncated varint");
    v |= BigInt(c & 127) << shift;
    if (c < 128) return v;
    shift += 7n;
  }
  throw new Error("varint too long");
}

export type ProtoValue = bigint | Uint8Array | string | bigint[];

/**
 * Decodes one message: field name → value (varints as bigint, bytes as Uint8Array, strings as text,
 * repeated as arrays; packed repeated varints unpacked). Unknown field numbers throw.
 */
export function decodeProto(b: Uint8Array, fields: Map<number, ProtoField>): Record<string, ProtoValue> {
  const out: Record<string, ProtoValue> = {};
  const at = { p: 0 };
  let lastNumber = 0;
  while (at.p < b.length) {
    const tag = readVarint(b, at);
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (number <= lastNumber)
      throw new Error(`field ${number} after ${lastNumber}: not in field-number order`);
    lastNumber = number;
    const f = fields.get(number);
    if (!f) throw new Error(`unknown field number ${number}`);
    if (wire === 0) {
      const v = readVarint(b, at);
      out[f.name] = f.repeated ? [...((out[f.name] as bigint[]) ?? []), v] : v;
    } else if (wire === 2) {
      const len = Number(readVarint(b, at));
      const bytes = b.subarray(at.p, at.p + len);
      if (bytes.length !== len) throw new Error("truncated field");
      at.p += len;
      if (f.repeated && f.type !== "bytes" && f.type !== "string") {
        const inner = { p: 0 };
        const list: bigint[] = [];
        while (inner.p < bytes.length) list.push(readVarint(bytes, inner));
        out[f.name] = list;
      } else if (f.type === "string") {
        out[f.name] = Buffer.from(bytes).toString("utf8");
      } else {
        out[f.name] = Uint8Array.from(bytes);
      }
    } else {
      throw new Error(`unexpected wire type ${wire} for field ${number}`);
    }
  }
  return out;
}

/** Strips GoFlow2's length prefix (a varint) and checks it covers the rest exactly. */
export function undelimit(value: Uint8Array): Uint8Array {
  const at = { p: 0 };
  const len = Number(readVarint(value, at));
  if (at.p + len !== value.length)
    throw new Error(`length prefix ${len} but ${value.length - at.p} bytes follow`);
  return value.subarray(at.p);
}

const PROTO_DIR = new URL("../../proto/goflow2/", import.meta.url).pathname;

/** FlowMessage's fields from flow.proto plus ours from clarion.proto. */
export function flowMessageFields(): Map<number, ProtoField> {
  const fields = protoFields(join(PROTO_DIR, "flow.proto"), "FlowMessage");
  for (const [n, f] of protoFields(join(PROTO_DIR, "clarion.proto"), "ClarionFlowExtensions"))
    fields.set(n, f);
  return fields;
}

// ---------------------------------------------------------------------------------------------------------
// Comparing a decoded FlowMessage with the GoFlow2 JSON line of the same flow

/** JSON.parse keeping integers exact (bigint) — GoFlow2's ns times exceed 2^53. */
export function parseJsonExact(line: string): Record<string, unknown> {
  return JSON.parse(line, (_k, v, ctx?: { source?: string }) =>
    typeof v === "number" && ctx?.source !== undefined && /^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v,
  ) as Record<string, unknown>;
}

function addrText(b: Uint8Array): string {
  if (b.length === 4) return b.join(".");
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
  }
  throw new Error(`address of ${b.length} bytes`);
}

function normalizeAddr(text: string): string {
  return text.includes(":") ? new URL(`http://[${text}]`).hostname.slice(1, -1) : text;
}

const TYPES: Record<string, bigint> = { SFLOW_5: 1n, NETFLOW_V5: 2n, NETFLOW_V9: 3n, IPFIX: 4n };
const ETYPES: Record<string, bigint> = { IPv4: 0x800n, IPv6: 0x86ddn, ARP: 0x806n };
const NUMERIC = [
  "time_received_ns",
  "sequence_num",
  "sampling_rate",
  "time_flow_start_ns",
  "time_flow_end_ns",
  "bytes",
  "packets",
  "src_port",
  "dst_port",
  "in_if",
  "out_if",
  "src_vlan",
  "dst_vlan",
  "vlan_id",
  "ip_tos",
  "forwarding_status",
  "ip_ttl",
  "ip_flags",
  "tcp_flags",
  "icmp_type",
  "icmp_code",
  "ipv6_flow_label",
  "fragment_id",
  "fragment_offset",
  "src_as",
  "dst_as",
  "next_hop_as",
  "observation_domain_id",
  "observation_point_id",
] as const;
const ADDRESSES = ["sampler_address", "src_addr", "dst_addr", "next_hop", "bgp_next_hop"] as const;
const LISTS = ["bgp_communities", "as_path", "mpls_label"] as const;
const EMPTY_IN_OURS = ["mpls_ttl", "mpls_ip", "layer_stack", "layer_size", "ipv6_routing_header_addresses"];

/**
 * Differences between a decoded FlowMessage and the JSON line of the same flow ([] when they agree):
 * every GoFlow2 field and ours, by the JSON rendering's rules (names for etype/proto, "addr/len" nets).
 */
export function protoVersusJson(
  pb: Record<string, ProtoValue>,
  json: Record<string, unknown>,
  protoName: (n: number) => string,
): string[] {
  const diffs: string[] = [];
  const num = (name: string): bigint => (pb[name] as bigint | undefined) ?? 0n;
  const eq = (what: string, a: unknown, b: unknown): void => {
    if (a !== b) diffs.push(`${what}: protobuf ${String(a)} json ${String(b)}`);
  };
  eq("type", num("type"), TYPES[String(json.type)]);
  for (const k of NUMERIC) eq(k, num(k), BigInt(json[k] as bigint));
  for (const k of ADDRESSES) {
    const b = pb[k] as Uint8Array | undefined;
    eq(k, b === undefined ? "" : addrText(b), normalizeAddr(String(json[k])));
  }
  for (const k of LISTS) {
    eq(k, ((pb[k] as bigint[] | undefined) ?? []).join(","), (json[k] as bigint[]).join(","));
  }
  for (const k of EMPTY_IN_OURS) eq(k, pb[k] === undefined, (json[k] as unknown[]).length === 0);
  eq(
    "ipv6_routing_header_seg_left",
    num("ipv6_routing_header_seg_left"),
    BigInt(json.ipv6_routing_header_seg_left as bigint),
  );
  const etype = String(json.etype);
  if (etype in ETYPES) eq("etype", num("etype"), ETYPES[etype]);
  else if (Object.values(ETYPES).includes(num("etype")))
    diffs.push(`etype: protobuf ${num("etype")} json ""`);
  eq("proto", protoName(Number(num("proto"))), json.proto);
  for (const k of ["src_mac", "dst_mac"]) {
    eq(k, num(k), BigInt(`0x${String(json[k]).replace(/:/g, "")}`));
  }
  for (const k of ["src_net", "dst_net"]) {
    const net = String(json[k]);
    if (net !== "invalid Prefix") eq(k, num(k), BigInt(net.slice(net.indexOf("/") + 1)));
  }
  for (const k of ["src_sgt", "dst_sgt", "flow_direction"])
    eq(k, num(k), (json[k] as bigint | undefined) ?? 0n);
  for (const k of ["switch_id", "in_if_name", "out_if_name"]) eq(k, pb[k] ?? "", json[k] ?? "");
  // issues 18 and 19: optional numbers (present in both or in neither), names, NAT addresses
  for (const k of [
    "in_vrf_id",
    "out_vrf_id",
    "post_nat_src_port",
    "post_nat_dst_port",
    "reverse_bytes",
    "reverse_packets",
  ])
    eq(k, pb[k] === undefined ? "absent" : String(pb[k]), k in json ? String(json[k]) : "absent");
  for (const k of ["in_vrf_name", "out_vrf_name", "mpls_vpn_rd", "application_name"])
    eq(k, pb[k] ?? "", json[k] ?? "");
  for (const k of ["post_nat_src_addr", "post_nat_dst_addr"]) {
    const b = pb[k] as Uint8Array | undefined;
    eq(k, b === undefined ? "" : addrText(b), k in json ? normalizeAddr(String(json[k])) : "");
  }
  return diffs;
}
