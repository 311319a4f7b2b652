/**
 * ICMP type/code normalisation (DESIGN §3): when the exporter sends no ICMP element, type and code come
 * from the destination port (type × 256 + code); the destination port stays as exported. An ICMP element
 * wins over the port; other protocols are left alone.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v5Packet,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import { datagram, flowSample, sampledIPv4 } from "../helpers/sflow-builder.ts";

function decode(...payloads: Buffer[]): FlowRecord[] {
  const d = new FlowDecoder();
  const flows: FlowRecord[] = [];
  for (const payload of payloads)
    d.decode(
      { payload, exporter: "192.0.2.1", port: 40000, receivedAtMs: 0, listener: "" },
      { flow: (r) => flows.push(r) },
    );
  return flows;
}

const icmp = (r: FlowRecord) => [r.proto, r.dst_port, r.icmp_type, r.icmp_code];

const NO_ICMP: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [4, 1],
];
const WITH_ICMP: FieldSpec[] = [...NO_ICMP, [32, 2]]; // icmpTypeCodeIPv4

describe("ICMP type/code from the destination port", () => {
  test("NetFlow v5 (no ICMP fields at all)", () => {
    const base = { src: "10.0.0.1", dst: "10.0.0.2", packets: 1, bytes: 84, first: 1, last: 2, srcPort: 0 };
    const flows = decode(
      v5Packet([
        { ...base, proto: 1, dstPort: 3 * 256 + 1 }, // destination unreachable, host unreachable
        { ...base, proto: 6, dstPort: 3 * 256 + 1 }, // a TCP port that happens to look the same
      ]),
    );
    assert.deepEqual(icmp(flows[0]!), [1, 769, 3, 1]);
    assert.deepEqual(icmp(flows[1]!), [6, 769, 0, 0]);
  });

  test("NetFlow v9: from the port without an ICMP element, from the element when there is one", () => {
    const flows = decode(
      v9Packet([
        set(0, [...v9Template(256, NO_ICMP), ...v9Template(257, WITH_ICMP)]),
        set(256, record(NO_ICMP, ["10.0.0.1", "10.0.0.2", 0, 8 * 256, 1])), // echo request
        set(257, record(WITH_ICMP, ["10.0.0.1", "10.0.0.2", 0, 0, 1, 11 * 256 + 1])), // time exceeded
      ]),
    );
    assert.deepEqual(icmp(flows[0]!), [1, 2048, 8, 0]);
    assert.deepEqual(icmp(flows[1]!), [1, 0, 11, 1]);
  });

  test("IPFIX: ICMPv6 too; a UDP flow keeps icmp 0", () => {
    const flows = decode(
      ipfixPacket([
        set(2, ipfixTemplate(300, NO_ICMP)),
        set(300, [
          ...record(NO_ICMP, ["10.0.0.1", "10.0.0.2", 0, 128 * 256, 58]), // ICMPv6 echo request
          ...record(NO_ICMP, ["10.0.0.1", "10.0.0.2", 53, 3 * 256 + 3, 17]),
        ]),
      ]),
    );
    assert.deepEqual(icmp(flows[0]!), [58, 32768, 128, 0]);
    assert.deepEqual(icmp(flows[1]!), [17, 771, 0, 0]);
  });

  test("sFlow sampled_ipv4 (no packet header to read ICMP from)", () => {
    const flows = decode(
      datagram({
        samples: [
          flowSample({
            records: [
              sampledIPv4({ length: 84, protocol: 1, src: "10.0.0.1", dst: "10.0.0.2", dstPort: 0x0b00 }),
            ],
          }),
        ],
      }),
    );
    assert.deepEqual(icmp(flows[0]!), [1, 0x0b00, 11, 0]);
  });
});
