import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { IANA_ELEMENTS, VENDOR_ELEMENTS } from "../../src/protocols/elements.generated.ts";
import {
  ABSTRACT_TYPES as ABSTRACT_TYPES_LIST,
  elementName,
  ipfixElement,
  netflow9Field,
} from "../../src/protocols/elements.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

// The lists below were extracted once from /work/shared/corpus/logstash/MANIFEST.json (expected[] entries
// with their `ie` and `field`); the test does not read the shared corpus.
/** Vendor elements named by the corpus MANIFEST (kind "vendor"): [pen, id, field]; pen 0 = NetFlow v9 type. */
const CORPUS_VENDOR: ReadonlyArray<readonly [number, number, string]> = [
  [0, 8192, "streamcore_wan_rtt"],
  [0, 8193, "streamcore_net_app_resp_time"],
  [0, 8194, "streamcore_total_app_resp_time"],
  [0, 8195, "streamcore_tcp_retrans_rate"],
  [0, 8196, "streamcore_call_direction"],
  [0, 8256, "streamcore_hostname"],
  [0, 8257, "streamcore_url"],
  [0, 8384, "streamcore_id_rule_1"],
  [0, 8385, "streamcore_id_rule_2"],
  [0, 8386, "streamcore_id_rule_3"],
  [0, 8387, "streamcore_id_rule_4"],
  [0, 8388, "streamcore_id_rule_5"],
  [0, 8389, "streamcore_id_rule_6"],
  [0, 8390, "streamcore_id_rule_7"],
  [0, 8391, "streamcore_id_rule_8"],
  [0, 8392, "streamcore_id_rule_9"],
  [0, 8393, "streamcore_id_rule_10"],
  [0, 33000, "ingress_acl_id"],
  [0, 33001, "egress_acl_id"],
  [0, 33002, "fw_ext_event"],
  [0, 40000, "username"],
  [0, 40001, "xlate_src_addr_ipv4"],
  [0, 40002, "xlate_dst_addr_ipv4"],
  [0, 40003, "xlate_src_port"],
  [0, 40004, "xlate_dst_port"],
  [0, 40005, "fw_event"],
  [0, 56701, "app_id"],
  [0, 56702, "user_id"],
  [0, 57590, "nprobe_proto"],
  [637, 91, "natInsideSvcid"],
  [637, 92, "natOutsideSvcid"],
  [637, 93, "natSubString"],
  [3054, 110, "ixiaL7AppId"],
  [3054, 111, "ixiaL7AppName"],
  [3054, 126, "ixiaSrcLatitude"],
  [3054, 127, "ixiaSrcLongitude"],
  [3054, 146, "ixiaDstLatitude"],
  [3054, 147, "ixiaDstLongitude"],
  [3054, 160, "ixiaDeviceId"],
  [3054, 161, "ixiaDeviceName"],
  [3054, 162, "ixiaBrowserId"],
  [3054, 163, "ixiaBrowserName"],
  [3054, 176, "ixiaRevOctetDeltaCount"],
  [3054, 177, "ixiaRevPacketDeltaCount"],
  [3054, 182, "ixiaHttpUserAgent"],
  [3054, 183, "ixiaHttpHostName"],
  [3054, 184, "ixiaHttpUri"],
  [3054, 186, "ixiaSrcAsName"],
  [3054, 187, "ixiaDstAsName"],
  [3054, 188, "ixiaLatency"],
  [3054, 192, "ixiaThreatType"],
  [3054, 193, "ixiaThreatIPv4"],
  [5951, 128, "netscalerRoundTripTime"],
  [5951, 129, "netscalerTransactionId"],
  [5951, 130, "netscalerHttpReqUrl"],
  [5951, 131, "netscalerHttpReqCookie"],
  [5951, 132, "netscalerFlowFlags"],
  [5951, 133, "netscalerConnectionId"],
  [5951, 140, "netscalerHttpReqReferer"],
  [5951, 141, "netscalerHttpReqMethod"],
  [5951, 142, "netscalerHttpReqHost"],
  [5951, 143, "netscalerHttpReqUserAgent"],
  [5951, 151, "netscalerAppNameAppId"],
  [5951, 158, "netscalerHttpResForwFB"],
  [5951, 170, "netscalerHttpResForwLB"],
  [5951, 171, "netscalerAppUnitNameAppId"],
  [5951, 183, "netscalerHttpContentType"],
  [5951, 185, "netscalerHttpReqAuthorization"],
  [5951, 186, "netscalerHttpReqVia"],
  [5951, 190, "netscalerHttpReqXForwardedFor"],
  [5951, 192, "netscalerConnectionChainID"],
  [5951, 193, "netscalerConnectionChainHopCount"],
  [5951, 205, "netscalerAaaUsername"],
  [5951, 267, "netscalerHttpDomainName"],
  [5951, 330, "netscalerUnknown330"],
  [6871, 14, "initialTCPFlags"],
  [6871, 15, "unionTCPFlags"],
  [6871, 21, "reverseFlowDeltaMilliseconds"],
  [6871, 33, "silkAppLabel"],
  [6871, 40, "flowAttributes"],
  [6871, 100, "expiredFragmentCount"],
  [6871, 101, "assembledFragmentCount"],
  [6871, 102, "meanFlowRate"],
  [6871, 103, "meanPacketRate"],
  [6871, 104, "flowTableFlushEventCount"],
  [6871, 105, "flowTablePeakCount"],
  [6871, 16398, "reverseInitialTCPFlags"],
  [6871, 16399, "reverseUnionTCPFlags"],
  [6871, 16424, "reverseFlowAttributes"],
  [6876, 888, "vmwareEgressInterfaceAttr"],
  [6876, 889, "vmwareVxlanExportRole"],
  [6876, 890, "vmwareIngressInterfaceAttr"],
  [10704, 1, "Timestamp"],
  [10704, 2, "LogOp"],
  [10704, 3, "TrafficType"],
  [10704, 4, "FW_Rule"],
  [10704, 5, "ServiceName"],
  [10704, 6, "Reason"],
  [10704, 7, "ReasonText"],
  [10704, 8, "BindIPv4Address"],
  [10704, 9, "BindTransportPort"],
  [10704, 10, "ConnIPv4Address"],
  [10704, 11, "ConnTransportPort"],
  [10704, 12, "AuditCounter"],
  [15397, 1, "proceraService"],
  [15397, 2, "proceraBaseService"],
  [15397, 3, "proceraIncomingOctets"],
  [15397, 4, "proceraOutgoingOctets"],
  [15397, 15, "proceraFlowBehavior"],
  [15397, 16, "proceraContentCategories"],
  [15397, 21, "proceraHttpContentType"],
  [15397, 22, "proceraHttpUrl"],
  [15397, 25, "proceraHttpFileLength"],
  [15397, 26, "proceraHttpLocation"],
  [15397, 28, "proceraSubscriberIdentifier"],
  [15397, 47, "proceraTemplateName"],
  [41916, 4321, "viptelaVPNId"],
];

