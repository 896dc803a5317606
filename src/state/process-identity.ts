// Which process wrote a temporary file or a journal entry, and whether it still runs. A pid
// alone does not say: in a container panorama is pid 1 in every pod, so a killed run's files
// carry the pid of the next run, which took them for its own and never cleaned them up. The
// kernel's start time of the process (in clock ticks since boot) tells two holders of a pid apart.
import { readFileSync } from "node:fs";

/**
 * The start time of process `pid` as /proc/<pid>/stat gives it (field 22), or undefined where it
 * cannot be read (no /proc, another user's process hidden by hidepid).
 */
export function processStart(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[19]);
  return Number.isSafeInteger(start) ? start : undefined;
}

/** This process's start time, read once. */
export const OWN_START = processStart(process.pid);

/** `pid` or `pid-start`: how a writer is named in a temporary file's name. */
export const OWN_WRITER = OWN_START === undefined ? `${process.pid}` : `${process.pid}-${OWN_START}`;

/**
 * Whether the process that recorded (`pid`, `start`) still runs; one of another user's counts.
 * Without `start` (a file written before panorama recorded it) only the pid is compared, and this
 * process's own pid is alive.
 */
export function processAlive(pid: number, start?: number): boolean {
  if (pid === process.pid) return start === undefined || OWN_START === undefined || start === OWN_START;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (start === undefined) return true;
  const now = processStart(pid);
  return now === undefined || now === start;
}
