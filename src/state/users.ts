// User names from /etc/passwd. Bun's os.userInfo() takes the name from $USER ("unknown" without
// it, as under cron or `env -i`; another user's after `setpriv` or `su` without a login), so it
// cannot say whom this process runs as.
import { readFileSync } from "node:fs";

/** The name /etc/passwd gives `uid`, or null (no such line, or no file: a user from LDAP). */
export function userName(uid: number): string | null {
  let passwd: string;
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return null;
  }
  for (const line of passwd.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && id !== undefined && /^\d+$/.test(id) && Number(id) === uid) return name;
  }
  return null;
}

/** The user this process runs as: its name, else its uid (which chown and install -o take too). */
export function currentUser(): string {
  const uid = process.geteuid?.() ?? 0;
  return userName(uid) ?? String(uid);
}