/** IANA elements named by the corpus MANIFEST (kind "iana"): [id, field]. */
const CORPUS_IANA: ReadonlyArray<readonly [number, string]> = [
  [1, "octetDeltaCount"],
  [2, "packetDeltaCount"],
  [3, "deltaFlowCount"],
  [4, "protocolIdentifier"],
  [5, "ipClassOfService"],
  [6, "tcpControlBits"],
  [7, "sourceTransportPort"],
  [8, "sourceIPv4Address"],
  [9, "sourceIPv4PrefixLength"],
  [10, "ingressInterface"],
  [11, "destinationTransportPort"],
  [12, "destinationIPv4Address"],
  [13, "destinationIPv4PrefixLength"],
  [14, "egressInterface"],
  [15, "ipNextHopIPv4Address"],
  [16, "bgpSourceAsNumber"],
  [17, "bgpDestinationAsNumber"],
  [18, "bgpNextHopIPv4Address"],
  [21, "flowEndSysUpTime"],
  [22, "flowStartSysUpTime"],
  [23, "postOctetDeltaCount"],
  [24, "postPacketDeltaCount"],
  [25, "minimumIpTotalLength"],
  [26, "maximumIpTotalLength"],
  [27, "sourceIPv6Address"],
  [28, "destinationIPv6Address"],
  [32, "icmpTypeCodeIPv4"],
  [34, "samplingInterval"],
  [35, "samplingAlgorithm"],
  [36, "flowActiveTimeout"],
  [37, "flowIdleTimeout"],
  [39, "engineId"],
  [40, "exportedOctetTotalCount"],
  [41, "exportedMessageTotalCount"],
  [42, "exportedFlowRecordTotalCount"],
  [44, "sourceIPv4Prefix"],
  [48, "samplerId"],
  [53, "maximumTTL"],
  [54, "fragmentIdentification"],
  [56, "sourceMacAddress"],
  [57, "postDestinationMacAddress"],
  [58, "vlanId"],
  [59, "postVlanId"],
  [60, "ipVersion"],
  [61, "flowDirection"],
  [62, "ipNextHopIPv6Address"],
  [80, "destinationMacAddress"],
  [81, "postSourceMacAddress"],
  [83, "interfaceDescription"],
  [85, "octetTotalCount"],
  [86, "packetTotalCount"],
  [89, "forwardingStatus"],
  [92, "srcTrafficIndex"],
  [93, "dstTrafficIndex"],
  [94, "applicationDescription"],
  [95, "applicationId"],
  [96, "applicationName"],
  [98, "postIpDiffServCodePoint"],
  [130, "exporterIPv4Address"],
  [131, "exporterIPv6Address"],
  [135, "droppedPacketTotalCount"],
  [136, "flowEndReason"],
  [138, "observationPointId"],
  [143, "meteringProcessId"],
  [144, "exportingProcessId"],
  [147, "wlanSSID"],
  [148, "flowId"],
  [150, "flowStartSeconds"],
  [151, "flowEndSeconds"],
  [152, "flowStartMilliseconds"],
  [153, "flowEndMilliseconds"],
  [154, "flowStartMicroseconds"],
  [155, "flowEndMicroseconds"],
  [160, "systemInitTimeMilliseconds"],
  [161, "flowDurationMilliseconds"],
  [164, "ignoredPacketTotalCount"],
  [167, "notSentPacketTotalCount"],
  [176, "icmpTypeIPv4"],
  [177, "icmpCodeIPv4"],
  [181, "udpDestinationPort"],
  [182, "tcpSourcePort"],
  [184, "tcpSequenceNumber"],
  [195, "ipDiffServCodePoint"],
  [196, "ipPrecedence"],
  [201, "mplsLabelStackLength"],
  [209, "tcpOptions"],
  [214, "exportProtocolVersion"],
  [215, "exportTransportProtocol"],
  [225, "postNATSourceIPv4Address"],
  [226, "postNATDestinationIPv4Address"],
  [227, "postNAPTSourceTransportPort"],
  [228, "postNAPTDestinationTransportPort"],
  [231, "initiatorOctets"],
  [232, "responderOctets"],
  [233, "firewallEvent"],
  [234, "ingressVRFID"],
  [235, "egressVRFID"],
  [236, "VRFname"],
  [252, "ingressPhysicalInterface"],
  [253, "egressPhysicalInterface"],
  [256, "ethernetType"],
  [304, "selectorAlgorithm"],
  [305, "samplingPacketInterval"],
  [306, "samplingPacketSpace"],
  [323, "observationTimeMilliseconds"],
  [346, "privateEnterpriseNumber"],
  [351, "layer2SegmentId"],
  [365, "staMacAddress"],
  [366, "staIPv4Address"],
  [367, "wtpMacAddress"],
];

