/**
 * `clarion-collector decode`: decode captures (pcap/pcapng) or raw datagram payloads offline and print one
 * JSON line per data record, in wire order: flow records in GoFlow2's rendering with "record_type":"flow",
 * options data with "record_type":"options", sFlow counter samples with "record_type":"counters".
 * A summary goes to stderr. Exit 0 when every file was read (decode errors are counted, not fatal),
 * 1 when a file could not be read, 2 on bad arguments. From captures, `--port` keeps the datagrams sent to
 * those UDP ports; datagrams whose first bytes name no flow protocol we decode (DNS, NTP, … in an ordinary
 * capture) are skipped and counted in one summary line instead of one BAD_VERSION error each.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { Command, CommanderError } from "commander";
import { DecodeError } from "../core/errors.ts";
import type { DecodedElement, FlowRecord, OptionsRecord, RecordHandler } from "../core/flow.ts";
import { CaptureError, scanCapture } from "../core/pcap.ts";
import { encodeCountersJson } from "../encode/counters.ts";
import { Goflow2Writer } from "../encode/goflow2.ts";
import { jsonString } from "../encode/json-batch.ts";
import { FlowDecoder } from "../protocols/decoder.ts";
import type { InterfaceCounters } from "../protocols/sflow5.ts";

export interface DecodeIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

interface DecodeArgs {
  raw: boolean;
  exporter?: string;
  elements: boolean;
  elementIds: boolean;
  /** UDP destination ports to keep (captures); empty: all. */
  ports: number[];
  files: string[];
}

/** NetFlow v5, v9, IPFIX (16-bit version 5, 9, 10) or sFlow v5 (32-bit version 5). */
export function looksLikeFlowExport(p: Buffer): boolean {
  if (p.length < 4) return false;
  const v = p.readUInt16BE(0);
  return v === 5 || v === 9 || v === 10 || p.readUInt32BE(0) === 5;
}

function parseArgs(argv: string[], io: DecodeIo): DecodeArgs | number {
  const cmd = new Command("clarion-collector decode")
    .description(
      "Decode NetFlow v5/v9, IPFIX and sFlow v5 from pcap/pcapng captures (the exporter is each packet's IP source)\n" +
        "or, with --raw, from files that each hold one datagram payload (fed in order from one exporter).\n" +
        'Prints one JSON line per data record: flows ("record_type":"flow", GoFlow2 field names), options data\n' +
        '("record_type":"options") and sFlow counters ("record_type":"counters"). A summary goes to stderr.',
    )
    .argument("<file...>", "capture files, or payload files with --raw")
    .option("--raw", "each file is one datagram payload (no capture headers)", false)
    .option(
      "--exporter <ip>",
      "exporter address for --raw input; with captures, overrides each packet's source",
    )
    .option(
      "--elements",
      "add `elements`: every decoded element by IANA name (vendor name, else <pen>.<id>)",
      false,
    )
    .option(
      "--element-ids",
      "add `element_ids`: the same values keyed <pen>.<id> (pen 0 = IANA / NetFlow v9)",
      false,
    )
    .option(
      "--port <ports>",
      "captures: decode only datagrams sent to these UDP ports (comma-separated, e.g. 2055,4739,6343)",
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
    });
  try {
    cmd.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = cmd.opts<{
    raw: boolean;
    exporter?: string;
    elements: boolean;
    elementIds: boolean;
    port?: string;
  }>();
  if (o.exporter !== undefined && isIP(o.exporter) === 0) {
    io.err.write(`clarion-collector decode: --exporter: "${o.exporter}" is not an IP address\n`);
    return 2;
  }
  const ports: number[] = [];
  if (o.port !== undefined) {
    for (const p of o.port.split(",")) {
      const n = Number(p.trim());
      if (!/^\d+$/.test(p.trim()) || n < 1 || n > 65535) {
        io.err.write(`clarion-collector decode: --port: "${o.port}" is not a list of UDP ports (1-65535)\n`);
        return 2;
      }
      ports.push(n);
    }
    if (o.raw) {
      io.err.write("clarion-collector decode: --port applies to captures, not to --raw payloads\n");
      return 2;
    }
  }
  const { port: _port, ...rest } = o;
  return { ...rest, ports, files: cmd.args };
}

function elementsObject(list: DecodedElement[], byId: boolean): string {
  const seen = new Map<string, (number | string | boolean)[]>();
  for (const e of list) {
    const key = byId ? `${e.pen}.${e.id}` : e.name;
    const values = seen.get(key);
    if (values) values.push(e.value);
    else seen.set(key, [e.value]);
  }
  const parts: string[] = [];
  for (const [k, v] of seen) parts.push(`${jsonString(k)}:${JSON.stringify(v.length === 1 ? v[0] : v)}`);
  return `{${parts.join(",")}}`;
}

const bigintSafe = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

