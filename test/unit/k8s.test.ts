// `panorama k8s`: every manifest's structure and values (apiVersion, kind, required fields, the
// command lines, read-only mounts, non-root security contexts), the configuration the pods get,
// the schedule arithmetic, and the command itself on a real file.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import TOML from "@iarna/toml";
import { parseConfig } from "../../src/config/load.ts";
import { UsageError } from "../../src/errors.ts";
import {
  cronPeriodSeconds,
  jobDeadlineSeconds,
  k8sManifests,
  lmsLogGlob,
  podNotes,
} from "../../src/setup/k8s.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";

const FILE = "/etc/panorama/panorama.toml";
const TOML_TEXT = `mode = "CUSTOM"
lms_host = "lms.example.com"
state_dir = "/srv/panorama"

[datalake]
bucket = "acme-panorama"
region = "eu-west-1"

[mysql]
host = "mysql"
password = "mysql-secret-1234"

[logs]
paths = ["/srv/tutor/data/lms/logs/tracking.log"]
format = "prefixed"

[schedule]
run = "*/20 * * * *"
verify = "30 3 * * *"
`;

/** The same, its MongoDB a service of the cluster (TOML_TEXT leaves it at its default, 127.0.0.1). */
const WITH_MONGO = `${TOML_TEXT}\n[mongodb]\nhost = "mongodb"\n`;

// biome-ignore lint/suspicious/noExplicitAny: manifests are read as YAML, walked by key
type Doc = any;

function manifests(
  text = TOML_TEXT,
  options: { namespace?: string; image?: string; env?: Record<string, string> } = {},
) {
  const { config, raw } = parseConfig(text, FILE, options.env ?? {});
  return k8sManifests(config, {
    namespace: options.namespace ?? "openedx",
    image: options.image ?? "registry.example.com/panorama:0.1.0",
    raw,
  }) as Doc[];
}

const byKind = (docs: Doc[], kind: string, name?: string) =>
  docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));

function podConfigOf(docs: Doc[]) {
  const secret = byKind(docs, "Secret")[0];
  const text = Buffer.from(secret.data["panorama.toml"], "base64").toString();
  return { text, ...parseConfig(text, FILE, {}) };
}

function expectNonRoot(container: Doc, pod: Doc) {
  expect(pod.securityContext.runAsNonRoot).toBe(true);
  expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
  expect(container.securityContext).toMatchObject({
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  });
  expect(container.securityContext.runAsUser).toBeGreaterThan(0);
}