/** RFC 5103 reverse elements named by the corpus MANIFEST: [id, field]. */
const CORPUS_REVERSE: ReadonlyArray<readonly [number, string]> = [
  [5, "reverseIpClassOfService"],
  [32, "reverseIcmpTypeCodeIPv4"],
  [58, "reverseVlanId"],
  [85, "reverseOctetTotalCount"],
  [86, "reversePacketTotalCount"],
  [184, "reverseTcpSequenceNumber"],
];

const ABSTRACT_TYPES: ReadonlySet<string> = new Set(ABSTRACT_TYPES_LIST);

describe("IANA elements (pen 0)", () => {
  const sample: Array<[number, string, string]> = [
    [1, "octetDeltaCount", "unsigned64"],
    [2, "packetDeltaCount", "unsigned64"],
    [4, "protocolIdentifier", "unsigned8"],
    [6, "tcpControlBits", "unsigned16"],
    [7, "sourceTransportPort", "unsigned16"],
    [8, "sourceIPv4Address", "ipv4Address"],
    [10, "ingressInterface", "unsigned32"],
    [12, "destinationIPv4Address", "ipv4Address"],
    [21, "flowEndSysUpTime", "unsigned32"],
    [22, "flowStartSysUpTime", "unsigned32"],
    [27, "sourceIPv6Address", "ipv6Address"],
    [28, "destinationIPv6Address", "ipv6Address"],
    [34, "samplingInterval", "unsigned32"],
    [35, "samplingAlgorithm", "unsigned8"],
    [48, "samplerId", "unsigned8"],
    [50, "samplerRandomInterval", "unsigned32"],
    [56, "sourceMacAddress", "macAddress"],
    [80, "destinationMacAddress", "macAddress"],
    [82, "interfaceName", "string"],
    [83, "interfaceDescription", "string"],
    [89, "forwardingStatus", "unsigned32"],
    [95, "applicationId", "octetArray"],
    [148, "flowId", "unsigned64"],
    [150, "flowStartSeconds", "dateTimeSeconds"],
    [151, "flowEndSeconds", "dateTimeSeconds"],
    [152, "flowStartMilliseconds", "dateTimeMilliseconds"],
    [153, "flowEndMilliseconds", "dateTimeMilliseconds"],
    [154, "flowStartMicroseconds", "dateTimeMicroseconds"],
    [155, "flowEndMicroseconds", "dateTimeMicroseconds"],
    [156, "flowStartNanoseconds", "dateTimeNanoseconds"],
    [157, "flowEndNanoseconds", "dateTimeNanoseconds"],
    [158, "flowStartDeltaMicroseconds", "unsigned32"],
    [159, "flowEndDeltaMicroseconds", "unsigned32"],
    [276, "dataRecordsReliability", "boolean"],
    [291, "basicList", "basicList"],
    [292, "subTemplateList", "subTemplateList"],
    [293, "subTemplateMultiList", "subTemplateMultiList"],
    [302, "selectorId", "unsigned64"],
    [305, "samplingPacketInterval", "unsigned32"],
    [306, "samplingPacketSpace", "unsigned32"],
    [311, "samplingProbability", "float64"],
    [346, "privateEnterpriseNumber", "unsigned32"],
    [411, "dot1qServiceInstanceTag", "octetArray"],
    [412, "dot1qServiceInstanceId", "unsigned32"],
    [434, "mibObjectValueInteger", "signed32"],
    [529, "udpUnsafeExIDList", "basicList"],
  ];
  for (const [id, name, type] of sample) {
    it(`${id} is ${name} (${type})`, () => {
      assert.deepEqual(ipfixElement(0, id), { pen: 0, id, name, type });
      assert.deepEqual(netflow9Field(id), { pen: 0, id, name, type });
      assert.equal(elementName(0, id), name);
    });
  }

  it("411/412 are the RFC 7133 dot1q service instance elements, not TrustSec SGT", () => {
    assert.doesNotMatch(ipfixElement(0, 411)!.name, /sgt/i);
    assert.doesNotMatch(ipfixElement(0, 412)!.name, /sgt/i);
  });

  it("leaves reserved, withdrawn, NetFlow-v9-only and unassigned ids undefined", () => {
    for (const id of [0, 65, 69, 97, 105, 127, 416, 419, 534, 1000, 32767, 32768, 40000, -1, 1.5]) {
      assert.equal(ipfixElement(0, id), undefined, `id ${id}`);
    }
    assert.equal(elementName(0, 127), "0.127");
  });

  it("maps unsigned256 (RFC 9740) flag elements to octetArray", () => {
    assert.deepEqual(ipfixElement(0, 520), { pen: 0, id: 520, name: "tcpOptionsFull", type: "octetArray" });
  });

  it("has a complete, consistent table", () => {
    assert.ok(IANA_ELEMENTS.length >= 500, `only ${IANA_ELEMENTS.length} IANA elements`);
    const names = new Set<string>();
    let previous = 0;
    for (const [id, name, type] of IANA_ELEMENTS) {
      assert.ok(id > previous, `ids sorted and unique at ${id}`);
      previous = id;
      assert.ok(ABSTRACT_TYPES.has(type), `${id} ${type}`);
      assert.ok(!names.has(name), `name ${name} twice`);
      names.add(name);
      assert.equal(ipfixElement(0, id)?.name, name);
    }
    for (let id = 1; id <= 533; id++) {
      if ((id >= 65 && id <= 69) || id === 97 || (id >= 105 && id <= 127) || id === 416 || id === 419)
        continue;
      assert.ok(ipfixElement(0, id), `IANA element ${id} missing`);
    }
  });

  it("names every IANA element the corpus names", () => {
    for (const [id, name] of CORPUS_IANA) assert.equal(ipfixElement(0, id)?.name, name, `IANA ${id}`);
  });
});

