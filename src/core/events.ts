// Waiting on a stream: the first of several events (a drain, or the end that means no drain will come).

/** Anything with on/off, as Node's and streamx's emitters have. */
export interface Emitter {
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

/** Resolves at the first of `events` on `emitter`, and leaves no listener behind. */
export function onceAny(emitter: Emitter, events: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const e of events) emitter.off(e, done);
      resolve();
    };
    for (const e of events) emitter.on(e, done);
  });
}
