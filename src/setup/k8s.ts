// The Kubernetes manifests for this configuration (DESIGN §1 `k8s`): what replaces the Tutor
// plugin's extraction CronJob and its Fluent Bit DaemonSet. A Secret holds the configuration as
// the pods must see it, CronJobs run `run` and `verify --repair` with their state on a
// PersistentVolumeClaim, and a DaemonSet runs `log-ship --follow` on every node over the LMS
// containers' log files, its checkpoints on the node (a file's offsets belong to the node that
// holds the file). Pure: the config in, YAML text out.
import TOML from "@iarna/toml";
import { splitUri } from "../config/secrets.ts";
import type { Config } from "../config/types.ts";
import { UsageError } from "../errors.ts";

export interface K8sOptions {
  namespace: string;
  image: string;
  /** the configuration file as parsed, environment overrides applied (loadConfig's raw) */
  raw: Record<string, unknown>;
}

export type Manifest = Record<string, unknown> & { apiVersion: string; kind: string };

const NAME = "panorama";
const CONFIG_DIR = "/etc/panorama";
/** The Secret's entry holding the pseudonym key, when pseudonyms are on. */
const PSEUDONYM_KEY = "pseudonym.key";
const CONFIG_FILE = `${CONFIG_DIR}/panorama.toml`;
const STATE_DIR = "/var/lib/panorama";
/** Where each node keeps the DaemonSet's checkpoints, under it one directory per namespace shipped. */
const NODE_STATE_ROOT = "/var/lib/panorama-log-ship";
/**
 * Where Docker keeps a container's log (`<id>/<id>-json.log`): on a node whose runtime is Docker
 * (cri-dockerd), `/var/log/pods/.../0.log` is a link to it. containerd writes in /var/log/pods.
 */
const DOCKER_CONTAINERS = "/var/lib/docker/containers";
/** A shell-less image has no chown: the DaemonSet's init step uses busybox's. */
const INIT_IMAGE = "busybox:1.36";
/** The image's non-root user (scripts/build-image.sh). */
const USER_ID = 10001;

// Memory of `run`: the extraction benchmark (scripts/bench-extract.ts) measured a peak RSS of
// about 130 MiB; the request leaves ~25% above it, the limit twice it, so that a larger table
// or a slow collector is not killed. log-ship: bench-logship measured its peak under 100 MB.
const RUN_MEMORY = { requests: { memory: "160Mi", cpu: "100m" }, limits: { memory: "256Mi" } };
const LOG_SHIP_MEMORY = { requests: { memory: "128Mi", cpu: "50m" }, limits: { memory: "192Mi" } };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function checkK8sOptions(namespace: string, image: string): void {
  if (!DNS_LABEL.test(namespace)) {
    throw new UsageError(
      `--namespace: "${namespace}" is not a Kubernetes namespace name (lower-case letters, digits and -, at most 63)`,
    );
  }
  if (image === "" || /\s/.test(image)) throw new UsageError(`--image: "${image}" is not an image reference`);
}

/** The LMS containers' log files of one namespace: `<pod>_<namespace>_<container>-<id>.log`. */
export function lmsLogGlob(namespace: string): string {
  // The container id is hex: `lms-[0-9a-f]*` leaves out the lms-worker containers.
  return `/var/log/containers/lms-*_${namespace}_lms-[0-9a-f]*.log`;
}

