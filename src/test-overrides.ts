// Waits and timeouts that tests shorten through PANORAMA_TEST_* variables: an outage test would
// otherwise wait as long as a real host does (a minute for an AWS call, two for MySQL or MongoDB to return).

/** The integer above 0 in the variable `name`, else `otherwise`. */
export function fromTestEnv(name: string, otherwise: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : otherwise;
}
