/**
 * Real exporters fed from a pcap file, their export collected on an ephemeral UDP port of 127.0.0.1.
 *
 * softflowd 1.1.0 (`softflowd -r FILE -n 127.0.0.1:PORT -v N -d -c none -a`):
 * - `-c none` is required: with a control socket, softflowd 1.1.0 in -r mode blocks in accept() on it
 *   before reading the file and never exits. With `-c none` it reads the file, logs "Shutting down after
 *   pcap EOF", expires every flow ("flushed"), sends and exits, all in well under a second.
 * - `-a` bases the export clock on the pcap timestamps: the header's unix time is the last packet's time,
 *   sysUptime is counted from the first packet, FIRST/LAST_SWITCHED are relative to that. Without -a the
 *   header carries the wall clock with sysUptime 0 and the switched times are garbage relative to the pcap.
 * - v5: IPv4 only (IPv6 flows are not exported). v9/IPFIX: templates 1024 (IPv4 TCP/UDP), 1025 (IPv4
 *   ICMP: ICMP_TYPE 32 instead of ports and TCP flags), 2048/2049 (same for IPv6, ICMPv6 type in IE 139),
 *   fields: src/dst addr, FIRST/LAST_SWITCHED (22/21; or flowStart/EndMilliseconds 152/153 etc. with
 *   `-A milli|sec|micro|nano`), BYTES, PKTS, INPUT/OUTPUT_SNMP (0), DIRECTION (61), flowEndReason (136),
 *   ports, PROTOCOL, TCP_FLAGS, IP_PROTOCOL_VERSION (60), IP_TOS. Options template 256: v9 scope
 *   Interface with SAMPLING_INTERVAL/ALGORITHM and IF_NAME (the pcap path); IPFIX scope meteringProcessId
 *   with systemInitTimeMilliseconds (160), samplingPacketInterval/Space, selectorAlgorithm, IF_NAME.
 *   All records of one run go out in a few datagrams (~1400 bytes each); the first carries templates.
 *   Its v9 header count covers flow data records only (not templates/options), wrong per RFC 3954 in every
 *   datagram with templates: a decoder must not stop at `count` (see collectorPcap for tshark).
 *   IP_TOS of IPv6 flows is always 0 (the traffic class is not read).
 *
 * pmacctd 1.7.7 (config file, `pcap_savefile`, `pcap_savefile_wait: false`):
 * - always sleeps 2 s before reading a savefile (pcap_savefile_delay does not shorten it) and 2 s after
 *   EOF, then SIGINTs its plugins; nfprobe expires and sends every cached flow on that signal. So a run
 *   takes ~4 s whatever the file size.
 * - nfprobe v9/IPFIX times are absolute flowStart/EndMilliseconds (152/153) taken from the pcap; the
 *   template holds exactly the `aggregate` primitives plus bytes, packets, IP version, in/out ifindex,
 *   direction. One datagram per few records (~6 on loopback). ICMP type/code go in dst port (type*256+code).
 *   Default aggregate here adds tcpflags. IP_TOS of IPv6 flows is 0 (traffic class not read).
 * - sfprobe sends one flow sample per packet at sampling_rate 1 (raw header record with the Ethernet frame,
 *   frame_length = frame + 4 for the FCS, plus extended switch data), agent from sfprobe_agentip,
 *   interfaces 0x3fffffff (unknown). It does NOT flush its last, partly filled datagram on exit: the last
 *   few samples are lost. `runPmacctdSfprobe` therefore appends marker frames (PADDING_SRC → PADDING_DST
 *   UDP port 9) to a copy of the pcap so every real packet is sampled and sent; filter those out.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { udpFrame, writePcap } from "../../src/core/pcap.ts";
import { findTool } from "./tools.ts";

export interface ExporterOptions {
  /** Give up (kill the exporter, reject) after this long. Default 20000 ms. */
  timeoutMs?: number;
  /** After the exporter exits, wait this long without datagrams before returning. Default 300 ms. */
  quietMs?: number;
}

