import { dirname, resolve } from "node:path";
import { defineCommand } from "citty";
import { addSecrets, log } from "../log.ts";
import { KEY_BYTES, KEY_WARNING, keyFileWarning, readKeyFile } from "../privacy/pseudonym.ts";
import { PSEUDONYM_KEY_FILE, starterConfig, writeConfigFile, writeKeyFile } from "../setup/init.ts";
import { fromTutor, readTutorConfig } from "../setup/tutor.ts";
import { globalArgs, startLogging } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "init",
    description: "Write a starter config; --from-tutor fills it from a Tutor config.yml",
  },
  args: {
    ...globalArgs,
    "from-tutor": {
      type: "string",
      description:
        "fill the values from this Tutor config.yml (in the directory `tutor config printroot` prints)",
      valueHint: "CONFIG_YML",
    },
    output: { type: "string", description: "the file to write (default ./panorama.toml)", valueHint: "FILE" },
    force: { type: "boolean", description: "overwrite the output file if it exists" },
  },
  async run({ args }) {
    startLogging(args);
    const output = resolve(args.output ?? "panorama.toml");
    const tutorFile = args["from-tutor"];
    const tutor = tutorFile === undefined ? undefined : fromTutor(await readTutorConfig(resolve(tutorFile)));
    const starter = starterConfig(tutor);
    // Nothing prints the values, but should a message ever quote one, it is blanked.
    addSecrets(starter.secrets);
    writeConfigFile(output, starter.text, args.force === true);
    log.success(`wrote ${output} (mode 0600)`);
    // Never replaced, even with --force: a new key would change every pseudonym.
    const keyFile = resolve(dirname(output), PSEUDONYM_KEY_FILE);
    if (writeKeyFile(keyFile) === "written") log.success(`wrote the pseudonym key ${keyFile} (mode 0600)`);
    else keptKeyFile(keyFile);
    log.info(`[privacy]: ${KEY_WARNING}`);
    if (tutor) {
      log.info(`filled from ${tutor.file}: ${starter.filled.join(", ") || "nothing"}`);
      if (starter.defaulted.length > 0)
        log.info(`filled with Tutor's defaults: ${starter.defaulted.join(", ")}`);
      for (const warning of starter.warnings) log.warn(warning);
      for (const u of tutor.unusable) {
        log.warn(`${tutor.file}:${u.line}: ${u.tutorKey} not filled into ${u.keyPath}: ${u.reason}`);
      }
      if (tutor.unused.length > 0) {
        log.info(`not used by panorama (listed at the end of the file): ${tutor.unused.join(", ")}`);
      }
    }
    log.info(
      tutor
        ? `next: review ${output} (every key is explained in panorama.toml.example)`
        : `next: in ${output}, fill lms_host, datalake.bucket, [mysql] and [mongodb], then set mode`,
    );
  },
});

/**
 * An existing key is never replaced, but one that cannot serve (short, empty, unreadable) or that
 * others can read is said now, with its fix, rather than when pseudonyms are switched on.
 */
function keptKeyFile(keyFile: string): void {
  const read = readKeyFile(keyFile);
  if ("problem" in read && read.existing) {
    log.warn(`kept the pseudonym key, but ${read.problem}: ${read.hint}`);
    return;
  }
  if ("problem" in read) {
    log.warn(
      `kept the existing pseudonym key, but ${read.problem}: pseudonyms cannot be switched on with it; no pseudonym was made with it, so replace it: head -c ${KEY_BYTES} /dev/urandom > ${keyFile} && chmod 600 ${keyFile}`,
    );
    return;
  }
  log.info(`kept the pseudonym key ${keyFile}`);
  const warning = keyFileWarning(keyFile);
  if (warning) log.warn(warning);
}
