/**
 * The SQLite store's schema: the `flows` column list (shared with the columnar batch format, which carries
 * the columns in this order), the DDL, the schema version and its migrations.
 *
 * Version 1 (`PRAGMA user_version`), created with CREATE ... IF NOT EXISTS:
 * - `flows`: one row per flow. `src_ip, dst_ip, src_port, dst_port, protocol, bytes, packets` are the
 *   columns existing readers use; times are ms since the epoch (integers); MACs "aa:bb:cc:dd:ee:ff";
 *   `src_net`/`dst_net` are CIDR text like GoFlow2's ("10.0.0.0/24"); absent values (empty address, MAC 0,
 *   prefix length 0, no SGT...) are NULL; `extra` is the JSON object of the other decoded elements or NULL;
 *   `post_nat_src_ip/_dst_ip/_src_port/_dst_port` (NAT) and `reverse_bytes/_packets` (RFC 5103 biflows)
 *   are NULL unless the exporter sent them; `in_vrf_id`, `out_vrf_id` (ingressVRFID/egressVRFID) and what
 *   options data resolved (`in_vrf_name`, `out_vrf_name`, `mpls_vpn_rd` as RFC 4364 text,
 *   `application_name`) are NULL when unknown (all these columns are added to an older table by ALTER
 *   TABLE).
 *   Indexed by `time_received`; by `(exporter, time_received)` too only with `exporterIndex: true` (that
 *   index costs ~30 % of the insert rate; a database that already has it keeps it).
 * - `exporters`: per exporter first/last seen (ms), flows, bytes, packets; upserted with every batch.
 * - `interface_counters`: sFlow generic interface counters (retention applies by `time`).
 *
 * Counters: bytes/packets are stored exactly as INTEGER up to 2^63−1 (SQLite's int64). A uint64 above
 * 2^63−1 cannot be an SQLite INTEGER (text into an INTEGER column would turn into a lossy REAL), so the
 * column saturates at 2^63−1 and the exact decimal goes into `extra` under "bytes"/"packets"
 * (reverse_bytes/reverse_packets are stored the same way; a saturated one is counted, not copied to extra).
 * The `exporters` sums add in SQLite (an overflow past 2^63−1 there becomes REAL).
 *
 * Migrations: a column added after version 1 was released is appended to FLOW_COLUMNS (and TEXT_COLUMNS
 * when it is text; ./columnar.ts says where the encoder writes it); `migrateSchema` adds it to an older
 * table by ALTER TABLE (NULL in the existing rows). Additive, so the version stays 1 and an older
 * collector still writes to the table (it names its columns). So far: the NAT and biflow columns (issue
 * 19) and the options-dictionary columns (issue 18).
 */
import type { DatabaseSync } from "node:sqlite";

export const SCHEMA_VERSION = 1;
/** The largest SQLite INTEGER (int64); counters above it are stored saturated. */
export const INT64_MAX = 9223372036854775807n;

/** Columns of `flows`, in table order (the columnar batch's blocks follow it). */
export const FLOW_COLUMNS = [
  "time_received",
  "time_flow_start",
  "time_flow_end",
  "exporter",
  "type",
  "sequence_num",
  "sampling_rate",
  "src_ip",
  "dst_ip",
  "src_port",
  "dst_port",
  "protocol",
  "etype",
  "bytes",
  "packets",
  "in_if",
  "out_if",
  "src_mac",
  "dst_mac",
  "src_vlan",
  "dst_vlan",
  "vlan_id",
  "ip_tos",
  "tcp_flags",
  "icmp_type",
  "icmp_code",
  "src_as",
  "dst_as",
  "next_hop",
  "src_net",
  "dst_net",
  "src_sgt",
  "dst_sgt",
  "flow_direction",
  "in_if_name",
  "out_if_name",
  "observation_domain_id",
  "extra",
  // issue 19: added to an existing table by ALTER TABLE (see migrateSchema); NULL when the exporter sent none
  "post_nat_src_ip",
  "post_nat_dst_ip",
  "post_nat_src_port",
  "post_nat_dst_port",
  "reverse_bytes",
  "reverse_packets",
  // issue 18: the options dictionaries' fields, added the same way; NULL when unknown
  "in_vrf_id",
  "out_vrf_id",
  "in_vrf_name",
  "out_vrf_name",
  "mpls_vpn_rd",
  "application_name",
] as const;

