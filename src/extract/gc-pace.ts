// Peak memory of a long extraction. Every socket read is a fresh buffer, and JSC collects them
// late: streaming hundreds of MB lets the garbage pile up to most of the process's peak RSS. A
// full collection every PACE bytes keeps it to a few reads' worth, at about 1% of the time.
const PACE = 64 * 1024 * 1024;
let streamed = 0;

/** Count streamed bytes; collect after every PACE of them. */
export function paceGc(bytes: number): void {
  streamed += bytes;
  if (streamed < PACE) return;
  streamed = 0;
  Bun.gc(true);
}
