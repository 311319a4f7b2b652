/**
 * What every sink with a write-ahead disk spool and remote delivery shares (the HTTP sinks, Kafka): a batch
 * is accepted by appending each non-empty part to the spool (one idempotency id per part, the batch's
 * oldest flow as its creation time), and its delivery state is the spool's and the delivery loop's
 * counters in one RemoteSinkStats.
 */
import { randomUUID } from "node:crypto";
import type { EncodedBatch, RemoteSinkStats } from "../sinks/types.ts";
import type { DeliveryStats } from "./delivery.ts";
import type { Spool, SpoolStats } from "./spool.ts";

/** Appends a batch's parts to the spool; resolves once every part is written. */
export async function spoolBatch(spool: Spool, batch: EncodedBatch): Promise<void> {
  const created = batch.oldestMs > 0 ? batch.oldestMs : Date.now();
  const writes: Promise<void>[] = [];
  for (const part of batch.parts) {
    if (part.records === 0) continue;
    writes.push(
      spool.append({
        id: randomUUID(),
        key: part.key,
        meta: "",
        records: part.records,
        createdMs: created,
        data: part.data,
      }),
    );
  }
  await Promise.all(writes);
}

/** The generic delivery state of a spooled remote sink; `spooling` and `skippedNoAddress` are the sink's. */
export function remoteSinkStats(
  d: DeliveryStats,
  s: SpoolStats,
  spooling: boolean,
  skippedNoAddress = 0,
): RemoteSinkStats {
  return {
    delivered: d.delivered,
    deliveredBatches: d.deliveredBatches,
    failed: d.failed,
    retried: d.retried,
    unknownOutcomes: d.unknownOutcomes,
    splits: d.splits,
    deadLettered: d.deadLettered,
    deadLetteredRecords: d.deadLetteredRecords,
    spoolBytes: s.bytes,
    spoolBatches: s.batches,
    spoolRecords: s.records,
    oldestAgeMs: spoolOldestAgeMs(s),
    breakerState: d.breakerState,
    breakerOpens: d.breakerOpens,
    droppedOnFull: s.droppedBatches,
    droppedRecordsOnFull: s.droppedRecords,
    spoolWriteErrors: s.writeErrors,
    spoolCorruptFrames: s.corruptFrames,
    spoolCorruptBytes: s.corruptBytes,
    spooling,
    lastError: d.lastError,
    skippedNoAddress,
  };
}

/** Age of the oldest unacknowledged spool entry, ms (0 when empty). */
export function spoolOldestAgeMs(s: SpoolStats): number {
  return s.oldestCreatedMs > 0 ? Math.max(0, Date.now() - s.oldestCreatedMs) : 0;
}
