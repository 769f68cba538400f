// A binary max-heap by priority, ties broken by insertion order: the ready queue's ordering.

export class PriorityQueue<T> {
  private items: { value: T; priority: number; seq: number }[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(value: T, priority: number): void {
    this.items.push({ value, priority, seq: this.seq++ });
    this.up(this.items.length - 1);
  }

  /** Removes and returns the first item (in priority order) that `accept` takes; others stay queued. */
  take(accept: (value: T) => boolean = () => true): T | undefined {
    if (this.items.length === 0) return undefined;
    if (accept(this.items[0]!.value)) return this.removeAt(0);
    // Rare path (a worker that cannot run the best item): scan in priority order.
    const order = this.items.map((_, i) => i).sort((a, b) => (this.before(a, b) ? -1 : 1));
    for (const i of order) if (accept(this.items[i]!.value)) return this.removeAt(i);
    return undefined;
  }

  remove(pred: (value: T) => boolean): T[] {
    const removed: T[] = [];
    const kept = this.items.filter((it) => (pred(it.value) ? (removed.push(it.value), false) : true));
    if (removed.length) {
      this.items = [];
      for (const it of kept) {
        this.items.push(it);
        this.up(this.items.length - 1);
      }
    }
    return removed;
  }

  values(): T[] {
    return this.items.map((x) => x.value);
  }

  private removeAt(i: number): T {
    const top = this.items[i]!;
    const last = this.items.pop()!;
    if (i < this.items.length) {
      this.items[i] = last;
      this.up(i);
      this.down(i);
    }
    return top.value;
  }

  private before(a: number, b: number): boolean {
    const x = this.items[a]!;
    const y = this.items[b]!;
    return x.priority > y.priority || (x.priority === y.priority && x.seq < y.seq);
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      [this.items[i], this.items[p]] = [this.items[p]!, this.items[i]!];
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.items.length && this.before(l, m)) m = l;
      if (r < this.items.length && this.before(r, m)) m = r;
      if (m === i) break;
      [this.items[i], this.items[m]] = [this.items[m]!, this.items[i]!];
      i = m;
    }
  }
}