export interface SoftflowdOptions extends ExporterOptions {
  version: 1 | 5 | 9 | 10;
  /** -a: base export times on the pcap timestamps. Default true. */
  pcapTime?: boolean;
  /** -A: absolute timestamps in v9/IPFIX (flowStart/End Seconds/Milliseconds/...). Default: relative. */
  absoluteTime?: "sec" | "milli" | "micro" | "nano";
  /** -T: flow tracking level. Default full. */
  trackLevel?: "full" | "port" | "proto" | "ip" | "vlan" | "ether";
  /** -s: sampling rate denominator. */
  samplingRate?: number;
  /** -b: bidirectional IPFIX (with version 10). */
  bidirectional?: boolean;
  /** More command-line arguments, appended last. */
  extraArgs?: string[];
}

export interface PmacctdNfprobeOptions extends ExporterOptions {
  version: 5 | 9 | 10;
  /** `aggregate` primitives. Default for v9/IPFIX: src_host, dst_host, src_port, dst_port, proto, tos, tcpflags; v5: unset. */
  aggregate?: string[];
  /** More `key: value` config lines. */
  extraConfig?: Record<string, string>;
}

export interface PmacctdSfprobeOptions extends ExporterOptions {
  /** sfprobe_agentip. Default 127.0.0.1. */
  agentIp?: string;
  /** sampling_rate. Default 1. */
  samplingRate?: number;
  /** Append marker frames so the last real samples are flushed. Default true. */
  pad?: boolean;
  extraConfig?: Record<string, string>;
}

export const PADDING_SRC = "198.51.100.1";
export const PADDING_DST = "198.51.100.2";
const PADDING_FRAMES = 24;

/** Runs softflowd on a pcap file; resolves with the export datagrams in arrival order. */
export async function runSoftflowd(pcapPath: string, opts: SoftflowdOptions): Promise<Buffer[]> {
  const bin = requireBinary("softflowd");
  return withTempDir("softflowd", (dir) =>
    collect(opts, (port) => {
      const args = [
        "-r",
        pcapPath,
        "-n",
        `127.0.0.1:${port}`,
        "-v",
        String(opts.version),
        "-d",
        "-c",
        "none",
      ];
      args.push("-p", join(dir, "softflowd.pid"));
      if (opts.pcapTime ?? true) args.push("-a");
      if (opts.absoluteTime) args.push("-A", opts.absoluteTime);
      args.push("-T", opts.trackLevel ?? "full");
      if (opts.samplingRate) args.push("-s", String(opts.samplingRate));
      if (opts.bidirectional) args.push("-b");
      args.push(...(opts.extraArgs ?? []));
      return { command: bin, args };
    }),
  );
}

/**
 * pmacctd 1.7.7 sometimes exits 1 at the end of a savefile ("connection lost to '<plugin>'… no more plugins
 * active") when its plugin finishes first — a shutdown race of the tool, not of what it exported. Such a run
 * is repeated from scratch (fresh directory and port), at most twice; the callers still check every record.
 */
async function withPmacctdRetry(run: () => Promise<Buffer[]>): Promise<Buffer[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (e) {
      const raced =
        e instanceof Error && /exited with 1/.test(e.message) && /no more plugins active/.test(e.message);
      if (!raced || attempt >= 3) throw e;
    }
  }
}

/** Runs pmacctd with the nfprobe plugin on a pcap file; resolves with the NetFlow/IPFIX datagrams. */
export async function runPmacctdNfprobe(pcapPath: string, opts: PmacctdNfprobeOptions): Promise<Buffer[]> {
  return withPmacctdRetry(() => runPmacctdNfprobeOnce(pcapPath, opts));
}

async function runPmacctdNfprobeOnce(pcapPath: string, opts: PmacctdNfprobeOptions): Promise<Buffer[]> {
  const bin = requireBinary("pmacctd");
  const aggregate =
    opts.aggregate ??
    (opts.version === 5
      ? undefined
      : ["src_host", "dst_host", "src_port", "dst_port", "proto", "tos", "tcpflags"]);
  return withTempDir("pmacctd", (dir) =>
    collect(opts, async (port) => {
      const config: Record<string, string> = {
        daemonize: "false",
        pcap_savefile: pcapPath,
        pcap_savefile_wait: "false",
        plugins: "nfprobe",
        nfprobe_receiver: `127.0.0.1:${port}`,
        nfprobe_version: String(opts.version),
        pidfile: join(dir, "pmacctd.pid"),
        logfile: join(dir, "pmacctd.log"),
        ...(aggregate ? { aggregate: aggregate.join(", ") } : {}),
        ...opts.extraConfig,
      };
      return { command: bin, args: ["-f", await writeConfig(dir, config)], logfile: config.logfile };
    }),
  );
}