/** The configuration as the pods read it: their paths, and no file they would not have. */
function podConfig(config: Config, raw: Record<string, unknown>, namespace: string): string {
  const copy = structuredClone(raw) as Record<string, Record<string, unknown> | unknown>;
  const table = (key: string): Record<string, unknown> => {
    const existing = copy[key];
    if (typeof existing === "object" && existing !== null && !Array.isArray(existing)) {
      return existing as Record<string, unknown>;
    }
    const created: Record<string, unknown> = {};
    copy[key] = created;
    return created;
  };
  copy.state_dir = STATE_DIR;
  Object.assign(table("logs"), { paths: [lmsLogGlob(namespace)], exclude: [], format: "auto" });
  // Password files are on the host, not in the pod: their contents go into the Secret instead.
  for (const [key, password] of [
    ["mysql", config.mysql.password],
    ["mongodb", config.mongodb.password],
  ] as const) {
    const section = copy[key] as Record<string, unknown> | undefined;
    if (section?.password_file === undefined) continue;
    delete section.password_file;
    section.password = password;
  }
  // A host's node_exporter directory is not in the pods, whose root file system is read-only:
  // every run would fail to write there (podNotes says so).
  if (config.metrics.textfile) table("metrics").textfile = "";
  // The pseudonym key travels in the Secret too, beside the configuration (DESIGN §11).
  if (config.privacy.key) table("privacy").key_file = `${CONFIG_DIR}/${PSEUDONYM_KEY}`;
  return TOML.stringify(copy as TOML.JsonMap);
}

/** A host name that, in a pod, names the pod itself. */
function isLoopback(host: string): boolean {
  const name = host.replace(/^\[|\]$/g, "").toLowerCase();
  return name === "localhost" || name === "::1" || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** The hosts of a host list (`h1:27017,h2`), without their ports. */
function hostsOf(list: string): string[] {
  return list.split(",").map((h) => h.replace(/:\d+$/, ""));
}

/** The hosts of a MongoDB URI's host list (`mongodb://user:pw@h1:27017,h2/db?...`). */
function uriHosts(uri: string): string[] {
  return hostsOf(splitUri(uri).rest.split("/")[0] ?? "");
}

/**
 * What of this host's configuration the pods' configuration leaves out, or cannot work in a
 * pod as it is, for the operator.
 */
export function podNotes(config: Config): string[] {
  const notes: string[] = [];
  const service = (what: string, tutor: string) =>
    `in a pod it names the pod itself: set it to the ${what} service's name (Tutor's: ${tutor}) before applying the manifests`;
  if (config.mysql.socket) {
    notes.push(
      `mysql.socket (${config.mysql.socket}) is a socket of this host, not in the pods: set socket = "" and mysql.host to the MySQL service's name (Tutor's: mysql) before applying the manifests`,
    );
  } else if (isLoopback(config.mysql.host)) {
    notes.push(`mysql.host is ${config.mysql.host}: ${service("MySQL", "mysql")}`);
  }
  if (config.tables.some((t) => t.source === "course_structures")) {
    const hosts = config.mongodb.uri ? uriHosts(config.mongodb.uri) : hostsOf(config.mongodb.host);
    const loopback = hosts.find(isLoopback);
    const key = config.mongodb.uri ? "mongodb.uri" : "mongodb.host";
    if (loopback) notes.push(`${key} names ${loopback}: ${service("MongoDB", "mongodb")}`);
  }
  if (config.metrics.textfile) {
    notes.push(
      `[metrics] textfile (${config.metrics.textfile}) is left out of the pods' configuration: it is a file of this host, and the pods' file system is read-only`,
    );
  }
  return notes;
}

/**
 * The shortest time between two firings of a cron schedule, in seconds, over 64 days from
 * 2024-01-01 (enough for two firings of a weekly or monthly schedule; a yearly one counts as 64
 * days): the period a Job must finish within.
 */
export function cronPeriodSeconds(schedule: string): number {
  const text = schedule.trim();
  const macros: Record<string, string> = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
  };
  const fields = (macros[text] ?? text).split(/\s+/);
  const names = [[], [], [], MONTHS, DAYS];
  const bounds = [
    [0, 59],
    [0, 23],
    [1, 31],
    [1, 12],
    [0, 7],
  ] as const;
  const sets = fields.map((field, i) => expand(field, bounds[i]![0], bounds[i]![1], names[i]!));
  if (sets.length !== 5) throw new UsageError(`[schedule]: "${schedule}" is not a cron expression`);
  const [minutes, hours, days, months, weekdays] = sets as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (weekdays.has(7)) weekdays.add(0);
  const dayRestricted = fields[2] !== "*";
  const weekdayRestricted = fields[4] !== "*";
  const start = Date.UTC(2024, 0, 1);
  let previous: number | null = null;
  let shortest = Number.POSITIVE_INFINITY;
  const span = SCAN_DAYS * 24 * 60;
  for (let minute = 0; minute < span; minute++) {
    const t = new Date(start + minute * 60_000);
    if (!minutes.has(t.getUTCMinutes()) || !hours.has(t.getUTCHours()) || !months.has(t.getUTCMonth() + 1))
      continue;
    const dayOk = days.has(t.getUTCDate());
    const weekdayOk = weekdays.has(t.getUTCDay());
    // crontab(5): when both day fields are restricted, either matching is enough.
    const matches = dayRestricted && weekdayRestricted ? dayOk || weekdayOk : dayOk && weekdayOk;
    if (!matches) continue;
    if (previous !== null) shortest = Math.min(shortest, minute - previous);
    previous = minute;
  }
  return (Number.isFinite(shortest) ? shortest : span) * 60;
}

