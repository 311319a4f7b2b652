/**
 * /ui for real: softflowd (NetFlow v9 and IPFIX) exports a generated capture to the real CLI with an
 * SQLite output; headless Debian Chromium (puppeteer-core) opens /ui and must show both exporters, the
 * top talkers as the SQLite store has them (checked with an independent SQL query), the charts, a filter
 * applied and a bad filter's position. A screenshot is saved (path in the test's diagnostics; set
 * CLARION_TEST_ARTIFACTS to choose the directory). The page's JS heap is measured over many refreshes.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import puppeteer from "puppeteer-core";
import { runSoftflowd } from "../helpers/exporters.ts";
import { dirs, loopbackArgs, sleep, startService, waitFor } from "../helpers/service.ts";
import { requireTool } from "../helpers/tools.ts";
import { makeTrafficPcap } from "../helpers/traffic.ts";

async function sendAll(from: string, datagrams: Buffer[], port: number): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, from, () => resolve()));
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) =>
        s.send(d, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
      );
      await sleep(1);
    }
  } finally {
    s.close();
  }
}

const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("/ui in headless Chromium", () => {
  test("shows the exporters and top talkers of flows softflowd exported; heap stays flat", async (t) => {
    const chromium = requireTool(t, "chromium");
    if (!chromium || !requireTool(t, "softflowd")) return;
    const dir = mkdtempSync(join(tmpdir(), "clarion-ui-"));
    dirs.push(dir);
    const traffic = makeTrafficPcap({ flows: 40, seed: 5 });
    const pcapPath = join(dir, "traffic.pcap");
    writeFileSync(pcapPath, traffic.pcap);
    const exports: Record<string, Buffer[]> = {
      "127.0.0.21": await runSoftflowd(pcapPath, { version: 9, timeoutMs: 15_000 }),
      "127.0.0.22": await runSoftflowd(pcapPath, { version: 10, absoluteTime: "milli", timeoutMs: 15_000 }),
    };
    const db = join(dir, "flows.db");
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--batch-interval",
        "0.2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `sqlite:${db}`,
      ),
    );
    for (const [exporter, datagrams] of Object.entries(exports))
      await sendAll(exporter, datagrams, svc.udpPorts[0]!);
    const base = `http://127.0.0.1:${svc.httpPort}`;
    // Every flow stored: the totals stop growing and both exporters are there.
    let stored = -1;
    await waitFor("flows in SQLite", async () => {
      const r = (await (await fetch(`${base}/ui/api/top?by=exporter&last=1h`)).json()) as {
        total: { flows: number };
        rows: unknown[];
      };
      const done = r.rows.length === 2 && r.total.flows > 0 && r.total.flows === stored;
      stored = r.total.flows;
      if (!done) await sleep(300);
      return done;
    });
    assert.ok(stored >= 60, `softflowd's flows arrived (${stored})`);

    // The expected top talkers, straight from the store (not through src/query).
    const sql = new DatabaseSync(db, { readOnly: true });
    const expected = sql
      .prepare("SELECT src_ip, SUM(bytes) AS b FROM flows GROUP BY src_ip ORDER BY b DESC, src_ip LIMIT 3")
      .all()
      .map((r) => String(r.src_ip));
    const udpFlows = Number(
      (sql.prepare("SELECT COUNT(*) AS n FROM flows WHERE protocol = 17").get() as { n: number }).n,
    );
    sql.close();

    const browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: join(dir, "chromium-profile"),
      args: CHROMIUM_FLAGS,
    });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 1200 });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${base}/ui?refresh=1`, { waitUntil: "load" });
      await page.waitForFunction("Number(document.body.dataset.refreshes || 0) >= 2", {
        timeout: 30_000,
      });

      const exporterRows = await page.$$eval("#exporters tbody tr", (trs) =>
        trs.map((tr) =>
          Array.from(
            tr.querySelectorAll("td"),
            (td) => (td as { textContent: string | null }).textContent ?? "",
          ),
        ),
      );
      assert.deepEqual(
        exporterRows.map((r) => r[0]),
        ["127.0.0.21", "127.0.0.22"],
      );
      for (const r of exporterRows) {
        assert.notEqual(r[2], "0", "flows counted per exporter");
        assert.match(r[8]!, /ago|now/);
      }
      // NetFlow v9 and IPFIX templates: at least one per exporter.
      for (const r of exporterRows) assert.ok(Number(r[4]) >= 1, `templates for ${r[0]}: ${r[4]}`);

      const talkers = await page.$$eval("#top-src_ip tbody tr", (trs) =>
        trs.map((tr) => tr.querySelector("td")?.textContent ?? ""),
      );
      assert.deepEqual(talkers.slice(0, 3), expected);
      const protocols = await page.$$eval("#top-proto tbody tr td:first-child", (tds) =>
        tds.map((td) => td.textContent),
      );
      assert.ok(protocols.includes("TCP") && protocols.includes("UDP"), `protocols: ${protocols.join(",")}`);
      assert.equal(await page.$$eval("#chart-flows canvas, #chart-bytes canvas", (c) => c.length), 2);
      const lossRows = await page.$$eval("#loss tbody tr", (trs) => trs.length);
      assert.ok(lossRows > 0, "loss counters listed");

      const shot = join(process.env.CLARION_TEST_ARTIFACTS ?? dir, "clarion-ui.png");
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);

      // A filter narrows every table; a bad one shows where it is wrong.
      await page.$eval("input[name=filter]", (i) => {
        (i as unknown as { value: string }).value = "proto udp";
      });
      await page.click("#query button");
      await page.waitForFunction('document.querySelectorAll("#top-proto tbody tr").length === 1', {
        timeout: 15_000,
      });
      assert.deepEqual(
        await page.$$eval("#top-proto tbody tr td:first-child", (tds) =>
          tds.map((td) => (td as { textContent: string | null }).textContent),
        ),
        ["UDP"],
      );
      const note = await page.$eval("#top-note", (e) => e.textContent ?? "");
      assert.match(note, new RegExp(`, ${udpFlows} flows`));
      await page.$eval("input[name=filter]", (i) => {
        (i as unknown as { value: string }).value = "proto udp and port x";
      });
      await page.click("#query button");
      await page.waitForFunction('document.getElementById("filter-error").textContent !== ""', {
        timeout: 15_000,
      });
      assert.equal(
        await page.$eval("#filter-error", (e) => e.textContent),
        'expected a number after "port", found "x"\nproto udp and port x\n                   ^',
      );
      await page.$eval("input[name=filter]", (i) => {
        (i as unknown as { value: string }).value = "";
      });
      await page.click("#query button");

      // Heap over many refreshes (each: health, exporters, templates, series, 4 top queries, metrics).
      const cdp = await page.createCDPSession();
      const heap = async (): Promise<number> => {
        await cdp.send("HeapProfiler.collectGarbage");
        const m = await page.metrics();
        return m.JSHeapUsedSize ?? 0;
      };
      const refreshes = (n: number) =>
        page.evaluate(async (count: number) => {
          const w = globalThis as unknown as { clarionRefresh: () => Promise<void> };
          for (let i = 0; i < count; i++) await w.clarionRefresh();
        }, n);
      await refreshes(20);
      const warm = await heap();
      await refreshes(200);
      const after = await heap();
      t.diagnostic(
        `page JS heap after GC: ${(warm / 1e6).toFixed(2)} MB after 20 refreshes, ${(after / 1e6).toFixed(2)} MB after 220`,
      );
      assert.ok(after - warm < 2_000_000, `heap grew ${after - warm} bytes over 200 refreshes`);
      assert.deepEqual(errors, [], "no script errors on the page");
    } finally {
      await browser.close();
      svc.proc.kill("SIGTERM");
      await svc.exited;
    }
  });
});