/** Runs pmacctd with the sfprobe plugin on a pcap file; resolves with the sFlow v5 datagrams. */
export async function runPmacctdSfprobe(
  pcapPath: string,
  opts: PmacctdSfprobeOptions = {},
): Promise<Buffer[]> {
  return withPmacctdRetry(() => runPmacctdSfprobeOnce(pcapPath, opts));
}

async function runPmacctdSfprobeOnce(pcapPath: string, opts: PmacctdSfprobeOptions): Promise<Buffer[]> {
  const bin = requireBinary("pmacctd");
  return withTempDir("pmacctd", (dir) =>
    collect(opts, async (port) => {
      let savefile = pcapPath;
      if (opts.pad ?? true) {
        savefile = join(dir, "padded.pcap");
        await writeFile(savefile, padPcap(await readFile(pcapPath), PADDING_FRAMES));
      }
      const config: Record<string, string> = {
        daemonize: "false",
        pcap_savefile: savefile,
        pcap_savefile_wait: "false",
        plugins: "sfprobe",
        sfprobe_receiver: `127.0.0.1:${port}`,
        sfprobe_agentip: opts.agentIp ?? "127.0.0.1",
        sampling_rate: String(opts.samplingRate ?? 1),
        pidfile: join(dir, "pmacctd.pid"),
        logfile: join(dir, "pmacctd.log"),
        ...opts.extraConfig,
      };
      return { command: bin, args: ["-f", await writeConfig(dir, config)], logfile: config.logfile };
    }),
  );
}

/**
 * Wraps datagrams as a pcap of UDP packets 127.0.0.1:srcPort → 127.0.0.1:port, 1 ms apart, for tshark.
 *
 * `v9CountAsMax` (default true) rewrites the header count of NetFlow v9 datagrams (in the copy) to 0xFFFF:
 * tshark 4.0 stops dissecting a v9 datagram once it has shown `count` records, and softflowd 1.1.0 counts
 * only flow data records (not templates, options templates or options data), so tshark would silently drop
 * the last sets of every datagram that carries templates. With 0xFFFF tshark reads every set to the end.
 */
export function collectorPcap(
  datagrams: Buffer[],
  port: number,
  opts: { src?: string; dst?: string; srcPort?: number; startMs?: number; v9CountAsMax?: boolean } = {},
): Buffer {
  const start = opts.startMs ?? Date.UTC(2024, 0, 1);
  const fixCount = opts.v9CountAsMax ?? true;
  return writePcap(
    datagrams.map((original, i) => {
      let payload = original;
      if (fixCount && payload.length >= 20 && payload.readUInt16BE(0) === 9) {
        payload = Buffer.from(payload);
        payload.writeUInt16BE(0xffff, 2);
      }
      return {
        timestampMs: start + i,
        frame: udpFrame({
          src: opts.src ?? "127.0.0.1",
          dst: opts.dst ?? "127.0.0.1",
          srcPort: opts.srcPort ?? 40000,
          dstPort: port,
          payload,
        }),
      };
    }),
  );
}

/**
 * A copy of a classic Ethernet pcap with `count` small UDP frames PADDING_SRC → PADDING_DST:9 appended,
 * 1 ms apart after the last packet, in the file's own byte order and time resolution.
 */
