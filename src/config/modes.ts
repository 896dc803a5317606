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

export type Permission = { allowed: true } | { allowed: false; reason: string };

/** Whether `job` may run in `mode`; when not, a sentence saying why. */
export function modeAllows(mode: Mode, job: Job): Permission {
  if (ALLOWED[mode].includes(job)) return { allowed: true };
  return {
    allowed: false,
    reason: `${REASON[mode]}; ${job} is not run (set mode in the config to change this)`,
  };
}

/**
 * Whether `mode` calls Athena: CUSTOM creates views through it, SAAS runs doctor's test query;
 * FREE never does. The IAM policy grants Athena exactly when doctor tries it.
 */
export function usesAthena(mode: Mode): boolean {
  return mode === "CUSTOM" || mode === "SAAS";
}
