// Golden files: compare output with the committed file; UPDATE_GOLDEN=1 rewrites it instead.
import { expect } from "bun:test";

export async function expectGolden(path: string, actual: string): Promise<void> {
  if (process.env.UPDATE_GOLDEN === "1") {
    await Bun.write(path, actual);
    return;
  }
  const golden = Bun.file(path);
  if (!(await golden.exists())) throw new Error(`${path} is missing: run the tests with UPDATE_GOLDEN=1`);
  expect(actual).toBe(await golden.text());
}
