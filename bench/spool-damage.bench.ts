/**
 * What the spool recovers after random damage (issue 12 item 7): one full 16 MiB segment of Clarion-sized
 * requests (~22,000 flows, as in the probe) is written, closed, hit by K random byte flips, and
 * opened again; prints the requests and flows delivered, against what an ideal reader (every frame with no
 * flipped byte) would deliver, and the bytes moved to quarantine.
 *
 * Run: node bench/spool-damage.bench.ts [--flips 1,10,100] [--trials 5] [--seed 1]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Spool, type SpooledEntry } from "../src/pipeline/spool.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}
const flipsList = arg("flips", "1,10,100").split(",").map(Number);
const trials = Number(arg("trials", "5"));
let seed = Number(arg("seed", "1")) >>> 0;
const rnd = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const drain = (s: Spool): SpooledEntry[] => {
  const out: SpooledEntry[] = [];
  for (let e = s.next(); e !== null; e = s.next()) out.push(e);
  return out;
};

const base = mkdtempSync(join(tmpdir(), "spool-damage-"));
try {
  const src = join(base, "src");
  const s = await Spool.open({ dir: src, segmentBytes: 16 * 1024 * 1024, maxBytes: 1024 ** 3 });
  // a Clarion request of 44 flows is ~33 KB of JSON
  for (let i = 0; i < 498; i++) {
    const data = Buffer.alloc(33_000 + ((i * 7919) % 1000), 0x20 + (i % 90));
    await s.append({ id: `req-${i}`, key: "192.0.2.1", meta: "", records: 44, createdMs: Date.now(), data });
  }
  const frames = drain(s);
  await s.close();
  const seg = readdirSync(src).find((f) => f.endsWith(".seg"))!;
  const pristine = readFileSync(join(src, seg));
  const totalFlows = frames.reduce((a, f) => a + f.records, 0);
  console.log(
    `segment ${pristine.length} bytes, ${frames.length} requests, ${totalFlows} flows; ${trials} trials per flip count`,
  );
  console.log("flips\tdelivered_requests\tdelivered_flows\tideal_flows\tquarantined_bytes\tcorrupt_regions");
  for (const flips of flipsList) {
    for (let t = 0; t < trials; t++) {
      const dir = join(base, `t${flips}-${t}`);
      const bytes = Buffer.from(pristine);
      const hit = new Set<number>();
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(rnd() * bytes.length);
        bytes[at]! ^= 1 + Math.floor(rnd() * 255);
        const f = frames.find((x) => at >= x.off && at < x.off + x.size);
        if (f) hit.add(f.off);
      }
      mkdirSync(dir);
      writeFileSync(join(dir, seg), bytes);
      const r = await Spool.open({ dir, segmentBytes: 16 * 1024 * 1024, maxBytes: 1024 ** 3 });
      const st = r.stats();
      const got = drain(r);
      await r.close();
      const ideal = frames.filter((f) => !hit.has(f.off)).reduce((a, f) => a + f.records, 0);
      const flows = got.reduce((a, e) => a + e.records, 0);
      console.log(`${flips}\t${got.length}\t${flows}\t${ideal}\t${st.corruptBytes}\t${st.corruptFrames}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