const SCAN_DAYS = 64;
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

function expand(field: string, min: number, max: number, names: string[]): Set<number> {
  const values = new Set<number>();
  const value = (word: string) => {
    const named = names.indexOf(word.toLowerCase());
    return named >= 0 ? named + (names === MONTHS ? 1 : 0) : Number(word);
  };
  for (const item of field.split(",")) {
    const [range = "*", stepText] = item.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    const [from, to] =
      range === "*"
        ? [min, max]
        : range.includes("-")
          ? range.split("-").map(value)
          : [value(range), stepText === undefined ? value(range) : max];
    for (let v = from!; v <= to!; v += step) values.add(v);
  }
  return values;
}

/** A Job's deadline: shorter than the period, so that one run ends before the next is due. */
export function jobDeadlineSeconds(schedule: string): number {
  const period = cronPeriodSeconds(schedule);
  return Math.floor(period * 0.9);
}

const labels = (component: string) => ({
  "app.kubernetes.io/name": NAME,
  "app.kubernetes.io/component": component,
});

const securityContext = {
  runAsNonRoot: true,
  runAsUser: USER_ID,
  runAsGroup: USER_ID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};

const configVolume = { name: "config", secret: { secretName: `${NAME}-config`, defaultMode: 0o400 } };
const configMount = { name: "config", mountPath: CONFIG_DIR, readOnly: true };
// The root file system is read-only: a small writable /tmp for whatever a library puts there.
const tmpVolume = { name: "tmp", emptyDir: { sizeLimit: "64Mi" } };
const tmpMount = { name: "tmp", mountPath: "/tmp" };

function cronJob(
  name: string,
  component: string,
  schedule: string,
  command: string[],
  options: K8sOptions,
): Manifest {
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name, namespace: options.namespace, labels: labels(component) },
    spec: {
      schedule,
      timeZone: "Etc/UTC",
      concurrencyPolicy: "Forbid",
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        spec: {
          // A Job still running when the next is due is stopped: the next one takes over.
          activeDeadlineSeconds: jobDeadlineSeconds(schedule),
          backoffLimit: 0,
          template: {
            metadata: { labels: labels(component) },
            spec: {
              serviceAccountName: NAME,
              restartPolicy: "Never",
              securityContext: {
                runAsNonRoot: true,
                runAsUser: USER_ID,
                runAsGroup: USER_ID,
                fsGroup: USER_ID,
              },
              containers: [
                {
                  name: component,
                  image: options.image,
                  args: ["--config", CONFIG_FILE, "--json", ...command],
                  resources: RUN_MEMORY,
                  securityContext,
                  volumeMounts: [configMount, { name: "state", mountPath: STATE_DIR }, tmpMount],
                },
              ],
              volumes: [
                configVolume,
                { name: "state", persistentVolumeClaim: { claimName: `${NAME}-state` } },
                tmpVolume,
              ],
            },
          },
        },
      },
    },
  };
}

