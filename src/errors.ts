// One error type per edge, each carrying a message for a person; exitCodeFor() is the one place
// where errors become exit codes (DESIGN §2).

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
