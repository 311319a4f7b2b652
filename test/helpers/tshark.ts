/**
 * tshark (Wireshark 4.0) as the independent decoder: decode a pcap of export datagrams and return one
 * object per flow record (NetFlow v5 record, v9/IPFIX data record, sFlow sample).
 *
 * Command: `tshark -n -r FILE -d udp.port==PORT,cflow|sflow -T json -J cflow|sflow --no-duplicate-keys`
 * (TZ=UTC). We read the JSON *tree*, not `-T fields -e`: with `-e`, a packet with many records gives one
 * array per field, and fields missing from some records (v4 and v6 templates in one datagram, ICMP records
 * without ports) make the arrays impossible to zip back into records. The tree keeps each record whole:
 *
 *   cflow layer: header leaves (cflow.version, cflow.count, cflow.sysuptime [s], cflow.timestamp_tree →
 *     cflow.unix_secs / cflow.unix_nsecs [v5], cflow.sequence, cflow.source_id [v9] | cflow.od_id [IPFIX],
 *     cflow.engine_type/engine_id/samplingmode/samplerate [v5]), then
 *     v5:        "pdu N/M" objects, one per record;
 *     v9/IPFIX:  "FlowSet N [id=X] …" (v9) / "Set N [id=X] …" (IPFIX) objects; template sets (X = 0/1,
 *                2/3) hold "Template (Id = T, …)" / "Options Template (Id = T) …"; data sets (X ≥ 256)
 *                hold "Flow K" objects, one per record.
 *   Record fields used (cflow.*): srcaddr dstaddr srcaddrv6 dstaddrv6 srcport dstport protocol octets
 *     packets (also octets64/packets64) inputint outputint tos tcpflags direction ip_version
 *     flow_end_reason nexthop nexthopv6 srcas dstas srcmask dstmask (srcmaskv6 dstmaskv6) srcmac dstmac
 *     icmp_type_code_ipv4 icmp_type_code_ipv6 icmp_type; times under cflow.timedelta_tree:
 *     cflow.timestart/timeend (seconds of sysUptime: v5/v9 FIRST/LAST_SWITCHED, IPFIX 22/21 relative to
 *     systemInitTimeMilliseconds = options field cflow.sys_init_time) or cflow.abstimestart/abstimeend
 *     (absolute: IEs 150–155, text "Jan  1, 2024 00:00:00.482000000 UTC"; tshark 4.0 also uses the abs
 *     names, with the epoch, for a relative time that is exactly 0).
 *   sflow layer: header sflow_245.version agent agentv6 sub_agent_id sequence_number sysuptime numsamples;
 *     "Flow sample, seq N" / "Counters sample, seq N" (also "Expanded …") objects holding
 *     sflow.flow_sample.sampling_rate / sample_pool / dropped_packets / input_interface /
 *     output_interface_tree → output_interface_value, and records ("Raw packet header" →
 *     sflow_245.header_protocol, sflow_245.header.frame_length, sflow_245.header.payload_stripped,
 *     sflow_245.header.sampled_header_length, sflow_245.header_tree → the decoded eth / vlan / ip | ipv6 /
 *     tcp | udp | icmp layers: ip.src ip.dst ipv6.src ipv6.dst ip.proto ipv6.nxt ip.dsfield ipv6.tclass
 *     ip.len tcp.srcport udp.srcport …; "Extended switch data" → sflow_245.vlan.in/out, sflow_245.pri.in/out).
 * Every leaf of a record lands in `fields` under its full tshark name (a name seen twice becomes an array).
 */
import { execFile } from "node:child_process";
import { findTool } from "./tools.ts";

export type TsharkValue = string | string[];

export interface TsharkRecord {
  /** Frame number in the pcap, 1-based. */
  frame: number;
  proto: "cflow" | "sflow";
  /** cflow: "flow" for data records, "options" for options data; sflow: "flow" or "counters" samples. */
  kind: "flow" | "options" | "counters";
  /** 5, 9, 10 (cflow) or 5 (sflow). */
  version: number;
  /** v9/IPFIX data set id (template id); null for v5 and sFlow. */
  template: number | null;
  /** The datagram header's leaves. */
  header: Record<string, TsharkValue>;
  /** Every leaf of the record, full tshark field names. */
  fields: Record<string, TsharkValue>;

