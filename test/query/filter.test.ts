import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { canonicalAddress, inNetwork, maskAddress, parseAddress } from "../../src/query/address.ts";
import {
  compileFilter,
  FilterError,
  type FlowRow,
  formatFilterError,
  parseFilter,
  registerQueryFunctions,
  toPredicate,
  toSql,
} from "../../src/query/filter.ts";

function sql(text: string): { sql: string; params: Array<number | string> } {
  return toSql(parseFilter(text));
}

function fails(text: string, position: number, message: RegExp): void {
  assert.throws(
    () => parseFilter(text),
    (err: unknown) => {
      assert.ok(err instanceof FilterError, `not a FilterError: ${String(err)}`);
      assert.equal(err.position, position, `position for ${JSON.stringify(text)}: ${err.message}`);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe("addresses", () => {
  it("parses and writes IPv4 and IPv6 like the SQLite sink", () => {
    assert.equal(canonicalAddress("10.0.0.1"), "10.0.0.1");
    assert.equal(canonicalAddress("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
    assert.equal(canonicalAddress("::"), "::");
    assert.equal(canonicalAddress("::1"), "::1");
    assert.equal(canonicalAddress("fe80::1:0:0:2"), "fe80::1:0:0:2");
    assert.equal(canonicalAddress("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
    assert.equal(canonicalAddress("64:ff9b::192.0.2.1"), "64:ff9b::c000:201");
    for (const bad of [
      "1.2.3",
      "1.2.3.256",
      "1.2.3.4.5",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8:9",
      "x",
      "",
    ]) {
      assert.equal(parseAddress(bad), null, bad);
    }
  });

  it("tests CIDR membership on bit boundaries", () => {
    const net = { bytes: maskAddress(parseAddress("172.16.0.0")!, 12), prefix: 12 };
    assert.equal(inNetwork("172.16.0.1", net), true);
    assert.equal(inNetwork("172.31.255.255", net), true);
    assert.equal(inNetwork("172.32.0.0", net), false);
    assert.equal(inNetwork("172.15.255.255", net), false);
    assert.equal(inNetwork("2001:db8::1", net), false);
    assert.equal(inNetwork(null, net), false);
    const all = { bytes: new Uint8Array(4), prefix: 0 };
    assert.equal(inNetwork("255.255.255.255", all), true);
    const v6 = { bytes: maskAddress(parseAddress("2001:db8::")!, 33), prefix: 33 };
    assert.equal(inNetwork("2001:db8:7fff::1", v6), true);
    assert.equal(inNetwork("2001:db8:8000::1", v6), false);
  });
});

describe("filter parser", () => {
  it("compiles every term to parameterized SQL", () => {
    assert.deepEqual(sql("proto tcp"), { sql: "IFNULL(protocol, 0) = ?", params: [6] });
    assert.deepEqual(sql("udp"), { sql: "IFNULL(protocol, 0) = ?", params: [17] });
    assert.deepEqual(sql("proto 47"), { sql: "IFNULL(protocol, 0) = ?", params: [47] });
    assert.deepEqual(sql("PROTO ICMP6"), { sql: "IFNULL(protocol, 0) = ?", params: [58] });
    assert.deepEqual(sql("dst port 443"), { sql: "IFNULL(dst_port, 0) = ?", params: [443] });
    assert.deepEqual(sql("port 53"), {
      sql: "(IFNULL(src_port, 0) = ? OR IFNULL(dst_port, 0) = ?)",
      params: [53, 53],
    });
    assert.deepEqual(sql("src port > 1023"), { sql: "IFNULL(src_port, 0) > ?", params: [1023] });
    assert.deepEqual(sql("src port gt 1023"), { sql: "IFNULL(src_port, 0) > ?", params: [1023] });
    assert.deepEqual(sql("host 10.0.0.1"), {
      sql: "(src_ip IS ? OR dst_ip IS ?)",
      params: ["10.0.0.1", "10.0.0.1"],
    });
    assert.deepEqual(sql("src ip 2001:DB8::0:1"), { sql: "src_ip IS ?", params: ["2001:db8::1"] });
    assert.deepEqual(sql("src net 10.1.2.3/8"), { sql: "clarion_in_net(src_ip, ?)", params: ["10.0.0.0/8"] });
    assert.deepEqual(sql("net 2001:db8::/32"), {
      sql: "(clarion_in_net(src_ip, ?) OR clarion_in_net(dst_ip, ?))",
      params: ["2001:db8::/32", "2001:db8::/32"],
    });
    assert.deepEqual(sql("exporter 192.0.2.1"), { sql: "exporter IS ?", params: ["192.0.2.1"] });
    assert.deepEqual(sql("exporter core-rtr1"), { sql: "exporter IS ?", params: ["core-rtr1"] });
    assert.deepEqual(sql("in_if 3"), { sql: "IFNULL(in_if, 0) = ?", params: [3] });
    assert.deepEqual(sql("out if != 4"), { sql: "IFNULL(out_if, 0) != ?", params: [4] });
    assert.deepEqual(sql("if 5"), { sql: "(IFNULL(in_if, 0) = ? OR IFNULL(out_if, 0) = ?)", params: [5, 5] });
    assert.deepEqual(sql("dst as 64512"), { sql: "IFNULL(dst_as, 0) = ?", params: [64512] });
    assert.deepEqual(sql("src sgt 10"), { sql: "IFNULL(src_sgt, 0) = ?", params: [10] });
    assert.deepEqual(sql("bytes >= 1k"), { sql: "IFNULL(bytes, 0) >= ?", params: [1000] });
    assert.deepEqual(sql("packets < 2M"), { sql: "IFNULL(packets, 0) < ?", params: [2_000_000] });
    assert.deepEqual(sql("bytes > 3g"), { sql: "IFNULL(bytes, 0) > ?", params: [3e9] });
    assert.deepEqual(sql("tos 184"), { sql: "IFNULL(ip_tos, 0) = ?", params: [184] });
    assert.deepEqual(sql("vlan 10"), { sql: "IFNULL(vlan_id, 0) = ?", params: [10] });
    assert.deepEqual(sql("icmp_type 8"), { sql: "IFNULL(icmp_type, 0) = ?", params: [8] });
    assert.deepEqual(sql("ipv6"), { sql: "IFNULL(etype, 0) = ?", params: [0x86dd] });
    assert.deepEqual(sql("inet"), { sql: "IFNULL(etype, 0) = ?", params: [0x0800] });
    assert.deepEqual(sql("vrf RED"), {
      sql: "(in_vrf_name IS ? OR out_vrf_name IS ?)",
      params: ["RED", "RED"],
    });
    assert.deepEqual(sql("in vrf 7"), { sql: "(in_vrf_name IS ? OR in_vrf_id IS ?)", params: ["7", 7] });
    assert.deepEqual(sql("out_vrf Cust:1"), { sql: "out_vrf_name IS ?", params: ["Cust:1"] });
    assert.deepEqual(sql("app ms-office-365"), { sql: "application_name IS ?", params: ["ms-office-365"] });
    assert.deepEqual(sql("application 443"), { sql: "application_name IS ?", params: ["443"] });
  });

  it("binds and/or/not with the usual precedence, parentheses and symbols", () => {
    const issue = sql("proto tcp and dst port 443 and not src net 10.0.0.0/8");
    assert.equal(
      issue.sql,
      "((IFNULL(protocol, 0) = ? AND IFNULL(dst_port, 0) = ?) AND (NOT clarion_in_net(src_ip, ?)))",
    );
    assert.deepEqual(issue.params, [6, 443, "10.0.0.0/8"]);
    assert.equal(sql("tcp or udp and port 53").sql.startsWith("(IFNULL(protocol, 0) = ? OR (IFNULL"), true);
    assert.equal(
      sql("(tcp or udp) and dst port 53").sql,
      "((IFNULL(protocol, 0) = ? OR IFNULL(protocol, 0) = ?) AND IFNULL(dst_port, 0) = ?)",
    );
    assert.deepEqual(sql("!tcp && (udp || icmp)"), sql("not tcp and (udp or icmp)"));
    assert.deepEqual(sql("not not tcp"), { sql: "(NOT (NOT IFNULL(protocol, 0) = ?))", params: [6] });
  });

  it("never puts a value into the SQL text", () => {
    for (const f of ["exporter abc_def", "host 10.9.8.7", "net 10.0.0.0/8", "port 4711", "bytes > 99999"]) {
      const c = sql(f);
      assert.doesNotMatch(c.sql, /abc_def|10\.|4711|99999/, f);
    }
    // Quotes, semicolons and comment markers are not part of the language at all.
    fails("exporter x';DROP TABLE flows", 10, /unexpected character "'"/);
    fails("host 1.2.3.4 -- comment", 13, /expected "and", "or" or the end/);
  });

  it("rejects bad input with the position of the problem", () => {
    fails("", 0, /empty filter/);
    fails("   ", 3, /empty filter/);
    fails("proto tcp and", 13, /expected a term.*end of the filter/);
    fails("proto tcp and dst port x", 23, /expected a number after "port"/);
    fails("proto tcpx", 6, /unknown protocol/);
    fails("proto 256", 6, /out of range/);
    fails("port 70000", 5, /out of range for "port" \(0-65535\)/);
    fails("port 1k", 5, /expected a number after "port"/);
    fails("src net 10.0.0.0/33", 17, /bad prefix length "33"/);
    fails("src net 2001:db8::/129", 19, /bad prefix length "129" \(0-128 for IPv6\)/);
    fails("net 10.0.0/8", 4, /expected a network/);
    fails("host 300.1.1.1", 5, /IPv4 or IPv6 address/);
    fails("src proto tcp", 4, /expected host, ip, net, port, as or sgt after "src"/);
    fails("(tcp or udp", 11, /expected "\)" to close the "\(" at column 1/);
    fails("tcp)", 3, /unbalanced "\)"/);
    fails("tcp udp", 4, /expected "and", "or" or the end/);
    fails("frobnicate 3", 0, /unknown term/);
    fails("in 3", 3, /expected "if" or "vrf" after "in"/);
    fails("out vrf", 7, /expected a VRF name or id, found the end/);
    fails("app (", 4, /expected an application name, found "\("/);
    fails("src vrf RED", 4, /expected host, ip, net, port, as or sgt after "src"/);
    fails("bytes > ", 8, /expected a number \(k, m, g suffixes allowed\)/);
    fails("port == == 3", 8, /expected a number/);
    fails("tcp and $x", 8, /unexpected character "\$"/);
    fails(`${"(".repeat(100)}tcp${")".repeat(100)}`, 64, /nested deeper than 64/);
    assert.throws(() => parseFilter("tcp or ".repeat(1000)), /longer than 4096/);
  });

  it("formats an error with a caret under the column", () => {
    const text = "proto tcp and dst port x";
    try {
      parseFilter(text);
      assert.fail("parsed");
    } catch (err) {
      assert.ok(err instanceof FilterError);
      assert.equal(
        formatFilterError(text, err),
        `expected a number after "port", found "x" (at column 24)\n  ${text}\n  ${" ".repeat(23)}^`,
      );
    }
  });

  it("treats an empty filter as none", () => {
    assert.equal(compileFilter(undefined), null);
    assert.equal(compileFilter("  "), null);
    assert.ok(compileFilter("tcp"));
  });
});

describe("SQL and JavaScript compilations agree", () => {
  const rows: FlowRow[] = [
    // biome-ignore format: a table
    { id: 1, exporter: "192.0.2.1", src_ip: "10.0.0.1", dst_ip: "198.51.100.7", src_port: 51000, dst_port: 443, protocol: 6, bytes: 5000, packets: 10, in_if: 1, out_if: 2, src_as: 0, dst_as: 15169, src_sgt: 10, dst_sgt: null, ip_tos: 0, vlan_id: 0, icmp_type: 0, icmp_code: 0, etype: 0x800 },
    {
      id: 2,
      exporter: "192.0.2.1",
      src_ip: "198.51.100.7",
      dst_ip: "10.0.0.1",
      src_port: 443,
      dst_port: 51000,
      protocol: 6,
      bytes: 900000,
      packets: 700,
      in_if: 2,
      out_if: 1,
      src_as: 15169,
      dst_as: null,
      src_sgt: null,
      dst_sgt: 10,
      ip_tos: 184,
      vlan_id: 10,
      icmp_type: null,
      icmp_code: null,
      etype: 0x800,
    },
    {
      id: 3,
      exporter: "192.0.2.2",
      src_ip: "172.20.1.1",
      dst_ip: "8.8.8.8",
      src_port: 5353,
      dst_port: 53,
      protocol: 17,
      bytes: 80,
      packets: 1,
      in_if: 3,
      out_if: 4,
      src_as: 64512,
      dst_as: 15169,
      src_sgt: null,
      dst_sgt: null,
      ip_tos: 0,
      vlan_id: null,
      icmp_type: 0,
      icmp_code: 0,
      etype: 0x800,
    },
    {
      id: 4,
      exporter: "2001:db8::ff",
      src_ip: "2001:db8::1",
      dst_ip: "2001:db8:1::2",
      src_port: 0,
      dst_port: 0,
      protocol: 58,
      bytes: 120,
      packets: 2,
      in_if: 0,
      out_if: 0,
      src_as: null,
      dst_as: null,
      src_sgt: null,
      dst_sgt: null,
      ip_tos: 0,
      vlan_id: 0,
      icmp_type: 128,
      icmp_code: 0,
      etype: 0x86dd,
    },
    {
      id: 5,
      exporter: "192.0.2.2",
      src_ip: null,
      dst_ip: null,
      src_port: null,
      dst_port: null,
      protocol: null,
      bytes: null,
      packets: null,
      in_if: null,
      out_if: null,
      src_as: null,
      dst_as: null,
      src_sgt: null,
      dst_sgt: null,
      ip_tos: null,
      vlan_id: null,
      icmp_type: null,
      icmp_code: null,
      etype: null,
    },
    {
      id: 6,
      exporter: "192.0.2.1",
      src_ip: "10.255.0.9",
      dst_ip: "172.31.255.255",
      src_port: 22,
      dst_port: 60000,
      protocol: 6,
      bytes: 1_000_000,
      packets: 1000,
      in_if: 7,
      out_if: 8,
      src_as: 0,
      dst_as: 0,
      src_sgt: 5,
      dst_sgt: 6,
      ip_tos: 0,
      vlan_id: 20,
      icmp_type: 0,
      icmp_code: 0,
      etype: 0x800,
    },
  ];
  const db = new DatabaseSync(":memory:");
  registerQueryFunctions(db);
  const cols = Object.keys(rows[0]!);
  db.exec(
    `CREATE TABLE flows (${cols.map((c) => `${c} ${["exporter", "src_ip", "dst_ip"].includes(c) ? "TEXT" : "INTEGER"}`).join(", ")})`,
  );
  const insert = db.prepare(`INSERT INTO flows VALUES (${cols.map(() => "?").join(", ")})`);
  for (const r of rows) insert.run(...cols.map((c) => r[c] as number | string | null));

  const filters: Array<[string, number[]]> = [
    ["proto tcp", [1, 2, 6]],
    ["udp or icmp6", [3, 4]],
    ["dst port 443", [1]],
    ["port 443", [1, 2]],
    ["port != 443", [1, 2, 3, 4, 5, 6]],
    ["not port 443", [3, 4, 5, 6]],
    ["src port < 1024", [2, 4, 5, 6]],
    ["host 10.0.0.1", [1, 2]],
    ["src host 10.0.0.1", [1]],
    ["dst ip 2001:db8:1:0::2", [4]],
    ["net 10.0.0.0/8", [1, 2, 6]],
    ["src net 10.0.0.0/8", [1, 6]],
    ["not src net 10.0.0.0/8", [2, 3, 4, 5]],
    ["dst net 172.16.0.0/12", [6]],
    ["net 172.16.0.0/12", [3, 6]],
    ["net 2001:db8::/48", [4]],
    ["net 2001:db8::/32", [4]],
    ["net 0.0.0.0/0", [1, 2, 3, 6]],
    ["exporter 192.0.2.2", [3, 5]],
    ["exporter 2001:DB8:0::ff", [4]],
    ["in_if 2 or out_if 4", [2, 3]],
    ["if 1", [1, 2]],
    ["dst as 15169", [1, 3]],
    ["as 0", [1, 2, 4, 5, 6]],
    ["src sgt 10 or dst sgt 10", [1, 2]],
    ["sgt 0", [1, 2, 3, 4, 5]],
    ["not sgt 0", [6]],
    ["bytes > 1k", [1, 2, 6]],
    ["bytes >= 1m", [6]],
    ["packets <= 2", [3, 4, 5]],
    ["tos 184", [2]],
    ["vlan 0", [1, 3, 4, 5]],
    ["icmp_type 128", [4]],
    ["ipv6", [4]],
    ["ipv4 and not tcp", [3]],
    ["proto tcp and dst port 443 and not src net 10.0.0.0/8", []],
    ["proto tcp and (dst port 443 or src port 443) and not src net 10.0.0.0/8", [2]],
    ["not (tcp or udp)", [4, 5]],
    ["!(tcp || udp) && !ipv6", [5]],
  ];

  for (const [text, expected] of filters) {
    it(text, () => {
      const node = parseFilter(text);
      const c = toSql(node);
      const got = db
        .prepare(`SELECT id FROM flows WHERE ${c.sql} ORDER BY id`)
        .all(...c.params)
        .map((r) => Number(r.id));
      assert.deepEqual(got, expected, `SQL ${c.sql}`);
      const p = toPredicate(node);
      assert.deepEqual(
        rows.filter(p).map((r) => r.id),
        expected,
        "predicate",
      );
    });
  }
});

describe("VRF and application terms: SQL and JavaScript agree (issue 18)", () => {
  // biome-ignore format: a table
  const rows: FlowRow[] = [
    { id: 1, in_vrf_id: 1, out_vrf_id: 3, in_vrf_name: "CUST-A", out_vrf_name: "INET", application_name: "https" },
    { id: 2, in_vrf_id: 0, out_vrf_id: 7, in_vrf_name: null, out_vrf_name: null, application_name: "dns" },
    { id: 3, in_vrf_id: null, out_vrf_id: null, in_vrf_name: null, out_vrf_name: null, application_name: null },
    { id: 4, in_vrf_id: 7, out_vrf_id: 1, in_vrf_name: "7", out_vrf_name: "CUST-A", application_name: "ssh" },
  ];
  const db = new DatabaseSync(":memory:");
  db.exec(
    "CREATE TABLE flows (id INTEGER, in_vrf_id INTEGER, out_vrf_id INTEGER, in_vrf_name TEXT, out_vrf_name TEXT, application_name TEXT)",
  );
  const insert = db.prepare("INSERT INTO flows VALUES (?, ?, ?, ?, ?, ?)");
  for (const r of rows)
    insert.run(
      r.id as number,
      ...(["in_vrf_id", "out_vrf_id", "in_vrf_name", "out_vrf_name", "application_name"].map((c) => r[c]) as (
        | number
        | string
        | null
      )[]),
    );

  const filters: Array<[string, number[]]> = [
    ["vrf CUST-A", [1, 4]],
    ["in vrf CUST-A", [1]],
    ["out vrf CUST-A", [4]],
    ["out_vrf INET", [1]],
    ["vrf 7", [2, 4]],
    ["in_vrf 7", [4]],
    ["vrf 0", [2]],
    ["not vrf 0", [1, 3, 4]],
    ["in vrf 3", []],
    ["vrf cust-a", []],
    ["app dns or app ssh", [2, 4]],
    ["not app https", [2, 3, 4]],
    ["vrf 1 and application https", [1]],
  ];
  for (const [text, expected] of filters) {
    it(text, () => {
      const node = parseFilter(text);
      const c = toSql(node);
      const got = db
        .prepare(`SELECT id FROM flows WHERE ${c.sql} ORDER BY id`)
        .all(...c.params)
        .map((r) => Number(r.id));
      assert.deepEqual(got, expected, `SQL ${c.sql}`);
      assert.deepEqual(
        rows.filter(toPredicate(node)).map((r) => r.id),
        expected,
        "predicate",
      );
    });
  }
});
