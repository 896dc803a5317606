// One error type per edge, each carrying a message for a person; exitCodeFor() is the one place
// where errors become exit codes (DESIGN §2), report() the one where they become log lines.
import { log, redact } from "./log.ts";

export class PanoramaError extends Error {
  /** a short "what to do" line shown after the message */
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** The configuration is invalid or missing: exit 2. */
export class ConfigError extends PanoramaError {}

/** The command line is invalid: exit 2. */
export class UsageError extends PanoramaError {}

/** Another run holds the lock: exit 3. */
export class LockedError extends PanoramaError {}

/** A job failed, wholly or partly; the log says what was kept: exit 1. */
export class JobError extends PanoramaError {}

export const EXIT = { ok: 0, failed: 1, usage: 2, locked: 3 } as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof ConfigError || error instanceof UsageError) return EXIT.usage;
  if (error instanceof LockedError) return EXIT.locked;
  return EXIT.failed;
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** `message` without `hint` at its end: some errors carry their hint in the message too. */
export function withoutHint(message: string, hint: string | undefined): string {
  if (!hint) return message;
  for (const suffix of [`; ${hint}`, ` (${hint})`, `: ${hint}`, ` ${hint}`]) {
    if (message.endsWith(suffix)) return message.slice(0, -suffix.length);
  }
  return message;
}

/** An error's message with its hint said once, in parentheses, for one-line reports. */
export function messageWithHint(error: unknown): string {
  const hint = error instanceof PanoramaError ? error.hint : undefined;
  const message = withoutHint(messageOf(error), hint);
  return hint ? `${message} (${hint})` : message;
}

/** Log an error that ends a command (or a job): its message, then its hint when it has one. */
export function report(error: unknown): void {
  if (error instanceof PanoramaError) {
    log.error(redact(error.message));
    if (error.hint) log.info(redact(`hint: ${error.hint}`));
    return;
  }
  // An unexpected error: its stack helps a bug report, and secrets are still blanked.
  log.error(redact(messageOf(error)));
  if (error instanceof Error && error.stack) log.debug(redact(error.stack));
}