/** Columns of `flows` stored as TEXT (the others are INTEGER). */
export const TEXT_COLUMNS: ReadonlySet<string> = new Set([
  "exporter",
  "type",
  "src_ip",
  "dst_ip",
  "src_mac",
  "dst_mac",
  "next_hop",
  "src_net",
  "dst_net",
  "in_if_name",
  "out_if_name",
  "extra",
  "post_nat_src_ip",
  "post_nat_dst_ip",
  "in_vrf_name",
  "out_vrf_name",
  "mpls_vpn_rd",
  "application_name",
]);

/** The DDL of version 1 (every statement IF NOT EXISTS). */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS flows (
  id INTEGER PRIMARY KEY,
  ${FLOW_COLUMNS.map((c) => `${c} ${TEXT_COLUMNS.has(c) ? "TEXT" : "INTEGER"}${c === "time_received" || c === "exporter" ? " NOT NULL" : ""}`).join(",\n  ")}
);
CREATE INDEX IF NOT EXISTS flows_time_received ON flows(time_received);
CREATE TABLE IF NOT EXISTS exporters (
  exporter TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  flows INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  packets INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS interface_counters (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  agent TEXT NOT NULL,
  sub_agent_id INTEGER,
  if_index INTEGER NOT NULL,
  if_type INTEGER,
  if_speed INTEGER,
  if_direction INTEGER,
  if_admin_up INTEGER,
  if_oper_up INTEGER,
  in_octets INTEGER,
  in_ucast_pkts INTEGER,
  in_multicast_pkts INTEGER,
  in_broadcast_pkts INTEGER,
  in_discards INTEGER,
  in_errors INTEGER,
  in_unknown_protos INTEGER,
  out_octets INTEGER,
  out_ucast_pkts INTEGER,
  out_multicast_pkts INTEGER,
  out_broadcast_pkts INTEGER,
  out_discards INTEGER,
  out_errors INTEGER,
  promiscuous INTEGER
);
CREATE INDEX IF NOT EXISTS interface_counters_time ON interface_counters(time);
CREATE INDEX IF NOT EXISTS interface_counters_agent_if ON interface_counters(agent, if_index, time);
`;

/**
 * Brings an open database to this schema in one transaction: creates what is missing, adds the columns
 * of FLOW_COLUMNS an older `flows` table lacks (see the module comment), the exporter index when asked,
 * and sets the version. Throws when the database's version is newer than this collector's.
 */
export function migrateSchema(db: DatabaseSync, exporterIndex: boolean): void {
  const version = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  if (version > SCHEMA_VERSION) {
    throw new Error(`schema version ${version} is newer than this collector's (${SCHEMA_VERSION})`);
  }
  db.exec("BEGIN");
  try {
    db.exec(SCHEMA);
    addMissingColumns(db);
    if (exporterIndex) {
      db.exec("CREATE INDEX IF NOT EXISTS flows_exporter_time ON flows(exporter, time_received)");
    }
    if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}

/** The columns of FLOW_COLUMNS an older `flows` table lacks, added by ALTER TABLE (NULL in its rows). */
function addMissingColumns(db: DatabaseSync): void {
  const have = new Set(
    (db.prepare("PRAGMA table_info(flows)").all() as { name: string }[]).map((c) => c.name),
  );
  for (const c of FLOW_COLUMNS) {
    if (!have.has(c))
      db.exec(`ALTER TABLE flows ADD COLUMN ${c} ${TEXT_COLUMNS.has(c) ? "TEXT" : "INTEGER"}`);
  }
}
