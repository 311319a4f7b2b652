/**
 * The floor of any collector built on Node's UDP sockets: a `node:dgram` socket that receives datagrams and
 * counts their flow records from the headers (NetFlow v5's count; v9/IPFIX data sets divided by the record
 * length their template gives), decoding nothing else and writing nothing. What it costs per datagram is
 * what the collector pays before its first line of decoding, and its maximum lossless rate bounds ours.
 * Used as a custom peer of the peer bench beside nfcapd and our outputs (bench/archive-side-by-side.sh
 * `--only "floor"`), so the comparison runs in one run on one machine.
 *
 * Run: node bench/receive-floor.ts --port P [--host 127.0.0.1] [--rcvbuf BYTES]
 * Prints `FLOOR flows=N datagrams=N` when stopped (SIGTERM or SIGINT).
 */
import { createSocket } from "node:dgram";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "29995"));
const rcvbuf = Number(arg("rcvbuf", "33554432"));

let flows = 0;
let datagrams = 0;
/** Record length by (source, domain/source id, template id); bounded like nothing else here: a bench tool. */
const lengths = new Map<string, number>();

function templates(b: Buffer, at: number, end: number, key: string, ipfix: boolean): void {
  while (at + 4 <= end) {
    const id = b.readUInt16BE(at);
    const count = b.readUInt16BE(at + 2);
    at += 4;
    let len = 0;
    for (let i = 0; i < count && at + 4 <= end; i++) {
      const ie = b.readUInt16BE(at);
      len += b.readUInt16BE(at + 2);
      at += ipfix && ie & 0x8000 ? 8 : 4;
    }
    if (len > 0) lengths.set(`${key}|${id}`, len);
  }
}

function count(b: Buffer, from: string): void {
  datagrams++;
  const version = b.readUInt16BE(0);
  if (version === 5) {
    flows += b.readUInt16BE(2);
    return;
  }
  const ipfix = version === 10;
  if (!ipfix && version !== 9) return;
  const key = `${from}|${b.readUInt32BE(ipfix ? 12 : 16)}`;
  let at = ipfix ? 16 : 20;
  while (at + 4 <= b.length) {
    const id = b.readUInt16BE(at);
    const len = b.readUInt16BE(at + 2);
    if (len < 4 || at + len > b.length) return;
    if (id === (ipfix ? 2 : 0)) templates(b, at + 4, at + len, key, ipfix);
    else if (id >= 256) {
      const rec = lengths.get(`${key}|${id}`);
      if (rec !== undefined) flows += Math.floor((len - 4) / rec);
    }
    at += len;
  }
}

const sock = createSocket({ type: host.includes(":") ? "udp6" : "udp4", recvBufferSize: rcvbuf });
sock.on("message", (msg, rinfo) => count(msg, rinfo.address));
sock.bind(port, host);
const stop = (): void => {
  process.stdout.write(`FLOOR flows=${flows} datagrams=${datagrams}\n`);
  sock.close();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