describe("RFC 5103 reverse elements (pen 29305)", () => {
  it("derives the reverse name and keeps the type", () => {
    assert.deepEqual(ipfixElement(29305, 1), {
      pen: 29305,
      id: 1,
      name: "reverseOctetDeltaCount",
      type: "unsigned64",
    });
    assert.deepEqual(ipfixElement(29305, 8), {
      pen: 29305,
      id: 8,
      name: "reverseSourceIPv4Address",
      type: "ipv4Address",
    });
    assert.equal(ipfixElement(29305, 236)?.name, "reverseVRFname");
    assert.equal(elementName(29305, 152), "reverseFlowStartMilliseconds");
  });

  it("has no reverse for the elements RFC 5103 says are not reversible", () => {
    for (const id of [40, 41, 42, 130, 131, 137, 145, 148, 149, 163, 168, 173, 210, 211, 217, 239]) {
      assert.equal(ipfixElement(29305, id), undefined, `reverse of ${id}`);
      assert.equal(elementName(29305, id), `29305.${id}`);
    }
  });

  it("has no reverse for unassigned ids", () => {
    assert.equal(ipfixElement(29305, 65), undefined);
    assert.equal(ipfixElement(29305, 9999), undefined);
  });

  it("names every reverse element the corpus names", () => {
    for (const [id, name] of CORPUS_REVERSE)
      assert.equal(ipfixElement(29305, id)?.name, name, `reverse ${id}`);
  });
});