  // Normalized views (undefined when the record lacks the field).
  srcAddr?: string;
  dstAddr?: string;
  srcPort?: number;
  dstPort?: number;
  protocol?: number;
  /** cflow: octets; sflow: the sampled packet's IP length (ip.len or ipv6.plen + 40). */
  octets?: number;
  /** cflow only. */
  packets?: number;
  inIf?: number;
  outIf?: number;
  tos?: number;
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
  srcAs?: number;
  dstAs?: number;
  srcMask?: number;
  dstMask?: number;
  nextHop?: string;
  direction?: number;
  /** Flow start / end, ms since the epoch, when the datagram makes it computable. */
  startMs?: number;
  endMs?: number;
  /** sflow: sampling rate, sample pool, drops, frame length, agent address, VLAN. */
  samplingRate?: number;
  samplePool?: number;
  drops?: number;
  frameLength?: number;
  agent?: string;
  vlan?: number;
}

export interface TsharkOptions {
  port: number;
  proto: "cflow" | "sflow";
  /** Kill tshark after this long. Default 30000 ms. */
  timeoutMs?: number;
}

/** Decodes the pcap with tshark; one record per flow record / sample, in file order. */
export async function tsharkFlows(pcapPath: string, opts: TsharkOptions): Promise<TsharkRecord[]> {
  const bin = findTool("tshark");
  if (!bin) throw new Error('tshark is not installed (use requireTool(t, "tshark") to skip the test)');
  const args = [
    "-n",
    "-r",
    pcapPath,
    "-d",
    `udp.port==${opts.port},${opts.proto}`,
    "-T",
    "json",
    "-J",
    opts.proto,
    "--no-duplicate-keys",
  ];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      bin,
      args,
      {
        env: { ...process.env, TZ: "UTC", LC_ALL: "C" },
        maxBuffer: 1 << 30,
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: "SIGKILL",
      },
      (err, out, errOut) => {
        if (err) reject(new Error(`tshark ${args.join(" ")} failed: ${err.message}\n${errOut}`));
        else resolve(out);
      },
    );
  });
  return parseTsharkJson(stdout, opts.proto);
}

/** Parses `tshark -T json --no-duplicate-keys` output (exported for tests on canned output). */
export function parseTsharkJson(json: string, proto: "cflow" | "sflow"): TsharkRecord[] {
  const text = json.trim();
  if (!text) return [];
  const packets = JSON.parse(text) as { _source?: { layers?: Record<string, unknown> } }[];
  const out: TsharkRecord[] = [];
  const state: CflowState = { optionTemplates: new Set(), sysInitMs: undefined };
  packets.forEach((pkt, i) => {
    const layers = pkt._source?.layers ?? {};
    const layer = layers[proto];
    for (const l of Array.isArray(layer) ? layer : [layer]) {
      if (!isObject(l)) continue;
      if (proto === "cflow") walkCflow(l, i + 1, state, out);
      else walkSflow(l, i + 1, out);
    }
  });
  return out;
}

// --------------------------------------------------------------------------------------- cflow

interface CflowState {
  optionTemplates: Set<number>;
  /** systemInitTimeMilliseconds from IPFIX options data (softflowd), for IPFIX uptime-relative times. */
  sysInitMs: number | undefined;
}

const SET_KEY = /^(?:FlowSet|Set) \d+ \[id=(\d+)\]/;

function walkCflow(layer: Obj, frame: number, state: CflowState, out: TsharkRecord[]): void {
  const header: Record<string, TsharkValue> = {};
  for (const [k, v] of Object.entries(layer)) {
    if (k.startsWith("cflow.")) flatten(k, v, header);
  }
  const version = num(header["cflow.version"]) ?? 0;
  for (const [k, v] of Object.entries(layer)) {
    if (/^pdu \d+\/\d+$/.test(k)) {
      for (const rec of asObjects(v)) out.push(cflowRecord(rec, frame, version, null, "flow", header, state));
      continue;
    }
    const m = SET_KEY.exec(k);
    if (!m) continue;
    const setId = Number(m[1]);
    for (const set of asObjects(v)) {
      if (setId < 256) {
        for (const key of Object.keys(set)) {
          const t = /^Options Template \(Id = (\d+)\)/.exec(key);
          if (t) state.optionTemplates.add(Number(t[1]));
        }
        continue;
      }
      const kind = state.optionTemplates.has(setId) ? "options" : "flow";
      for (const [fk, fv] of Object.entries(set)) {
        if (!/^Flow \d+$/.test(fk)) continue;
        for (const rec of asObjects(fv)) {
          const r = cflowRecord(rec, frame, version, setId, kind, header, state);
          if (kind === "options" && typeof r.fields["cflow.sys_init_time"] === "string") {
            state.sysInitMs = parseTsharkTime(r.fields["cflow.sys_init_time"]);
          }
          out.push(r);
        }
      }
    }
  }
}

