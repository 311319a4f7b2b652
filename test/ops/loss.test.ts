/**
 * LossMonitor (src/ops/loss.ts): cumulative counters turned into loss by reason; a falling counter starts
 * again (or only rebases); one warning per reason a minute naming what, where and the remedy, the losses in
 * between summed into the next; the recent window for /health.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LOSS_REASONS, LossMonitor } from "../../src/ops/loss.ts";

function setup() {
  let now = 1_000_000;
  const lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const m = new LossMonitor({
    logger: { warn: (obj, msg) => void lines.push({ obj: obj as Record<string, unknown>, msg }) },
    now: () => now,
  });
  return { m, lines, advance: (ms: number) => (now += ms) };
}

describe("LossMonitor", () => {
  it("counts increments of cumulative counters per reason; a restarted source counts anew; rebase does not", () => {
    const { m } = setup();
    m.observe("sequence_gap_flows", "10.0.0.1", 30, { source: "w0" });
    m.observe("sequence_gap_flows", "10.0.0.1", 30, { source: "w0" });
    m.observe("sequence_gap_flows", "10.0.0.1", 45, { source: "w0" });
    m.observe("sequence_gap_flows", "10.0.0.1", 5, { source: "w0" }); // restarted worker: 5 new
    m.observe("kernel_drops", "udp:2055", 100, { rebase: true });
    m.observe("kernel_drops", "udp:2055", 40, { rebase: true }); // a socket closed: new baseline
    m.observe("kernel_drops", "udp:2055", 50, { rebase: true });
    const t = m.totals();
    assert.equal(t.sequence_gap_flows, 50);
    assert.equal(t.kernel_drops, 110);
    assert.deepEqual(Object.keys(t).sort(), Object.keys(LOSS_REASONS).sort());
  });

  it("warns at most once a minute per reason, with what, where and the remedy; sums what came between", () => {
    const { m, lines, advance } = setup();
    m.add("kernel_drops", "udp:2055", 10);
    m.add("kernel_drops", "udp:4739", 5);
    m.add("missing_template", "192.0.2.1 v9 domain 0 template 256", 1);
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.obj.reason, "kernel_drops");
    assert.equal(lines[0]!.obj.lost, 10);
    assert.deepEqual(lines[0]!.obj.where, ["udp:2055"]);
    assert.match(
      lines[0]!.msg,
      /^loss: 10 datagrams dropped by the kernel .*\(udp:2055\); remedy: .*rmem_max/,
    );
    assert.match(
      lines[1]!.msg,
      /data sets dropped because their template never arrived \(192\.0\.2\.1 v9 domain 0 template 256\)/,
    );
    advance(30_000);
    m.flush();
    assert.equal(lines.length, 2);
    advance(30_000);
    m.flush();
    assert.equal(lines.length, 3);
    assert.equal(lines[2]!.obj.lost, 5);
    assert.deepEqual(lines[2]!.obj.where, ["udp:4739"]);
  });

  it("reports the recent window for /health, then forgets it", () => {
    const { m, advance } = setup();
    m.add("queue_full", "jsonl:-", 100);
    const [r] = m.recent();
    assert.equal(r!.reason, "queue_full");
    assert.equal(r!.amount, 100);
    assert.match(
      LossMonitor.describe(r!, m.recentMs),
      /^loss in the last 5 min \(queue_full\): 100 flows dropped: output queue full \(jsonl:-\)/,
    );
    advance(5 * 60_000 + 1);
    assert.deepEqual(m.recent(), []);
    assert.equal(m.totals().queue_full, 100);
  });
});
