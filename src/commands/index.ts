// Command name → lazy import, so start-up loads only the command that runs. Imports run one way:
// from here to the command modules, never back (the completions command is given this map).
import type { CommandDef } from "citty";

// biome-ignore lint/suspicious/noExplicitAny: citty's CommandDef is generic over each command's own args
type AnyCommand = CommandDef<any>;

export const commands: Record<string, () => Promise<AnyCommand>> = {
  run: () => import("./run.ts").then((m) => m.default),
  extract: () => import("./extract.ts").then((m) => m.default),
  upload: () => import("./upload.ts").then((m) => m.default),
  catalog: () => import("./catalog.ts").then((m) => m.default),
  "log-ship": () => import("./log-ship.ts").then((m) => m.default),
  schema: () => import("./schema.ts").then((m) => m.default),
  status: () => import("./status.ts").then((m) => m.default),
  verify: () => import("./verify.ts").then((m) => m.default),
  doctor: () => import("./doctor.ts").then((m) => m.default),
  crontab: () => import("./crontab.ts").then((m) => m.default),
  "iam-policy": () => import("./iam-policy.ts").then((m) => m.default),
  init: () => import("./init.ts").then((m) => m.default),
  k8s: () => import("./k8s.ts").then((m) => m.default),
  // completions describes this map: it is handed over, so that completions.ts need not import it.
  completions: () => import("./completions.ts").then((m) => m.completionsCommand(commands)),
};