function cflowRecord(
  rec: Obj,
  frame: number,
  version: number,
  template: number | null,
  kind: TsharkRecord["kind"],
  header: Record<string, TsharkValue>,
  state: CflowState,
): TsharkRecord {
  const fields: Record<string, TsharkValue> = {};
  for (const [k, v] of Object.entries(rec)) flatten(k, v, fields);
  const f = (name: string) => fields[`cflow.${name}`];
  const r: TsharkRecord = { frame, proto: "cflow", kind, version, template, header, fields };
  r.srcAddr = str(f("srcaddr") ?? f("srcaddrv6"));
  r.dstAddr = str(f("dstaddr") ?? f("dstaddrv6"));
  r.srcPort = num(f("srcport"));
  r.dstPort = num(f("dstport"));
  r.protocol = num(f("protocol"));
  r.octets = num(f("octets") ?? f("octets64"));
  r.packets = num(f("packets") ?? f("packets64"));
  r.inIf = num(f("inputint"));
  r.outIf = num(f("outputint"));
  r.tos = num(f("tos"));
  r.tcpFlags = num(f("tcpflags"));
  r.srcAs = num(f("srcas"));
  r.dstAs = num(f("dstas"));
  r.srcMask = num(f("srcmask") ?? f("srcmaskv6"));
  r.dstMask = num(f("dstmask") ?? f("dstmaskv6"));
  r.nextHop = str(f("nexthop") ?? f("nexthopv6"));
  r.direction = num(f("direction"));
  const icmp = num(f("icmp_type_code_ipv4") ?? f("icmp_type_code_ipv6") ?? f("icmp_type"));
  if (icmp !== undefined) {
    r.icmpType = icmp >> 8;
    r.icmpCode = icmp & 0xff;
  }
  // times
  // tshark 4.0 quirk: a FIRST/LAST_SWITCHED of exactly 0 is shown as cflow.abstimestart/abstimeend
  // "Jan  1, 1970 00:00:00.000000000 UTC"; an absolute epoch 0 is read back as the relative time 0.
  const absStart = parseTsharkTime(str(f("abstimestart")) ?? "");
  const absEnd = parseTsharkTime(str(f("abstimeend")) ?? "");
  let relStart = num(f("timestart"));
  let relEnd = num(f("timeend"));
  if (absStart === 0) relStart = 0;
  else if (absStart !== undefined) r.startMs = absStart;
  if (absEnd === 0) relEnd = 0;
  else if (absEnd !== undefined) r.endMs = absEnd;
  if (relStart !== undefined || relEnd !== undefined) {
    const uptime = num(header["cflow.sysuptime"]);
    const secs = num(header["cflow.unix_secs"]);
    if (version === 10) {
      // IPFIX 22/21 count from systemInitTimeMilliseconds (options data)
      const init = state.sysInitMs;
      if (init !== undefined && relStart !== undefined) r.startMs = init + relStart * 1000;
      if (init !== undefined && relEnd !== undefined) r.endMs = init + relEnd * 1000;
    } else if (uptime !== undefined && secs !== undefined) {
      // export time − (sysUptime − switched), the difference taken as a signed 32-bit ms count so that
      // both uptime wrap and "switched slightly after uptime" (pmacctd v5 on old pcaps) come out right
      const exportMs = secs * 1000 + (num(header["cflow.unix_nsecs"]) ?? 0) / 1e6;
      const at = (rel: number) => exportMs - signed32(Math.round(uptime * 1000) - Math.round(rel * 1000));
      if (relStart !== undefined) r.startMs = at(relStart);
      if (relEnd !== undefined) r.endMs = at(relEnd);
    }
  }
  return r;
}

function signed32(ms: number): number {
  const u = ((ms % 2 ** 32) + 2 ** 32) % 2 ** 32;
  return u >= 2 ** 31 ? u - 2 ** 32 : u;
}

// --------------------------------------------------------------------------------------- sflow

