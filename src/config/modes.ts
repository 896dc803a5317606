// What each mode lets panorama do (DESIGN §1). Every command asks here before it works.
import type { Mode } from "./types.ts";

export type Job =
  | "extract"
  | "course-structures"
  | "upload"
  | "catalog-create"
  | "catalog-views"
  | "catalog-partitions"
  | "log-ship";

const ALLOWED: Record<Mode, readonly Job[]> = {
  DEMO: [],
  FREE: ["extract", "course-structures", "upload", "catalog-partitions"],
  SAAS: ["extract", "course-structures", "upload", "catalog-partitions", "log-ship"],
  CUSTOM: [
    "extract",
    "course-structures",
    "upload",
    "catalog-create",
    "catalog-views",
    "catalog-partitions",
    "log-ship",
  ],
};

const REASON: Record<Mode, string> = {
  DEMO: "DEMO mode: nothing is extracted, shipped or catalogued",
  FREE: "FREE mode: relational tables and course structures only",
  SAAS: "SAAS mode: the catalog's tables and views are managed by the provider",
  CUSTOM: "",
};

/** Each job in an operator's words, for the sentence that says it is skipped. */
const JOB_WORDS: Record<Job, string> = {
  extract: "extraction of the MySQL tables",
  "course-structures": "extraction of the course structures",
  upload: "upload to the datalake",
  "catalog-create": "creation of the Glue tables",
  "catalog-views": "creation of the Athena views",
  "catalog-partitions": "registration of partitions in Glue",
  "log-ship": "shipping of tracking logs",
};

export type Permission = { allowed: true } | { allowed: false; reason: string };

/** Whether `job` may run in `mode`; when not, a sentence saying why. */
export function modeAllows(mode: Mode, job: Job): Permission {
  if (ALLOWED[mode].includes(job)) return { allowed: true };
  return {
    allowed: false,
    reason: `${REASON[mode]}; the ${JOB_WORDS[job]} is skipped (set mode in the config to change this)`,
  };
}

/**
 * Whether `mode` calls Athena: CUSTOM creates views through it, SAAS runs doctor's test query;
 * FREE never does. The IAM policy grants Athena exactly when doctor tries it.
 */
export function usesAthena(mode: Mode): boolean {
  return mode === "CUSTOM" || mode === "SAAS";
}
