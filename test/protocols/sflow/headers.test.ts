/**
 * The packet-header parser's own entry point (src/protocols/sflow/headers.ts), as IPFIX packet sections
 * call it: bytes + offset + length + a record to fill. It reads only offset..offset+length.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FlowRecord } from "../../../src/core/flow.ts";
import { FlowDecoder } from "../../../src/protocols/decoder.ts";
import { decodePacketHeader, HEADER_PROTOCOL } from "../../../src/protocols/sflow/headers.ts";
import { datagram, eth, flowSample, ipv4, rawHeader, tcp, udp, vxlan } from "../../helpers/sflow-builder.ts";

const frame = Buffer.concat([
  eth({ dst: "00:11:22:33:44:55", src: "66:77:88:99:aa:bb", etype: 0x0800 }),
  ipv4({ src: "10.0.0.1", dst: "10.0.0.2", proto: 6, ttl: 63 }),
  tcp({ sport: 443, dport: 51000, flags: 0x12 }),
]);
/** The frame inside a larger buffer, with bytes before it and after it that are not the header's. */
const before = Buffer.alloc(7, 0xee);
const bytes = Buffer.concat([before, frame, Buffer.alloc(16, 0xff)]);

test("decodes an Ethernet frame at an offset inside a larger buffer", () => {
  const r = new FlowRecord();
  decodePacketHeader(bytes, before.length, frame.length, HEADER_PROTOCOL.ETHERNET, r);
  assert.equal(r.etype, 0x0800);
  assert.equal(r.src_addr, "10.0.0.1");
  assert.equal(r.dst_addr, "10.0.0.2");
  assert.equal(r.proto, 6);
  assert.equal(r.src_port, 443);
  assert.equal(r.dst_port, 51000);
  assert.equal(r.tcp_flags, 0x12);
});

test("reads nothing past offset + length, even when the buffer goes on", () => {
  const r = new FlowRecord();
  // Ethernet (14) + IPv4 (20): the TCP header that follows in the buffer is not part of this header
  decodePacketHeader(bytes, before.length, 34, HEADER_PROTOCOL.ETHERNET, r);
  assert.equal(r.dst_addr, "10.0.0.2");
  assert.equal(r.src_port, 0);
  assert.equal(r.dst_port, 0);
});

test("an IPv4 header without the link layer; an unknown header protocol decodes nothing", () => {
  const r = new FlowRecord();
  decodePacketHeader(bytes, before.length + 14, frame.length - 14, HEADER_PROTOCOL.IPV4, r);
  assert.equal(r.etype, 0x0800);
  assert.equal(r.dst_port, 51000);
  const none = new FlowRecord();
  decodePacketHeader(bytes, before.length, frame.length, 99, none);
  assert.deepEqual(none, new FlowRecord());
});

test("sFlow raw headers follow the tunnel setting: a VXLAN frame is the tunnel, or its inner packet", () => {
  const vx = Buffer.concat([
    eth({ etype: 0x0800 }),
    ipv4({ src: "192.0.2.10", dst: "192.0.2.20", proto: 17 }),
    udp({ sport: 40000, dport: 4789 }),
    vxlan(100),
    eth({ dst: "02:00:00:00:00:01", etype: 0x0800 }),
    ipv4({ src: "10.0.0.1", dst: "10.0.0.2", proto: 6, ttl: 63 }),
    tcp({ sport: 443, dport: 51000, flags: 0x12 }),
  ]);
  const payload = datagram({ samples: [flowSample({ records: [rawHeader(vx)] })] });
  const flows: FlowRecord[] = [];
  for (const tunnelHeader of ["outer", "inner"] as const)
    new FlowDecoder({ tunnelHeader }).decode(
      { payload, exporter: "192.0.2.1", port: 6343, receivedAtMs: 1_700_000_000_000, listener: "t" },
      { flow: (r) => flows.push(r) },
    );
  assert.equal(flows[0]!.src_addr, "192.0.2.10");
  assert.equal(flows[0]!.dst_port, 4789);
  assert.equal(flows[1]!.src_addr, "10.0.0.1");
  assert.equal(flows[1]!.dst_port, 51000);
  assert.equal(flows[1]!.ip_ttl, 63);
});