function walkSflow(layer: Obj, frame: number, out: TsharkRecord[]): void {
  const header: Record<string, TsharkValue> = {};
  for (const [k, v] of Object.entries(layer)) {
    if (k.startsWith("sflow")) flatten(k, v, header);
  }
  const version = num(header["sflow_245.version"]) ?? 0;
  const agent = str(header["sflow_245.agent"] ?? header["sflow_245.agentv6"]);
  for (const [k, v] of Object.entries(layer)) {
    const m = /^(?:Expanded )?(Flow|Counters) sample, seq \d+/i.exec(k);
    if (!m) continue;
    for (const sample of asObjects(v)) {
      const fields: Record<string, TsharkValue> = {};
      for (const [sk, sv] of Object.entries(sample)) flatten(sk, sv, fields);
      const kind = m[1]!.toLowerCase() === "flow" ? "flow" : "counters";
      const r: TsharkRecord = { frame, proto: "sflow", kind, version, template: null, header, fields, agent };
      if (kind === "flow") fillSflowFlow(r, fields);
      out.push(r);
    }
  }
}

function fillSflowFlow(r: TsharkRecord, fields: Record<string, TsharkValue>): void {
  const find = (re: RegExp) => {
    for (const [k, v] of Object.entries(fields)) if (re.test(k)) return v;
    return undefined;
  };
  r.samplingRate = num(find(/\.sampling_rate$/));
  r.samplePool = num(find(/\.sample_pool$/));
  r.drops = num(find(/\.dropped_packets$/));
  r.inIf = num(find(/\.input_interface(_value)?$/));
  r.outIf = num(find(/\.output_interface_value$/) ?? find(/\.output_interface$/));
  r.frameLength = num(fields["sflow_245.header.frame_length"]);
  r.srcAddr = str(fields["ip.src"] ?? fields["ipv6.src"]);
  r.dstAddr = str(fields["ip.dst"] ?? fields["ipv6.dst"]);
  r.protocol = num(fields["ip.proto"] ?? fields["ipv6.nxt"]);
  r.tos = num(fields["ip.dsfield"] ?? fields["ipv6.tclass"]);
  const ipLen = num(fields["ip.len"]);
  const v6Len = num(fields["ipv6.plen"]);
  r.octets = ipLen ?? (v6Len !== undefined ? v6Len + 40 : undefined);
  r.srcPort = num(fields["tcp.srcport"] ?? fields["udp.srcport"]);
  r.dstPort = num(fields["tcp.dstport"] ?? fields["udp.dstport"]);
  r.tcpFlags = num(fields["tcp.flags"]);
  r.icmpType = num(fields["icmp.type"] ?? fields["icmpv6.type"]);
  r.icmpCode = num(fields["icmp.code"] ?? fields["icmpv6.code"]);
  r.vlan = num(fields["vlan.id"] ?? fields["sflow_245.vlan.in"]);
}

// ------------------------------------------------------------------------------------- helpers

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asObjects(v: unknown): Obj[] {
  if (Array.isArray(v)) return v.filter(isObject);
  return isObject(v) ? [v] : [];
}

/** Adds the leaves of `v` under `key` (objects are walked, their own keys used; repeats become arrays). */
function flatten(key: string, v: unknown, into: Record<string, TsharkValue>): void {
  if (isObject(v)) {
    for (const [k, sub] of Object.entries(v)) flatten(k, sub, into);
    return;
  }
  if (Array.isArray(v)) {
    for (const item of v) flatten(key, item, into);
    return;
  }
  if (v === null || v === undefined) return;
  const s = String(v);
  const prev = into[key];
  if (prev === undefined) into[key] = s;
  else if (Array.isArray(prev)) prev.push(s);
  else into[key] = [prev, s];
}

function first(v: TsharkValue | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function str(v: TsharkValue | undefined): string | undefined {
  return first(v);
}

function num(v: TsharkValue | undefined): number | undefined {
  const s = first(v);
  if (s === undefined || s === "") return undefined;
  const n = Number(s);
  return Number.isNaN(n) ? undefined : n;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "Jan  1, 2024 00:00:00.482000000 UTC" (tshark absolute time, TZ=UTC) → ms since the epoch. */
export function parseTsharkTime(s: string): number | undefined {
  const m = /^([A-Z][a-z]{2})\s+(\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?/.exec(s.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1]!);
  if (month < 0) return undefined;
  const frac = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  return Date.UTC(Number(m[3]), month, Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6])) + frac;
}