export async function runDecode(
  argv: string[],
  io: DecodeIo = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const args = parseArgs(argv, io);
  if (typeof args === "number") return args;
  const decoder = new FlowDecoder({ collectElements: args.elements || args.elementIds });
  const lines: string[] = [];
  const goflow2 = new Goflow2Writer();
  let flows = 0;
  let options = 0;
  let counters = 0;
  const withElements = (json: string, list: DecodedElement[] | null): string => {
    let tail = "";
    if (args.elements) tail += `,"elements":${elementsObject(list ?? [], false)}`;
    if (args.elementIds) tail += `,"element_ids":${elementsObject(list ?? [], true)}`;
    return tail ? `${json.slice(0, -1)}${tail}}` : json;
  };
  const handler: RecordHandler = {
    flow(r: FlowRecord) {
      flows++;
      lines.push(withElements(`${goflow2.line(r).slice(0, -1)},"record_type":"flow"}`, r.elements));
    },
    options(r: OptionsRecord) {
      options++;
      const json = JSON.stringify(
        {
          record_type: "options",
          type: r.type,
          sampler_address: r.exporter,
          time_received_ns: `${Math.round(r.time_received_ms)}000000`,
          observation_domain_id: r.observation_domain_id,
          template_id: r.template_id,
          scope: r.scope,
          values: r.values,
        },
        bigintSafe,
      );
      lines.push(withElements(json, r.elements));
    },
    counters(c: unknown) {
      counters++;
      lines.push(`${encodeCountersJson(c as InterfaceCounters).slice(0, -1)},"record_type":"counters"}`);
    },
  };
  const errors = new Map<string, number>();
  let datagrams = 0;
  let otherPorts = 0;
  let notFlows = 0;
  let unreadable = 0;
  // A reader that goes away (`decode x.pcap | head`) ends the output quietly, as with any Unix filter.
  let outClosed = false;
  io.out.on("error", (e: NodeJS.ErrnoException) => {
    outClosed = true;
    if (e.code !== "EPIPE" && e.code !== "ERR_STREAM_DESTROYED") {
      io.err.write(`clarion-collector decode: cannot write the output: ${e.message}\n`);
      unreadable++;
    }
  });
  const flush = async () => {
    if (lines.length === 0) return;
    const chunk = `${lines.join("\n")}\n`;
    lines.length = 0;
    if (outClosed) return;
    if (!io.out.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          io.out.off("drain", done);
          io.out.off("error", done);
          io.out.off("close", done);
          resolve();
        };
        io.out.once("drain", done);
        io.out.once("error", done);
        io.out.once("close", done);
      });
    }
  };
  const feed = async (payload: Buffer, exporter: string, port: number, receivedAtMs: number) => {
    if (outClosed) return;
    datagrams++;
    try {
      decoder.decode({ payload, exporter, port, receivedAtMs, listener: "decode" }, handler);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      errors.set(e.code, (errors.get(e.code) ?? 0) + 1);
      io.err.write(`datagram ${datagrams}: ${e.message}\n`);
    }
    if (lines.length >= 1000) await flush();
  };
  for (const file of args.files) {
    if (outClosed) break;
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      io.err.write(`clarion-collector decode: cannot read ${file}: ${(e as Error).message}\n`);
      unreadable++;
      continue;
    }
    if (args.raw) {
      await feed(data, args.exporter ?? "0.0.0.0", 0, Date.now());
      continue;
    }
    try {
      const { datagrams: list } = scanCapture(data);
      for (const d of list) {
        if (args.ports.length > 0 && !args.ports.includes(d.dstPort)) {
          otherPorts++;
          continue;
        }
        if (!looksLikeFlowExport(d.payload)) {
          notFlows++;
          continue;
        }
        await feed(d.payload, args.exporter ?? d.exporter, d.port, d.timestampMs || Date.now());
      }
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e;
      io.err.write(`clarion-collector decode: ${file} is not a readable pcap/pcapng capture: ${e.message}\n`);
      unreadable++;
    }
  }
  await flush();
  if (otherPorts > 0 || notFlows > 0) {
    const parts: string[] = [];
    if (otherPorts > 0)
      parts.push(`${otherPorts} UDP datagrams sent to other ports than --port ${args.ports.join(",")}`);
    if (notFlows > 0)
      parts.push(
        `${notFlows} UDP datagrams that are not NetFlow v5/v9, IPFIX or sFlow v5 exports${args.ports.length ? "" : " (--port picks the export port)"}`,
      );
    io.err.write(`skipped ${parts.join(" and ")}\n`);
  }
  const st = decoder.stats;
  const errorText = [...errors].map(([k, v]) => `${k}=${v}`).join(" ") || "none";
  io.err.write(
    `decoded ${datagrams} datagrams: ${flows} flow records, ${options} options records, ${counters} counter records; ` +
      `errors: ${errorText}; templates learned: ${st.templatesLearned}; ` +
      `data sets without a template: ${decoder.heldCount()} (held: ${st.heldSets}, decoded later: ${st.heldDecoded})\n`,
  );
  return unreadable > 0 ? 1 : 0;
}