export function padPcap(pcap: Buffer, count: number): Buffer {
  if (pcap.length < 24) throw new Error("padPcap: not a pcap file");
  const magicLE = pcap.readUInt32LE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const nano = magicLE === 0xa1b23c4d || magicLE === 0x4d3cb2a1;
  if (!le && magicLE !== 0xd4c3b2a1 && magicLE !== 0x4d3cb2a1) throw new Error("padPcap: only classic pcap");
  const u32 = (o: number) => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o));
  if ((u32(20) & 0xffff) !== 1) throw new Error("padPcap: only Ethernet link type");
  let off = 24;
  let lastSec = 0;
  let lastFrac = 0;
  while (off + 16 <= pcap.length) {
    lastSec = u32(off);
    lastFrac = u32(off + 4);
    off += 16 + u32(off + 8);
  }
  const fracPerSec = nano ? 1e9 : 1e6;
  const parts: Buffer[] = [pcap.subarray(0, Math.min(off, pcap.length))];
  for (let i = 1; i <= count; i++) {
    const frame = udpFrame({
      src: PADDING_SRC,
      dst: PADDING_DST,
      srcPort: 9,
      dstPort: 9,
      payload: Buffer.alloc(18),
    });
    const total = lastFrac + (i * fracPerSec) / 1000;
    const rh = Buffer.alloc(16);
    const w = (v: number, o: number) => (le ? rh.writeUInt32LE(v, o) : rh.writeUInt32BE(v, o));
    w(lastSec + Math.floor(total / fracPerSec), 0);
    w(total % fracPerSec, 4);
    w(frame.length, 8);
    w(frame.length, 12);
    parts.push(rh, frame);
  }
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------------------------ machinery

interface Launch {
  command: string;
  args: string[];
  /** A log file to quote when the run fails. */
  logfile?: string;
}

/** SIGKILL the exporter's process group (it and the plugin processes it forked). */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}

function requireBinary(name: string): string {
  const bin = findTool(name);
  if (!bin) throw new Error(`${name} is not installed (use requireTool(t, "${name}") to skip the test)`);
  return bin;
}

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `clarion-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeConfig(dir: string, config: Record<string, string>): Promise<string> {
  const path = join(dir, "pmacctd.conf");
  await writeFile(
    path,
    `${Object.entries(config)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n")}\n`,
  );
  return path;
}

/**
 * Binds 127.0.0.1:0, starts the exporter aimed at it, collects datagrams until the exporter has exited and
 * `quietMs` passed without one. Rejects (after killing the exporter) on timeout or a non-zero exit.
 */
async function collect(
  opts: ExporterOptions,
  launch: (port: number) => Launch | Promise<Launch>,
): Promise<Buffer[]> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const quietMs = opts.quietMs ?? 300;
  const socket = createSocket({ type: "udp4", recvBufferSize: 8 * 1024 * 1024 });
  const datagrams: Buffer[] = [];
  let lastAt = Date.now();
  socket.on("message", (msg) => {
    datagrams.push(msg);
    lastAt = Date.now();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  socket.on("error", () => {}); // a receive error after binding only means fewer datagrams: the test sees it
  let child: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const { command, args, logfile } = await launch(socket.address().port);
    let output = "";
    // own process group: pmacctd signals its group on shutdown, which must not reach other runs
    child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const proc = child;
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      timer = setTimeout(() => {
        killGroup(proc);
        reject(new Error(`${command} did not exit within ${timeoutMs} ms: ${args.join(" ")}\n${output}`));
      }, timeoutMs);
      proc.once("error", reject);
      proc.once("exit", (code, signal) => resolve({ code, signal }));
    });
    clearTimeout(timer);
    if (exit.code !== 0) {
      const log = logfile ? await readFile(logfile, "utf8").catch(() => "") : "";
      throw new Error(
        `${command} ${args.join(" ")} exited with ${exit.code ?? exit.signal}\n${output}\n${log}`.trimEnd(),
      );
    }
    // the exporter has sent everything; wait until the socket has been quiet for quietMs
    lastAt = Math.max(lastAt, Date.now());
    while (Date.now() - lastAt < quietMs) {
      await new Promise((r) => setTimeout(r, Math.max(10, quietMs - (Date.now() - lastAt))));
    }
    return datagrams;
  } finally {
    clearTimeout(timer);
    if (child && child.exitCode === null && child.signalCode === null) killGroup(child);
    socket.close();
  }
}