/** Every manifest, in the order `kubectl apply` needs them. */
export function k8sManifests(config: Config, options: K8sOptions): Manifest[] {
  checkK8sOptions(options.namespace, options.image);
  const { namespace } = options;
  const manifests: Manifest[] = [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      // IRSA: annotate it with eks.amazonaws.com/role-arn; EKS Pod Identity: associate it with the
      // role (no annotation); without either, the node's role is used.
      metadata: { name: NAME, namespace, labels: labels("service-account") },
    },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${NAME}-config`, namespace, labels: labels("config") },
      type: "Opaque",
      data: {
        "panorama.toml": Buffer.from(podConfig(config, options.raw, namespace)).toString("base64"),
        ...(config.privacy.key
          ? { [PSEUDONYM_KEY]: Buffer.from(config.privacy.key).toString("base64") }
          : {}),
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: `${NAME}-state`, namespace, labels: labels("state") },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "2Gi" } } },
    },
    cronJob(`${NAME}-run`, "run", config.schedule.run, ["run"], options),
  ];
  if (config.schedule.verify !== "") {
    manifests.push(
      cronJob(`${NAME}-verify`, "verify", config.schedule.verify, ["verify", "--repair"], options),
    );
  }
  if (config.mode === "SAAS" || config.mode === "CUSTOM") manifests.push(logShipDaemonSet(options));
  return manifests;
}

function logShipDaemonSet(options: K8sOptions): Manifest {
  const { namespace } = options;
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: `${NAME}-log-ship`, namespace, labels: labels("log-ship") },
    spec: {
      selector: { matchLabels: labels("log-ship") },
      updateStrategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels: labels("log-ship") },
        spec: {
          serviceAccountName: NAME,
          // SIGTERM flushes, uploads and checkpoints (DESIGN §8): give it the upload's time.
          terminationGracePeriodSeconds: 120,
          // The node's log files are readable by root's group only: read as group 0, never as root.
          // fsGroup: the kubelet writes the Secret's files as root's, mode 0400 (defaultMode),
          // unless fsGroup gives them to that group (0440): else the configuration is unreadable.
          // A hostPath volume is left as it is.
          securityContext: {
            runAsNonRoot: true,
            runAsUser: USER_ID,
            runAsGroup: USER_ID,
            supplementalGroups: [0],
            fsGroup: USER_ID,
          },
          tolerations: [{ operator: "Exists", effect: "NoSchedule" }],
          containers: [
            {
              name: "log-ship",
              image: options.image,
              args: ["--config", CONFIG_FILE, "--json", "log-ship", "--follow"],
              resources: LOG_SHIP_MEMORY,
              securityContext,
              volumeMounts: [
                configMount,
                { name: "containers", mountPath: "/var/log/containers", readOnly: true },
                { name: "pods", mountPath: "/var/log/pods", readOnly: true },
                { name: "docker", mountPath: DOCKER_CONTAINERS, readOnly: true },
                { name: "state", mountPath: STATE_DIR },
                tmpMount,
              ],
            },
          ],
          // kubelet creates a hostPath directory as root, mode 0755: the one step run as root
          // gives it to the image's user, with no capability but CHOWN.
          initContainers: [
            {
              name: "state-owner",
              image: INIT_IMAGE,
              command: ["chown", `${USER_ID}:${USER_ID}`, STATE_DIR],
              securityContext: {
                runAsUser: 0,
                runAsNonRoot: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"], add: ["CHOWN"] },
              },
              volumeMounts: [{ name: "state", mountPath: STATE_DIR }],
            },
          ],
          volumes: [
            configVolume,
            { name: "containers", hostPath: { path: "/var/log/containers", type: "Directory" } },
            { name: "pods", hostPath: { path: "/var/log/pods", type: "Directory" } },
            // No type: the directory is there only on nodes whose runtime is Docker.
            { name: "docker", hostPath: { path: DOCKER_CONTAINERS } },
            {
              name: "state",
              hostPath: { path: `${NODE_STATE_ROOT}/${namespace}`, type: "DirectoryOrCreate" },
            },
            tmpVolume,
          ],
        },
      },
    },
  };
}

/** The manifests as one YAML stream for `kubectl apply -f -`. */
export function formatManifests(manifests: Manifest[]): string {
  return manifests.map((m) => `---\n${Bun.YAML.stringify(m, null, 2)}\n`).join("");
}
