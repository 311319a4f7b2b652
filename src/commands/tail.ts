/**
 * `clarion-collector tail [filter...]`: flows as a running collector receives them, one readable line each
 * (time, exporter, protocol, src:port -> dst:port, bytes, packets, TCP flags), filtered with the filter
 * language, read from the collector's `GET /tail` stream (src/ops/tail.ts). Flows arrive per receive
 * batch (within --batch-interval of the collector). When this reader is too slow the collector drops
 * flows for it and says how many: the count goes to stderr. Exit 0 on Ctrl-C, at the end of the stream
 * or after --count flows; 1 when the collector cannot be reached; 2 on bad arguments or a bad filter.
 */
import { Command, CommanderError, Option } from "commander";
import { protoName } from "../encode/goflow2.ts";
import { FilterError, parseFilter } from "../query/filter.ts";
import { humanNumber } from "../query/top.ts";
import type { TailRow } from "../sinks/tail.ts";
import { type CommandIo, collectorConfig, reportFilterError, UsageError } from "./common.ts";

interface TailOptions {
  url?: string;
  config?: string;
  httpPort?: string;
  filter?: string;
  format: string;
  count?: string;
}

const pad2 = (n: number): string => String(n).padStart(2, "0");

/** TCP flags as nfdump prints them: one letter per flag (CWR ECE URG ACK PSH RST SYN FIN), "." when off. */
export function tcpFlagsText(flags: number): string {
  const letters = "CEUAPRSF";
  let s = "";
  for (let i = 0; i < 8; i++) s += flags & (0x80 >> i) ? letters[i] : ".";
  return s;
}

function endpoint(ip: string | null, port: number, ports: boolean): string {
  const a = ip ?? "-";
  if (!ports) return a;
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** One flow as a line: local time, exporter, protocol, endpoints, bytes, packets, flags. */
export function formatTailLine(r: TailRow): string {
  const d = new Date(r.time_received);
  const time = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
  const ports = r.protocol === 6 || r.protocol === 17 || r.protocol === 132;
  const icmp = r.protocol === 1 || r.protocol === 58;
  let line = `${time}  ${r.exporter.padEnd(15)}  ${protoName(r.protocol).padEnd(5)} ${endpoint(r.src_ip, r.src_port, ports)} -> ${endpoint(r.dst_ip, r.dst_port, ports)}`;
  if (icmp) line += ` type ${r.icmp_type || r.dst_port >> 8} code ${r.icmp_code || r.dst_port & 0xff}`;
  line += `  ${humanNumber(r.bytes, "B")}  ${r.packets} pkt${r.packets === 1 ? "" : "s"}`;
  if (r.protocol === 6) line += `  ${tcpFlagsText(r.tcp_flags)}`;
  if (r.sampling_rate > 1) line += `  (sampled 1:${r.sampling_rate})`;
  return line;
}

function command(io: CommandIo): Command {
  return new Command("clarion-collector tail")
    .description(
      "Flows as the running collector receives them, one line each, filtered with the filter language\n" +
        '(e.g. "proto tcp and dst port 443"; README: Filters). Reads GET /tail on the ops port.',
    )
    .argument("[filter...]", "filter expression (may be given unquoted)")
    .option("--url <url>", "the collector's ops URL (default: http://127.0.0.1:<http-port>)")
    .option("--config <file>", "the collector's config file (for its --http-port)")
    .option("--http-port <port>", "the collector's ops port")
    .option("-f, --filter <expr>", "filter expression (instead of arguments)")
    .option("-c, --count <n>", "exit after this many flows")
    .addOption(
      new Option("--format <format>", "line: readable; json: the stream's JSON objects")
        .choices(["line", "json"])
        .default("line"),
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });
}

function baseUrl(o: TailOptions, env: Readonly<Record<string, string | undefined>>): string {
  if (o.url !== undefined) {
    try {
      return new URL(o.url).toString().replace(/\/$/, "");
    } catch {
      throw new UsageError(`--url: "${o.url}" is not a URL`);
    }
  }
  let port: number;
  let host = "127.0.0.1";
  if (o.httpPort !== undefined) {
    port = Number(o.httpPort);
    if (!/^\d+$/.test(o.httpPort) || port < 1 || port > 65535)
      throw new UsageError(`--http-port: "${o.httpPort}" is not a port`);
  } else {
    const c = collectorConfig(o, env);
    port = c.httpPort;
    // The ops server listens on --bind-host: a wildcard is reachable on loopback, a specific address there.
    if (c.bindHost !== "0.0.0.0" && c.bindHost !== "::")
      host = c.bindHost.includes(":") ? `[${c.bindHost}]` : c.bindHost;
  }
  return `http://${host}:${port}`;
}

export async function runTailCommand(
  argv: string[],
  io: CommandIo = { out: process.stdout, err: process.stderr },
  env: Readonly<Record<string, string | undefined>> = process.env,
  signal?: AbortSignal,
): Promise<number> {
  const cmd = command(io);
  try {
    cmd.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = cmd.opts<TailOptions>();
  const filter = o.filter ?? (cmd.args.length ? cmd.args.join(" ") : undefined);
  let url: string;
  let max = Number.POSITIVE_INFINITY;
  try {
    if (o.filter !== undefined && cmd.args.length)
      throw new UsageError("give the filter either as arguments or with --filter, not both");
    if (filter !== undefined) {
      try {
        parseFilter(filter);
      } catch (err) {
        if (err instanceof FilterError) return reportFilterError(io, "tail", filter, err);
        throw err;
      }
    }
    if (o.count !== undefined) {
      if (!/^\d+$/.test(o.count) || Number(o.count) < 1)
        throw new UsageError(`--count: "${o.count}" is not a count`);
      max = Number(o.count);
    }
    url = `${baseUrl(o, env)}/tail${filter !== undefined ? `?filter=${encodeURIComponent(filter)}` : ""}`;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(`clarion-collector tail: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  signal?.addEventListener("abort", onSignal);
  process.once("SIGINT", onSignal);
  let seen = 0;
  try {
    const res = await fetch(url, { signal: abort.signal });
    if (res.status === 400) {
      const body = (await res.json()) as { error: string; position: number; length: number };
      return reportFilterError(
        io,
        "tail",
        filter ?? "",
        new FilterError(body.error, body.position, body.length),
      );
    }
    if (!res.ok || !res.body) {
      io.err.write(
        `clarion-collector tail: ${url}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}\n`,
      );
      return 1;
    }
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        if (line === "") continue;
        const obj = JSON.parse(line) as Record<string, unknown>;
        if (typeof obj.event === "string") {
          if (obj.event === "dropped")
            io.err.write(
              `clarion-collector tail: ${obj.count} flows dropped so far for this reader (output too slow; narrow the filter)\n`,
            );
          continue;
        }
        io.out.write(`${o.format === "json" ? line : formatTailLine(obj as unknown as TailRow)}\n`);
        if (++seen >= max) {
          abort.abort();
          return 0;
        }
      }
    }
    return 0;
  } catch (err) {
    if (abort.signal.aborted) return 0;
    io.err.write(
      `clarion-collector tail: cannot read ${url}: ${(err as Error).cause ?? (err as Error).message}\n`,
    );
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    signal?.removeEventListener("abort", onSignal);
  }
}