describe("NetFlow v9 field types", () => {
  it("resolves the Cisco TrustSec SGT types 34000..34003", () => {
    assert.deepEqual(netflow9Field(34000), { pen: 0, id: 34000, name: "sgt_source_tag", type: "unsigned16" });
    assert.deepEqual(netflow9Field(34001), {
      pen: 0,
      id: 34001,
      name: "sgt_destination_tag",
      type: "unsigned16",
    });
    assert.equal(netflow9Field(34002)?.type, "string");
    assert.equal(netflow9Field(34003)?.type, "string");
  });

  it("resolves the Cisco ASA NSEL types", () => {
    assert.deepEqual(netflow9Field(33000), { pen: 0, id: 33000, name: "ingress_acl_id", type: "octetArray" });
    assert.equal(netflow9Field(33002)?.type, "unsigned16");
    assert.equal(netflow9Field(40000)?.type, "string");
    assert.equal(netflow9Field(40001)?.type, "ipv4Address");
    assert.equal(netflow9Field(40005)?.name, "fw_event");
  });

  it("resolves vendor types below 32768 that IANA has not assigned (Streamcore)", () => {
    assert.deepEqual(netflow9Field(8192), {
      pen: 0,
      id: 8192,
      name: "streamcore_wan_rtt",
      type: "unsigned32",
    });
  });

  it("keeps v9 vendor types out of the IPFIX IANA view", () => {
    assert.equal(ipfixElement(0, 8192), undefined);
    assert.equal(ipfixElement(0, 34000), undefined);
  });

  it("returns undefined for unknown types", () => {
    for (const t of [0, 65, 127, 20000, 34999, 65535, 65536])
      assert.equal(netflow9Field(t), undefined, `type ${t}`);
    assert.equal(elementName(0, 34999), "0.34999");
  });
});

