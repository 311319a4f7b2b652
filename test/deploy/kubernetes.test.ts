/**
 * deploy/kubernetes/, checked against the code and against each other: the ConfigMap's config file passes
 * the collector's validation and sets the ports the containers declare; the containers run the image's
 * entrypoint (the collector itself) with --config pointing at the mounted ConfigMap key; UDP container
 * ports, probes on /health at the HTTP port, Prometheus annotations, the data volume at the config's
 * data_dir (PVC for the Deployment, hostPath for the hostNetwork DaemonSet), the UDP Service
 * (externalTrafficPolicy: Local, ClientIP affinity) selecting the Deployment's pods by named ports, image
 * tag = package version, every variable a registry one, resources set. The memory request is checked
 * against the measured idle RSS in package.test.ts.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { loadConfig } from "../../src/config/index.ts";
import type { Config } from "../../src/config/options.ts";
import {
  type Doc,
  dockerEnv,
  exists,
  KNOWN_ENV,
  KNOWN_FILE_KEYS,
  kubeObjects,
  PACKAGE,
  parseDockerfile,
  read,
  tempDir,
  WRAPPERS,
  yamlDocs,
} from "./deploy-files.ts";

const objects = kubeObjects();
const ofKind = (kind: string): Doc[] => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const theOne = (kind: string, name?: string): Doc => {
  const found = ofKind(kind).filter((o) => name === undefined || o.metadata.name === name);
  assert.equal(found.length, 1, `one ${kind} ${name ?? ""}`);
  return found[0];
};

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const configMap = theOne("ConfigMap");
const CONFIG_KEY = "config.yaml";
const configText = configMap.data[CONFIG_KEY] as string;

/** The ConfigMap's config file as the collector loads it (data_dir moved to a temp dir). */
function loadedConfig(): Config {
  const dir = tempDir("kube-config");
  temps.push(dir);
  const file = join(dir, CONFIG_KEY);
  writeFileSync(file, configText);
  return loadConfig(["--config", file, "--data-dir", join(dir, "data")], {});
}

describe("ConfigMap", () => {
  test("its config file uses registry keys only and passes the collector's validation", () => {
    const raw = parseYaml(configText) as Record<string, unknown>;
    for (const key of Object.keys(raw)) assert.ok(KNOWN_FILE_KEYS.has(key), `unknown config key ${key}`);
    const config = loadedConfig();
    assert.equal(config.mode, raw.mode);
    assert.equal(config.workers, raw.workers);
  });

  test("data_dir is the image's data volume", () => {
    const ins = parseDockerfile(read("Dockerfile"));
    const last = Math.max(...ins.map((i) => i.stage));
    const raw = parseYaml(configText) as Record<string, unknown>;
    assert.equal(raw.data_dir, dockerEnv(ins, last).get("CLARION_COLLECTOR_DATA_DIR"));
  });
});

