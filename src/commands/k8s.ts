import { defineCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { ConfigError } from "../errors.ts";
import { log } from "../log.ts";
import { formatManifests, k8sManifests, podNotes } from "../setup/k8s.ts";
import { globalArgs, prepareLoaded } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "k8s",
    description:
      "Print the Kubernetes manifests (CronJobs for run and verify, DaemonSet for log-ship) for this config",
  },
  args: {
    ...globalArgs,
    namespace: {
      type: "string",
      description: "the namespace of the Open edX pods (default openedx)",
      valueHint: "N",
    },
    image: {
      type: "string",
      description: `the panorama image (default panorama:${pkg.version}, as scripts/build-image.sh tags it)`,
      valueHint: "I",
    },
  },
  async run({ args }) {
    const { config, raw } = await prepareLoaded(args);
    if (config.file === null) {
      throw new ConfigError(
        "the manifests need a configuration file to put in their Secret",
        "pass --config FILE",
      );
    }
    const namespace = args.namespace ?? "openedx";
    if (config.mode === "DEMO") {
      process.stdout.write(
        `# panorama: DEMO mode schedules nothing; set mode in ${config.file} to FREE, SAAS or CUSTOM and run \`panorama k8s\` again.\n`,
      );
      return;
    }
    if (config.mode === "FREE") log.info("mode FREE ships no tracking logs: no log-ship DaemonSet");
    for (const note of podNotes(config)) log.warn(note);
    process.stdout.write(
      formatManifests(
        k8sManifests(config, { namespace, image: args.image ?? `panorama:${pkg.version}`, raw }),
      ),
    );
  },
});
