/**
 * /health (DESIGN §5): `status` is "starting" (503) until every worker listens on every port, "ok" when
 * all is well, "degraded" (200) when a worker is down, a sink dropped data recently or its queue is
 * nearly full, or a remote sink (HTTP output, agent relay) is spooling (its destination fails: data waits
 * on disk for retries or an open breaker), and "degraded" with 503 while shutting down.
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
}

export interface RemoteHealth {
  name: string;
  spooling: boolean;
  /** Batches waiting in the spool. */
  spoolBatches: number;
  lastError: string;
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
  for (const r of i.remote ?? []) {
    if (r.spooling) {
      reasons.push(
        `sink ${r.name} spooling: ${r.spoolBatches} batches wait on disk for delivery${r.lastError ? ` (last error: ${r.lastError})` : ""}`,
      );
    }
    if (r.problem) reasons.push(`sink ${r.name}: ${r.problem}`);
  }
  if (i.workersListening === 0) return { status: "degraded", httpStatus: 503, reasons };
  return { status: reasons.length ? "degraded" : "ok", httpStatus: 200, reasons };
}