describe("manifests", () => {
  const docs = manifests();

  test("every document has apiVersion, kind, a name and the namespace", () => {
    expect(docs.map((d) => `${d.apiVersion} ${d.kind} ${d.metadata.name}`)).toEqual([
      "v1 ServiceAccount panorama",
      "v1 Secret panorama-config",
      "v1 PersistentVolumeClaim panorama-state",
      "batch/v1 CronJob panorama-run",
      "batch/v1 CronJob panorama-verify",
      "apps/v1 DaemonSet panorama-log-ship",
    ]);
    for (const d of docs) {
      expect(d.metadata.namespace).toBe("openedx");
      expect(d.metadata.labels["app.kubernetes.io/name"]).toBe("panorama");
    }
  });

  test("the run CronJob: schedule, Forbid, a deadline under the period, memory, mounts, non-root", () => {
    const job = byKind(docs, "CronJob", "panorama-run")[0];
    expect(job.spec.schedule).toBe("*/20 * * * *");
    expect(job.spec.concurrencyPolicy).toBe("Forbid");
    const jobSpec = job.spec.jobTemplate.spec;
    expect(jobSpec.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(jobSpec.activeDeadlineSeconds).toBeLessThan(20 * 60);
    const pod = jobSpec.template.spec;
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.serviceAccountName).toBe("panorama");
    const [container] = pod.containers;
    expect(pod.containers).toHaveLength(1);
    expect(container.image).toBe("registry.example.com/panorama:0.1.0");
    expect(container.args).toEqual(["--config", "/etc/panorama/panorama.toml", "--json", "run"]);
    // from the measured peak (~130 MiB) with headroom
    expect(container.resources.requests.memory).toBe("160Mi");
    expect(container.resources.limits.memory).toBe("256Mi");
    expectNonRoot(container, pod);
    const mounts = Object.fromEntries(container.volumeMounts.map((m: Doc) => [m.name, m]));
    expect(mounts.config).toEqual({ name: "config", mountPath: "/etc/panorama", readOnly: true });
    expect(mounts.state.mountPath).toBe("/var/lib/panorama");
    const volumes = Object.fromEntries(pod.volumes.map((v: Doc) => [v.name, v]));
    expect(volumes.config.secret.secretName).toBe("panorama-config");
    expect(volumes.state.persistentVolumeClaim.claimName).toBe("panorama-state");
    // every mount has its volume
    for (const m of container.volumeMounts) expect(volumes[m.name]).toBeDefined();
  });

  test("the verify CronJob runs verify --repair on its own schedule", () => {
    const job = byKind(docs, "CronJob", "panorama-verify")[0];
    expect(job.spec.schedule).toBe("30 3 * * *");
    expect(job.spec.concurrencyPolicy).toBe("Forbid");
    expect(job.spec.jobTemplate.spec.activeDeadlineSeconds).toBeLessThan(24 * 3600);
    const pod = job.spec.jobTemplate.spec.template.spec;
    expect(pod.containers[0].args).toEqual([
      "--config",
      "/etc/panorama/panorama.toml",
      "--json",
      "verify",
      "--repair",
    ]);
    expectNonRoot(pod.containers[0], pod);
  });

  test("the log-ship DaemonSet: --follow on the node's container logs, read-only, state per node", () => {
    const ds = byKind(docs, "DaemonSet")[0];
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
    const pod = ds.spec.template.spec;
    const [container] = pod.containers;
    expect(container.args).toEqual([
      "--config",
      "/etc/panorama/panorama.toml",
      "--json",
      "log-ship",
      "--follow",
    ]);
    expectNonRoot(container, pod);
    const mounts = Object.fromEntries(container.volumeMounts.map((m: Doc) => [m.name, m]));
    expect(mounts.containers).toEqual({
      name: "containers",
      mountPath: "/var/log/containers",
      readOnly: true,
    });
    expect(mounts.pods).toEqual({ name: "pods", mountPath: "/var/log/pods", readOnly: true });
    expect(mounts.config.readOnly).toBe(true);
    expect(mounts.state.readOnly).toBeUndefined();
    const volumes = Object.fromEntries(pod.volumes.map((v: Doc) => [v.name, v]));
    expect(volumes.containers.hostPath.path).toBe("/var/log/containers");
    expect(volumes.pods.hostPath.path).toBe("/var/log/pods");
    expect(volumes.state.hostPath).toEqual({
      path: "/var/lib/panorama-log-ship/openedx",
      type: "DirectoryOrCreate",
    });
    for (const m of container.volumeMounts) expect(volumes[m.name]).toBeDefined();
    // The only root step: chown of the node's state directory, with CHOWN alone.
    const [init] = pod.initContainers;
    expect(init.command).toEqual(["chown", "10001:10001", "/var/lib/panorama"]);
    expect(init.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["CHOWN"] });
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
  });

  test("every container that reads the configuration can: the Secret's files are readable by its user", () => {
    const pods = [
      ...byKind(docs, "CronJob").map((c) => c.spec.jobTemplate.spec.template.spec),
      ...byKind(docs, "DaemonSet").map((d) => d.spec.template.spec),
    ];
    expect(pods).toHaveLength(3);
    for (const pod of pods) {
      for (const container of pod.containers) {
        expect(container.args.slice(0, 2)).toEqual(["--config", "/etc/panorama/panorama.toml"]);
        expect({ name: container.name, readable: canReadSecret(pod, container, "panorama-config") }).toEqual({
          name: container.name,
          readable: true,
        });
      }
    }
  });

  test("log-ship reaches the log files of either runtime: every name their links go through is mounted", () => {
    const pod = byKind(docs, "DaemonSet")[0].spec.template.spec;
    const [container] = pod.containers;
    const volumes = Object.fromEntries(pod.volumes.map((v: Doc) => [v.name, v]));
    const mounted = (path: string) =>
      container.volumeMounts.some(
        (m: Doc) =>
          path.startsWith(`${m.mountPath}/`) && volumes[m.name].hostPath?.path === m.mountPath && m.readOnly,
      );
    const id = "4f5e3a2b1c0d";
    const link = `/var/log/containers/lms-7d9c-abcde_openedx_lms-${id}.log`;
    const pods = "/var/log/pods/openedx_lms-7d9c-abcde_0123/lms/0.log";
    const runtimes = {
      containerd: [link, pods],
      docker: [link, pods, `/var/lib/docker/containers/${id}/${id}-json.log`],
    };
    for (const [runtime, hops] of Object.entries(runtimes)) {
      expect({ runtime, unmounted: hops.filter((p) => !mounted(p)) }).toEqual({ runtime, unmounted: [] });
    }
  });

  test("the Secret holds the configuration as the pods see it", () => {
    const { config } = podConfigOf(docs);
    expect(config.state_dir).toBe("/var/lib/panorama");
    expect(config.logs.paths).toEqual(["/var/log/containers/lms-*_openedx_lms-[0-9a-f]*.log"]);
    expect(config.logs.format).toBe("auto");
    expect(config.mysql.password).toBe("mysql-secret-1234");
    expect(config.datalake.bucket).toBe("acme-panorama");
    expect(config.schedule.run).toBe("*/20 * * * *");
  });

  test("the LMS glob takes the LMS containers of one namespace only", () => {
    const glob = new Bun.Glob(lmsLogGlob("openedx").slice("/var/log/containers/".length));
    const id = "0123456789abcdef".repeat(4);
    expect(glob.match(`lms-7d9c8b-x2x9q_openedx_lms-${id}.log`)).toBe(true);
    expect(glob.match(`lms-worker-5f6-abcde_openedx_lms-worker-${id}.log`)).toBe(false);
    expect(glob.match(`lms-7d9c8b-x2x9q_staging_lms-${id}.log`)).toBe(false);
    expect(glob.match(`cms-7d9c8b-x2x9q_openedx_cms-${id}.log`)).toBe(false);
  });

  test("password files and environment overrides go into the Secret; namespace and image are used", () => {
    const dir = mkdtempSync(join(tmpdir(), "panorama-k8s-"));
    try {
      const passwordFile = join(dir, "mysql.pass");
      writeFileSync(passwordFile, "from-a-file-5678\n");
      const text = TOML_TEXT.replace('password = "mysql-secret-1234"', `password_file = "${passwordFile}"`);
      const docs = manifests(text, {
        namespace: "staging",
        image: "panorama:9",
        env: { PANORAMA_BUCKET: "other-bucket" },
      });
      const { config, raw } = podConfigOf(docs);
      expect(config.mysql.password).toBe("from-a-file-5678");
      expect((raw.mysql as Record<string, unknown>).password_file).toBeUndefined();
      expect(config.datalake.bucket).toBe("other-bucket");
      expect(config.logs.paths[0]).toContain("_staging_");
      expect(docs.every((d) => d.metadata.namespace === "staging")).toBe(true);
      expect(byKind(docs, "CronJob")[0].spec.jobTemplate.spec.template.spec.containers[0].image).toBe(
        "panorama:9",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an environment override goes into the Secret as the key's type: Tutor's False is a boolean", () => {
    const docs = manifests(TOML_TEXT, {
      env: { PANORAMA_USE_SPLIT_MONGO: "False", PANORAMA_LOGS_TOTAL_FILE_SIZE: "5M" },
    });
    const { text, config } = podConfigOf(docs);
    expect(text).toContain("use_split_mongo = false\n");
    expect(config.mongodb.use_split_mongo).toBe(false);
    expect(config.logs.max_file_size).toBe(5 * 1024 * 1024);
  });

  test("a host's metrics textfile is left out of the pods' configuration, and said", () => {
    const text = `${WITH_MONGO}\n[metrics]\ntextfile = "/var/lib/node_exporter/textfile_collector/panorama.prom"\n`;
    expect(parseConfig(text, FILE, {}).config.metrics.textfile).not.toBe("");
    const { config } = podConfigOf(manifests(text));
    expect(config.metrics.textfile).toBe("");
    expect(podNotes(parseConfig(text, FILE, {}).config)).toEqual([
      "[metrics] textfile (/var/lib/node_exporter/textfile_collector/panorama.prom) is left out of the pods' configuration: it is a file of this host, and the pods' file system is read-only",
    ]);
    expect(podNotes(parseConfig(WITH_MONGO, FILE, {}).config)).toEqual([]);
  });

  test("a MySQL or MongoDB on this host's loopback (or socket) is said: in a pod it is the pod itself", () => {
    const notes = (text: string) => podNotes(parseConfig(text, FILE, {}).config);
    const withMysql = (lines: string) => WITH_MONGO.replace('host = "mysql"', lines);
    expect(notes(WITH_MONGO)).toEqual([]);
    expect(notes(withMysql('host = "127.0.0.1"'))).toEqual([
      "mysql.host is 127.0.0.1: in a pod it names the pod itself: set it to the MySQL service's name (Tutor's: mysql) before applying the manifests",
    ]);
    expect(notes(withMysql('host = "localhost"'))[0]).toStartWith("mysql.host is localhost:");
    expect(notes(withMysql('socket = "/run/mysqld/mysqld.sock"'))[0]).toStartWith(
      "mysql.socket (/run/mysqld/mysqld.sock) is a socket of this host",
    );
    // MongoDB (127.0.0.1 by default) matters only when course structures are extracted.
    expect(notes(TOML_TEXT)).toEqual([
      "mongodb.host names 127.0.0.1: in a pod it names the pod itself: set it to the MongoDB service's name (Tutor's: mongodb) before applying the manifests",
    ]);
    expect(notes(`${TOML_TEXT}\n[extract]\nexclude = ["course_structures"]\n`)).toEqual([]);
    expect(
      notes(WITH_MONGO.replace('host = "mongodb"', 'host = "mongodb-0,localhost:27018"'))[0],
    ).toStartWith("mongodb.host names localhost:");
    expect(notes(WITH_MONGO.replace('host = "mongodb"', 'host = "127.0.0.1"'))).toEqual([
      "mongodb.host names 127.0.0.1: in a pod it names the pod itself: set it to the MongoDB service's name (Tutor's: mongodb) before applying the manifests",
    ]);
    expect(
      notes(
        `${TOML_TEXT}\n[mongodb]\nuri = "mongodb://u:p@mongodb:27017,localhost:27018/edxapp?tls=false"\n`,
      ),
    ).toEqual([
      "mongodb.uri names localhost: in a pod it names the pod itself: set it to the MongoDB service's name (Tutor's: mongodb) before applying the manifests",
    ]);
  });

  test("pseudonyms on: the key goes into the Secret beside the configuration, which points at it", () => {
    const dir = mkdtempSync(join(tmpdir(), "panorama-k8s-"));
    try {
      const keyFile = join(dir, "pseudonym.key");
      const key = Buffer.alloc(32, 7);
      writeFileSync(keyFile, key, { mode: 0o600 });
      const docs = manifests(`${TOML_TEXT}\n[privacy]\npseudonymize = true\nkey_file = "${keyFile}"\n`);
      const secret = byKind(docs, "Secret")[0];
      expect(Buffer.from(secret.data["pseudonym.key"], "base64")).toEqual(key);
      const text = Buffer.from(secret.data["panorama.toml"], "base64").toString();
      const privacy = (TOML.parse(text) as { privacy: Record<string, unknown> }).privacy;
      expect(privacy).toMatchObject({ pseudonymize: true, key_file: "/etc/panorama/pseudonym.key" });
      // Without pseudonyms there is no key in the Secret.
      expect(Object.keys(byKind(manifests(), "Secret")[0].data)).toEqual(["panorama.toml"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('modes: FREE has no DaemonSet; verify = "" has no verify CronJob', () => {
    const free = manifests(TOML_TEXT.replace('mode = "CUSTOM"', 'mode = "FREE"'));
    expect(byKind(free, "DaemonSet")).toEqual([]);
    const noVerify = manifests(TOML_TEXT.replace('verify = "30 3 * * *"', 'verify = ""'));
    expect(byKind(noVerify, "CronJob").map((d) => d.metadata.name)).toEqual(["panorama-run"]);
  });

  test("a bad namespace or image is a usage error", () => {
    expect(() => manifests(TOML_TEXT, { namespace: "Open_edX" })).toThrow(UsageError);
    expect(() => manifests(TOML_TEXT, { image: "panorama 1" })).toThrow(UsageError);
  });
});

/**
 * Whether the containers of `pod` can read the file `key` of the Secret volume mounted from
 * `secretName`, as the kubelet writes it: owned by root, mode `defaultMode`; with the pod's
 * `fsGroup`, owned by that group and readable by it (mode | 0440 on a read-only volume).
 */
function canReadSecret(pod: Doc, container: Doc, secretName: string): boolean {
  const volume = pod.volumes.find((v: Doc) => v.secret?.secretName === secretName);
  if (!volume || !container.volumeMounts.some((m: Doc) => m.name === volume.name)) return false;
  const context = { ...pod.securityContext, ...container.securityContext };
  const fsGroup: number | undefined = pod.securityContext?.fsGroup;
  const mode = (volume.secret.defaultMode ?? 0o644) | (fsGroup === undefined ? 0 : 0o440);
  const fileGroup = fsGroup ?? 0;
  const groups = new Set<number>([
    context.runAsGroup ?? 0,
    ...(pod.securityContext?.supplementalGroups ?? []),
    ...(fsGroup === undefined ? [] : [fsGroup]),
  ]);
  if (context.runAsUser === 0) return true;
  if (groups.has(fileGroup)) return (mode & 0o040) !== 0;
  return (mode & 0o004) !== 0;
}

describe("schedules", () => {
  test("the shortest period between firings", () => {
    expect(cronPeriodSeconds("55 * * * *")).toBe(3600);
    expect(cronPeriodSeconds("*/5 * * * *")).toBe(300);
    expect(cronPeriodSeconds("0,10 * * * *")).toBe(600);
    expect(cronPeriodSeconds("0 */6 * * *")).toBe(6 * 3600);
    expect(cronPeriodSeconds("30 3 * * *")).toBe(24 * 3600);
    expect(cronPeriodSeconds("0 9 * * mon-fri")).toBe(24 * 3600);
    expect(cronPeriodSeconds("@hourly")).toBe(3600);
    expect(cronPeriodSeconds("0 0 * * 0")).toBe(7 * 24 * 3600);
    // February 2024: the shortest month of the 64 days looked at
    expect(cronPeriodSeconds("@monthly")).toBe(29 * 24 * 3600);
    expect(cronPeriodSeconds("@yearly")).toBe(64 * 24 * 3600);
  });

  test("the deadline is shorter than the period", () => {
    for (const schedule of ["* * * * *", "*/5 * * * *", "55 * * * *", "30 3 * * *"]) {
      expect(jobDeadlineSeconds(schedule)).toBeLessThan(cronPeriodSeconds(schedule));
      expect(jobDeadlineSeconds(schedule)).toBeGreaterThan(0);
    }
  });
});

describe("panorama k8s", () => {
  test("prints a YAML stream kubectl reads; secrets stay out of its log; DEMO prints a comment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "panorama-k8s-"));
    try {
      const file = join(dir, "panorama.toml");
      writeFileSync(file, TOML_TEXT);
      chmodSync(file, 0o600);
      const result = await runPanorama(["--config", file, "k8s", "--namespace", "lms-prod"], {
        env: cleanEnv(),
      });
      expect(result.code).toBe(0);
      expect(result.stderr).not.toContain("mysql-secret-1234");
      expect(result.stdout.startsWith("---\n")).toBe(true);
      const docs = Bun.YAML.parse(result.stdout) as Doc[];
      expect(docs.map((d) => d.kind)).toEqual([
        "ServiceAccount",
        "Secret",
        "PersistentVolumeClaim",
        "CronJob",
        "CronJob",
        "DaemonSet",
      ]);
      expect(docs[3].spec.jobTemplate.spec.template.spec.containers[0].image).toBe("panorama:0.1.0");
      expect(docs.every((d) => d.metadata.namespace === "lms-prod")).toBe(true);

      const bad = await runPanorama(["--config", file, "k8s", "--namespace", "LMS"], { env: cleanEnv() });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("--namespace");

      writeFileSync(file, TOML_TEXT.replace('mode = "CUSTOM"', 'mode = "DEMO"'));
      const demo = await runPanorama(["--config", file, "k8s"], { env: cleanEnv() });
      expect(demo.code).toBe(0);
      expect(demo.stdout).toContain("DEMO mode schedules nothing");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