for (const kind of ["Deployment", "DaemonSet"] as const) {
  describe(kind, () => {
    const workload = theOne(kind);
    const pod = workload.spec.template.spec;
    const container = (pod.containers as Doc[]).find((c) => c.name === "collector");
    const raw = parseYaml(configText) as Record<string, number | string>;

    test("selector matches the pod labels", () => {
      const labels = workload.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(workload.spec.selector.matchLabels)) assert.equal(labels[k], v);
    });

    test("runs the image's entrypoint (the collector) with --config at the mounted ConfigMap key", () => {
      assert.ok(container, "a container named collector");
      assert.equal(container.command, undefined, "no command: the image's ENTRYPOINT is the collector");
      for (const w of container.args as string[]) assert.doesNotMatch(w, WRAPPERS);
      const at = (container.args as string[]).indexOf("--config");
      const path = (container.args as string[])[at + 1]!;
      const volumeName = (pod.volumes as Doc[]).find(
        (v) => v.configMap?.name === configMap.metadata.name,
      ).name;
      const mount = (container.volumeMounts as Doc[]).find((m) => m.name === volumeName);
      assert.equal(path, `${mount.mountPath}/${CONFIG_KEY}`);
      assert.equal(mount.readOnly, true);
      assert.equal(container.image, `${PACKAGE.name}:${PACKAGE.version}`);
    });

    test("declares the configured UDP ports and the HTTP port", () => {
      const ports = Object.fromEntries((container.ports as Doc[]).map((p) => [p.name, p]));
      for (const [name, key] of [
        ["netflow", "netflow_port"],
        ["ipfix", "ipfix_port"],
        ["sflow", "sflow_port"],
      ] as const) {
        assert.equal(ports[name].containerPort, raw[key], name);
        assert.equal(ports[name].protocol, "UDP", name);
      }
      assert.equal(ports.http.containerPort, raw.http_port);
      assert.equal(ports.http.protocol, "TCP");
    });

    test("startup, readiness and liveness probes GET /health on the HTTP port", () => {
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const get = container[probe].httpGet;
        assert.equal(get.path, "/health", probe);
        assert.equal(get.port, "http", probe);
      }
    });

    test("Prometheus annotations name the HTTP port and /metrics", () => {
      const a = workload.spec.template.metadata.annotations;
      assert.equal(a["prometheus.io/scrape"], "true");
      assert.equal(Number(a["prometheus.io/port"]), raw.http_port);
      assert.equal(a["prometheus.io/path"], "/metrics");
    });

    test("the data volume is mounted at data_dir; variables are registry ones; resources set", () => {
      const mount = (container.volumeMounts as Doc[]).find((m) => m.mountPath === raw.data_dir);
      assert.ok(mount, `a volume at ${raw.data_dir}`);
      const volume = (pod.volumes as Doc[]).find((v) => v.name === mount.name);
      if (kind === "Deployment") {
        const pvc = theOne("PersistentVolumeClaim");
        assert.equal(volume.persistentVolumeClaim.claimName, pvc.metadata.name);
        assert.deepEqual(pvc.spec.accessModes, ["ReadWriteOnce"]);
        assert.equal(workload.spec.replicas, 1, "one collector per ReadWriteOnce claim");
        assert.equal(workload.spec.strategy.type, "Recreate", "the old pod releases the claim first");
      } else {
        assert.equal(volume.hostPath.type, "DirectoryOrCreate");
      }
      for (const e of (container.env ?? []) as Doc[]) assert.ok(KNOWN_ENV.has(e.name), e.name);
      for (const side of ["requests", "limits"]) {
        assert.match(container.resources[side].memory, /^\d+(Mi|Gi)$/);
        assert.ok(container.resources[side].cpu);
      }
      assert.equal(container.securityContext.allowPrivilegeEscalation, false);
      assert.ok(pod.terminationGracePeriodSeconds >= 30, "time to flush on SIGTERM");
    });

    if (kind === "DaemonSet") {
      test("hostNetwork, so exporters' source addresses reach the collector unchanged", () => {
        assert.equal(pod.hostNetwork, true);
        assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
      });
    }
  });
}

describe("Services", () => {
  const deployment = theOne("Deployment");
  const podLabels = deployment.spec.template.metadata.labels;
  const daemonLabels = theOne("DaemonSet").spec.template.metadata.labels;
  const names = new Set(
    (deployment.spec.template.spec.containers as Doc[]).flatMap((c) => (c.ports as Doc[]).map((p) => p.name)),
  );
  const selects = (svc: Doc, labels: Record<string, string>) =>
    Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v);

  test("UDP LoadBalancer keeps the exporter's address and each exporter on one pod", () => {
    const svc = theOne("Service", "clarion-collector");
    assert.equal(svc.spec.type, "LoadBalancer");
    assert.equal(svc.spec.externalTrafficPolicy, "Local");
    assert.equal(svc.spec.sessionAffinity, "ClientIP");
    assert.ok(selects(svc, podLabels));
    assert.ok(!selects(svc, daemonLabels), "the DaemonSet variant is not behind the Service");
    assert.deepEqual((svc.spec.ports as Doc[]).map((p) => p.protocol).sort(), ["UDP", "UDP", "UDP"]);
    for (const p of svc.spec.ports as Doc[]) assert.ok(names.has(p.targetPort), p.targetPort);
  });

  test("metrics Service exposes the named HTTP port", () => {
    const svc = theOne("Service", "clarion-collector-metrics");
    assert.ok(selects(svc, podLabels));
    assert.deepEqual(
      (svc.spec.ports as Doc[]).map((p) => p.targetPort),
      ["http"],
    );
  });
});

test("kustomization lists existing files and the Deployment variant's objects", () => {
  const [k] = yamlDocs("deploy/kubernetes/kustomization.yaml");
  for (const f of k.resources as string[]) assert.ok(exists(`deploy/kubernetes/${f}`), f);
  const files = new Set(k.resources as string[]);
  for (const { file, obj } of objects) {
    if (obj.kind === "DaemonSet") assert.ok(!files.has(file));
    else assert.ok(files.has(file), `${file} (${obj.kind}) not in kustomization.yaml`);
  }
});
