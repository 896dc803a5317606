// The logrotate snippet that keeps the cron jobs' logs bounded: `crontab --install` writes it to
// /etc/logrotate.d/panorama beside the cron file. Rotated by size (checked by logrotate's daily
// run), a few compressed generations kept; copytruncate because the jobs' shell appends to the
// file it opened (>>), so the file must stay where it is.
import type { Config } from "../config/types.ts";
import { logDirectory } from "./crontab.ts";

export const LOGROTATE_FILE = "/etc/logrotate.d/panorama";

export function logrotateSnippet(config: Config): string {
  return `# panorama: the logs of its cron jobs, written by \`panorama crontab --install\` from ${config.file}.
${logDirectory(config)}/panorama-*.log {
    size 10M
    rotate 4
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}
`;
}
