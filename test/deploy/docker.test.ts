/**
 * Dockerfile, .dockerignore and docker-compose.yml, checked against the code: base image and Node major,
 * production dependencies only, non-root, the data volume and its variable, exposed ports (option
 * registry defaults), HEALTHCHECK on /health at the HTTP port's variable, STOPSIGNAL, an exec-form
 * entrypoint that is the collector itself, every variable a registry one. The compose file's settings pass
 * the collector's own validation. The entrypoint and HEALTHCHECK are run for real in package.test.ts.
 * (No container engine here: nothing is built.)
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import {
  DEFAULT_PORTS,
  dockerEnv,
  dockerGlobalArgs,
  exists,
  KNOWN_ENV,
  option,
  PACKAGE,
  parseDockerfile,
  ROOT,
  read,
  splitWords,
  tempDir,
  WRAPPERS,
  yamlDocs,
} from "./deploy-files.ts";

const ins = parseDockerfile(read("Dockerfile"));
const last = Math.max(...ins.map((i) => i.stage));
const final = ins.filter((i) => i.stage === last);
const finalOne = (instruction: string) => {
  const found = final.filter((i) => i.instruction === instruction);
  assert.equal(found.length, 1, `one ${instruction} in the runtime stage`);
  return found[0]!;
};

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe("Dockerfile", () => {
  test("multi-stage: built with dev dependencies, run on a slim Node 24 image with production ones", () => {
    assert.ok(last >= 1, "at least two stages");
    const args = dockerGlobalArgs(ins);
    const image = (i: { args: string }) =>
      splitWords(i.args)[0]!.replace(/^\$\{(\w+)\}$/, (_m, k: string) => args.get(k) ?? "");
    const froms = ins.filter((i) => i.instruction === "FROM");
    const nodeMajor = PACKAGE.devDependencies.node!.replace(/^\D*/, "").split(".")[0];
    assert.equal(nodeMajor, "24");
    assert.match(image(froms[last]!), new RegExp(`^node:${nodeMajor}(\\.[\\d.]+)?-[a-z]+-slim$`));
    const runs = (stage: number) =>
      ins.filter((i) => i.stage === stage && i.instruction === "RUN").map((i) => i.args);
    assert.ok(
      runs(0).some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r)),
      "build stage: npm ci",
    );
    assert.ok(
      runs(0).some((r) => /npm run build\b/.test(r)),
      "build stage compiles dist/",
    );
    assert.ok(
      runs(last).some((r) => /npm ci\b.*--omit=dev/.test(r)),
      "runtime: npm ci --omit=dev",
    );
    const fromBuild = final.filter((i) => i.instruction === "COPY" && i.args.includes("--from="));
    assert.deepEqual(
      fromBuild.map((i) => splitWords(i.args).slice(1)),
      [["/build/dist", "./dist"]],
      "only the compiled dist/ comes from the build stage",
    );
  });

  test("every COPY source exists in the repository and .dockerignore keeps it", () => {
    const ignored = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    for (const i of ins.filter((x) => x.instruction === "COPY" && !x.args.includes("--from="))) {
      const words = splitWords(i.args);
      for (const src of words.slice(0, -1)) {
        assert.ok(exists(src), `COPY ${src}: missing`);
        assert.ok(!ignored.includes(src.replace(/^\.\//, "")), `${src} is in .dockerignore`);
      }
    }
    for (const heavy of ["node_modules", "dist", "test", ".git"]) assert.ok(ignored.includes(heavy), heavy);
  });

  test("non-root, /data volume as the data dir, every ENV a registry variable", () => {
    const user = finalOne("USER").args;
    assert.ok(!["root", "0", "0:0"].includes(user), `USER ${user}`);
    const env = dockerEnv(ins, last);
    const volume = finalOne("VOLUME").json ?? splitWords(finalOne("VOLUME").args);
    assert.deepEqual(volume, ["/data"]);
    assert.equal(env.get(option("dataDir").env[0]!), "/data");
    for (const name of env.keys()) {
      if (name === "NODE_ENV") continue;
      assert.ok(KNOWN_ENV.has(name), `ENV ${name} is not an option variable`);
    }
  });

  test("exposes the default UDP ports and the HTTP port", () => {
    const exposed = splitWords(finalOne("EXPOSE").args).sort();
    const expected = [
      `${DEFAULT_PORTS.netflow}/udp`,
      `${DEFAULT_PORTS.ipfix}/udp`,
      `${DEFAULT_PORTS.sflow}/udp`,
      `${DEFAULT_PORTS.http}/tcp`,
    ].sort();
    assert.deepEqual(exposed, expected);
  });

  test("HEALTHCHECK asks /health on the HTTP port's variable, default port as fallback", () => {
    const hc = finalOne("HEALTHCHECK");
    assert.ok(hc.json, "exec form");
    const script = hc.json.join(" ");
    assert.match(script, /\/health\b/);
    assert.ok(script.includes(`process.env.${option("httpPort").env[0]}`), "reads the HTTP port variable");
    assert.ok(script.includes(String(DEFAULT_PORTS.http)));
    assert.match(hc.args, /--start-period=\d+s/);
  });

  test("STOPSIGNAL SIGTERM; the entrypoint is the collector itself, in exec form", () => {
    assert.equal(finalOne("STOPSIGNAL").args, "SIGTERM");
    const entry = finalOne("ENTRYPOINT").json;
    const cmd = finalOne("CMD").json;
    assert.ok(
      entry && cmd,
      "exec (JSON) form: shell form would make /bin/sh PID 1, which does not forward SIGTERM",
    );
    assert.deepEqual(entry, ["node", `/app/${PACKAGE.bin["clarion-collector"]}`]);
    for (const w of [...entry, ...cmd]) assert.doesNotMatch(w, WRAPPERS);
  });

  test("no init process is needed: the collector as PID 1 handles its signals and starts no children", () => {
    const cli = read("src/cli.ts");
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"])
      assert.match(cli, new RegExp(`process\\.on\\("${signal}"`));
    const sources = walk(join(ROOT, "src")).filter((f) => f.endsWith(".ts"));
    for (const f of sources)
      assert.doesNotMatch(
        readFileSync(f, "utf8"),
        /node:child_process/,
        `${f} spawns processes: PID 1 would have to reap them (add tini)`,
      );
  });
});

describe("docker-compose.yml", () => {
  const [compose] = yamlDocs("docker-compose.yml");
  const collector = compose.services.collector;

  test("collector: built here, the default ports published, its data on a volume at the image's VOLUME", () => {
    assert.equal(collector.build, ".");
    const ports = (collector.ports as string[]).map((p) => p.split(":")[1]).sort();
    assert.deepEqual(
      ports,
      [
        `${DEFAULT_PORTS.netflow}/udp`,
        `${DEFAULT_PORTS.ipfix}/udp`,
        `${DEFAULT_PORTS.sflow}/udp`,
        `${DEFAULT_PORTS.http}/tcp`,
      ].sort(),
    );
    const volume = finalOne("VOLUME").json![0];
    assert.ok((collector.volumes as string[]).some((v) => v.split(":")[1] === volume));
    assert.ok(collector.stop_grace_period, "time to flush on SIGTERM");
    assert.equal(collector.command, undefined, "the image's entrypoint, not npm");
  });

  test("collector's environment: registry variables whose values the collector accepts", () => {
    const env = collector.environment as Record<string, string>;
    for (const name of Object.keys(env)) assert.ok(KNOWN_ENV.has(name), `${name} is not an option variable`);
    const dir = tempDir("compose");
    temps.push(dir);
    const local = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, String(v).replaceAll("/data/", `${dir}/`)]),
    );
    const config = loadConfig(["--data-dir", dir], local);
    assert.deepEqual(
      config.outputs.map((o) => o.uri),
      String(env[option("outputs").env[0]!]).replaceAll("/data/", `${dir}/`).split(","),
    );
  });

  test("consumer: follows a file the collector writes, starts once the collector is healthy", () => {
    const consumer = compose.services.consumer;
    assert.equal(consumer.depends_on.collector.condition, "service_healthy");
    const outputs = String(collector.environment[option("outputs").env[0]!]).split(",");
    const followed = (consumer.command as string[]).at(-1)!;
    assert.ok(outputs.includes(`jsonl:${followed}`), `${followed} is not one of ${outputs.join(", ")}`);
    const dataVolume = (collector.volumes as string[])[0]!.split(":")[0];
    assert.ok((consumer.volumes as string[]).includes(`${dataVolume}:/data:ro`));
    assert.ok(Object.hasOwn(compose.volumes, dataVolume!));
  });
});
