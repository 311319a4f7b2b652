/**
 * /health (DESIGN §5): `status` is "starting" (503) until every worker listens on every port, "ok" when
 * all is well, "degraded" (200) when a worker is down, data was lost in the last few minutes (any loss
 * reason of src/ops/loss.ts: kernel drops, export sequence gaps, missing templates, sink drops...), a sink
 * reports a lasting failure (a closed stdout pipe), a sink dropped data recently or its queue is nearly
 * full, a remote sink (HTTP output, agent relay) is spooling (its destination fails: data waits on disk for
 * retries or an open breaker), or is behind (its spool holds more than `backlogBatches` or its oldest unsent
 * batch is older than `backlogAgeMs`, even while every request succeeds, as with a slow backend), or found
 * corrupt spool frames since start (until a restart acknowledges them); and
 * "degraded" with 503 while shutting down.
 */
import type { SinkQueueStats } from "../pipeline/queue.ts";

export type HealthStatus = "ok" | "starting" | "degraded";
export type Phase = "starting" | "running" | "stopping";

export interface HealthInputs {
  phase: Phase;
  workersConfigured: number;
  workersListening: number;
  sinks: readonly SinkQueueStats[];
  nowMs: number;
  /** A sink that dropped within this window makes the service degraded. */
  recentMs?: number;
  /** Remote sinks and the agent relay: spooling means their destination is failing. */
  remote?: ReadonlyArray<RemoteHealth>;
  /** Recent loss, one line per reason (LossMonitor.describe). */
  loss?: readonly string[];
  /** Sinks with a lasting failure (e.g. "output closed (broken pipe)"). */
  sinkFailures?: ReadonlyArray<{ name: string; failure: string }>;
  /** A remote sink is behind when its oldest unsent batch is older than this, ms (default 30 s)... */
  backlogAgeMs?: number;
  /** ...or its spool holds more batches than this (default 100). */
  backlogBatches?: number;
}

export interface RemoteHealth {
  name: string;
  spooling: boolean;
  /** Batches waiting in the spool. */
  spoolBatches: number;
  /** Flow records waiting in the spool (0 where unknown). */
  spoolRecords?: number;
  /** Age of the oldest unsent batch, ms (0 when empty or unknown). */
  oldestAgeMs?: number;
  lastError: string;
  /** Damaged spool regions skipped since start (degraded until a restart acknowledges them). */
  corruptFrames?: number;
  corruptBytes?: number;
  /** An unhealthy condition besides spooling (e.g. a Kafka topic refusing us), "" or absent when none. */
  problem?: string;
}

export interface HealthVerdict {
  status: HealthStatus;
  httpStatus: 200 | 503;
  reasons: string[];
}

export function evaluateHealth(i: HealthInputs): HealthVerdict {
  if (i.phase === "starting")
    return { status: "starting", httpStatus: 503, reasons: ["listeners not ready"] };
  if (i.phase === "stopping") return { status: "degraded", httpStatus: 503, reasons: ["shutting down"] };
  const reasons: string[] = [];
  if (i.workersListening < i.workersConfigured) {
    reasons.push(
      `${i.workersConfigured - i.workersListening} of ${i.workersConfigured} receive workers down`,
    );
  }
  const recent = i.recentMs ?? 60_000;
  for (const s of i.sinks) {
    if (s.lastDropMs > 0 && i.nowMs - s.lastDropMs < recent)
      reasons.push(`sink ${s.name} dropped data recently`);
    else if (s.length >= s.capacity * 0.8) reasons.push(`sink ${s.name} queue nearly full`);
  }
  for (const f of i.sinkFailures ?? []) reasons.push(`sink ${f.name} failed: ${f.failure}`);
  const backlogAge = i.backlogAgeMs ?? 30_000;
  const backlogBatches = i.backlogBatches ?? 100;
  for (const r of i.remote ?? []) {
    if (r.spooling) {
      reasons.push(
        `sink ${r.name} spooling: ${r.spoolBatches} batches wait on disk for delivery${r.lastError ? ` (last error: ${r.lastError})` : ""}`,
      );
    } else if ((r.oldestAgeMs ?? 0) > backlogAge || r.spoolBatches > backlogBatches) {
      reasons.push(
        `sink ${r.name} behind: ${r.spoolBatches} batches${r.spoolRecords ? ` (${r.spoolRecords} flows)` : ""} wait for delivery, the oldest for ${Math.round((r.oldestAgeMs ?? 0) / 1000)} s`,
      );
    }
    if (r.corruptFrames) {
      reasons.push(
        `sink ${r.name} spool: ${r.corruptFrames} corrupt frames (${r.corruptBytes ?? 0} bytes) skipped and moved to quarantine; restart to acknowledge`,
      );
    }
    if (r.problem) reasons.push(`sink ${r.name}: ${r.problem}`);
  }
  reasons.push(...(i.loss ?? []));
  if (i.workersListening === 0) return { status: "degraded", httpStatus: 503, reasons };
  return { status: reasons.length ? "degraded" : "ok", httpStatus: 200, reasons };
}
