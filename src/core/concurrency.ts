// Running async work over a list with a bound on how much runs at once.

/** f over every item, at most `n` at a time; the results in item order. The first rejection rejects the whole. */
export async function mapLimit<T, R>(items: readonly T[], n: number, f: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  return out;
}
