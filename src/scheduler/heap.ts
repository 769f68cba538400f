// A binary max-heap by priority, ties broken by insertion order: the ready queue's ordering. It knows
// where each value sits, so a value can be taken out of the middle in O(log n) (the scheduler keeps one
// queue per input root beside the main one, and a task taken from either leaves both).

interface Item<T> {
  value: T;
  priority: number;
  seq: number;
}

export class PriorityQueue<T> {
  private items: Item<T>[] = [];
  /** value → its index in `items`; a value is queued at most once. */
  private readonly at = new Map<T, number>();
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(value: T, priority: number): void {
    if (this.at.has(value)) throw new Error("PriorityQueue: value already queued");
    this.items.push({ value, priority, seq: this.seq++ });
    this.at.set(value, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  has(value: T): boolean {
    return this.at.has(value);
  }

  /** The first item (in priority order) that `accept` takes, left queued. */
  peek(accept: (value: T) => boolean = () => true): T | undefined {
    const i = this.find(accept);
    return i === undefined ? undefined : this.items[i]!.value;
  }

  /** The priority a queued value was pushed with. */
  priorityOf(value: T): number | undefined {
    const i = this.at.get(value);
    return i === undefined ? undefined : this.items[i]!.priority;
  }

  /** Removes and returns the first item (in priority order) that `accept` takes; others stay queued. */
  take(accept: (value: T) => boolean = () => true): T | undefined {
    const i = this.find(accept);
    return i === undefined ? undefined : this.removeAt(i);
  }

  /** Takes one queued value out, wherever it sits; false when it was not queued. */
  delete(value: T): boolean {
    const i = this.at.get(value);
    if (i === undefined) return false;
    this.removeAt(i);
    return true;
  }

  remove(pred: (value: T) => boolean): T[] {
    const removed: T[] = [];
    const kept = this.items.filter((it) => (pred(it.value) ? (removed.push(it.value), false) : true));
    if (removed.length) {
      this.items = [];
      this.at.clear();
      for (const it of kept) {
        this.items.push(it);
        this.at.set(it.value, this.items.length - 1);
        this.up(this.items.length - 1);
      }
    }
    return removed;
  }

  values(): T[] {
    return this.items.map((x) => x.value);
  }

  private find(accept: (value: T) => boolean): number | undefined {
    if (this.items.length === 0) return undefined;
    if (accept(this.items[0]!.value)) return 0;
    // Rare path (a worker that cannot run the best item): scan in priority order.
    const order = this.items.map((_, i) => i).sort((a, b) => (this.before(a, b) ? -1 : 1));
    for (const i of order) if (accept(this.items[i]!.value)) return i;
    return undefined;
  }

  private removeAt(i: number): T {
    const top = this.items[i]!;
    const last = this.items.pop()!;
    this.at.delete(top.value);
    if (i < this.items.length) {
      this.items[i] = last;
      this.at.set(last.value, i);
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

  private swap(i: number, j: number): void {
    const x = this.items[i]!;
    const y = this.items[j]!;
    this.items[i] = y;
    this.items[j] = x;
    this.at.set(y.value, i);
    this.at.set(x.value, j);
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
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
      this.swap(i, m);
      i = m;
    }
  }
}