describe("IPFIX enterprise elements", () => {
  it("resolves Cisco PEN 9 SGT elements 1232/1233 (= 34000/34001 - 32768)", () => {
    assert.deepEqual(ipfixElement(9, 1232), {
      pen: 9,
      id: 1232,
      name: "ciscoSgtSourceTag",
      type: "unsigned16",
    });
    assert.deepEqual(ipfixElement(9, 1233), {
      pen: 9,
      id: 1233,
      name: "ciscoSgtDestinationTag",
      type: "unsigned16",
    });
  });

  it("falls back to <pen>.<id> for unknown enterprise elements", () => {
    assert.equal(ipfixElement(12345, 7), undefined);
    assert.equal(elementName(12345, 7), "12345.7");
    assert.equal(elementName(4294967295, 32767), "4294967295.32767");
    assert.equal(ipfixElement(9, 34000), undefined);
  });

  it("does not confuse PEN and id (pen 1, id 0 vs pen 0, id 65536)", () => {
    assert.equal(ipfixElement(1, 0), undefined);
    assert.equal(elementName(0, 65536), "0.65536");
  });

  it("resolves every vendor element the corpus names, with the corpus name", () => {
    assert.equal(CORPUS_VENDOR.length, 117);
    for (const [pen, id, name] of CORPUS_VENDOR) {
      const def = pen === 0 ? netflow9Field(id) : ipfixElement(pen, id);
      assert.ok(def, `${pen}/${id} ${name} missing`);
      assert.equal(def.name, name, `${pen}/${id}`);
      assert.equal(elementName(pen, id), name);
    }
  });

  it("gives every vendor element a known abstract type and a unique key", () => {
    const keys = new Set<string>();
    for (const [pen, id, name, type] of VENDOR_ELEMENTS) {
      assert.ok(ABSTRACT_TYPES.has(type), `${pen}/${id} ${type}`);
      assert.notEqual(pen, 29305);
      const key = `${pen}/${id}`;
      assert.ok(!keys.has(key), `${key} twice`);
      keys.add(key);
      const def = pen === 0 ? netflow9Field(id) : ipfixElement(pen, id);
      assert.equal(def?.name, name, key);
    }
  });
});

describe("generated table", () => {
  it("is up to date with tools/data (node tools/gen-elements.ts)", () => {
    const dir = mkdtempSync(join(tmpdir(), "elements-"));
    try {
      const out = join(dir, "elements.generated.ts");
      execFileSync(process.execPath, [join(ROOT, "tools/gen-elements.ts"), out], { stdio: "pipe" });
      const fresh = readFileSync(out, "utf8");
      const committed = readFileSync(join(ROOT, "src/protocols/elements.generated.ts"), "utf8");
      assert.ok(
        fresh === committed,
        "src/protocols/elements.generated.ts is stale: run node tools/gen-elements.ts",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
