// Tests for the stat cache: unchanged files are served without a read, racy and changed files are re-hashed.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock, digestOf } from "../core/index.js";
import { StatCache } from "./stat-cache.js";

let dir: string;
const caches: StatCache[] = [];
/** Whole seconds, so utimes can restore an mtime exactly. */
const OLD = Math.floor(Date.now() / 1000) - 3600;

function cache(clock = new FakeClock(Date.now())): StatCache {
  const c = new StatCache(join(dir, "stat.db"), { clock });
  caches.push(c);
  return c;
}

function oldFile(name: string, content: string): string {
  const p = join(dir, name);
  fs.writeFileSync(p, content);
  fs.utimesSync(p, OLD, OLD);
  return p;
}

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-stat-"));
});

afterEach(() => {
  for (const c of caches.splice(0)) c.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("StatCache", () => {
  it("serves an unchanged stat from the cache without reading the file", async () => {
    const c = cache();
    const p = oldFile("a.txt", "hello\n");
    expect(await c.digestOf(p)).toEqual(digestOf("hello\n"));
    expect([c.hits, c.misses]).toEqual([0, 1]);
    // Same size, same inode, mtime put back: only a read could notice, and the cache must not read.
    fs.writeFileSync(p, "HELLO\n");
    fs.utimesSync(p, OLD, OLD);
    expect(await c.digestOf(p)).toEqual(digestOf("hello\n"));
    expect([c.hits, c.misses]).toEqual([1, 1]);
  });

  it("re-hashes when size, mtime or inode change", async () => {
    const c = cache();
    const p = oldFile("a.txt", "one");
    await c.digestOf(p);
    fs.writeFileSync(p, "three");
    fs.utimesSync(p, OLD, OLD);
    expect(await c.digestOf(p)).toEqual(digestOf("three"));
    fs.writeFileSync(p, "fives");
    fs.utimesSync(p, OLD + 1, OLD + 1);
    expect(await c.digestOf(p)).toEqual(digestOf("fives"));
    const q = oldFile("b.txt", "sixes");
    fs.renameSync(q, p); // same size and mtime, new inode
    fs.utimesSync(p, OLD + 1, OLD + 1);
    expect(await c.digestOf(p)).toEqual(digestOf("sixes"));
    expect(c.misses).toBe(4);
  });

  it("does not record a file modified within the racy window", async () => {
    const clock = new FakeClock(Date.now());
    const c = cache(clock);
    const p = join(dir, "fresh.txt");
    fs.writeFileSync(p, "new");
    await c.digestOf(p);
    await c.digestOf(p);
    expect(c.misses).toBe(2);
    clock.advance(5000);
    await c.digestOf(p);
    await c.digestOf(p);
    expect([c.hits, c.misses]).toEqual([1, 3]);
  });

  it("trusts a file stamped below the second once its mtime is ~50 ms past, one stamped in whole seconds after the racy window", async () => {
    const clock = new FakeClock(Date.now());
    const c = cache(clock);
    const fine = join(dir, "fine.txt");
    fs.writeFileSync(fine, "fine");
    const whole = join(dir, "whole.txt");
    fs.writeFileSync(whole, "whole");
    const wholeSecond = Math.floor(clock.now() / 1000);
    fs.utimesSync(whole, wholeSecond, wholeSecond);
    fs.utimesSync(fine, clock.now() / 1000 - 0.0123, clock.now() / 1000 - 0.0123); // sub-second, 12.3 ms ago
    clock.advance(100);
    for (const p of [fine, whole, fine, whole]) await c.digestOf(p);
    // fine: hashed once, then served; whole: hashed both times (its second may not be over).
    expect([c.hits, c.misses]).toEqual([1, 3]);
  });

  it("persists across instances once flushed", async () => {
    const p = oldFile("a.txt", "kept");
    const c1 = cache();
    await c1.digestOf(p);
    const c2 = cache();
    await c2.digestOf(p);
    expect(c2.misses).toBe(1); // not flushed yet: c1's row is still pending
    c1.close();
    const c3 = cache();
    expect(await c3.digestOf(p)).toEqual(digestOf("kept"));
    expect([c3.hits, c3.misses]).toEqual([1, 0]);
  });

  it("accepts a bigint stat from the caller", async () => {
    const c = cache();
    const p = oldFile("a.txt", "x");
    const st = fs.statSync(p, { bigint: true });
    await c.digestOf(p, st);
    expect(await c.digestOf(p, st)).toEqual(digestOf("x"));
    expect(c.hits).toBe(1);
  });

  it("keeps a file the caller wrote itself once its mtime has settled, and only while it still has that stat", async () => {
    const clock = new FakeClock(Date.now());
    const c = cache(clock);
    const p = join(dir, "out.o");
    fs.writeFileSync(p, "object\n");
    const q = join(dir, "edited.o");
    fs.writeFileSync(q, "object\n");
    c.remember(p, fs.statSync(p, { bigint: true }), digestOf("object\n"));
    c.remember(q, fs.statSync(q, { bigint: true }), digestOf("object\n"));
    fs.writeFileSync(q, "OBJECT\n"); // changed after it was remembered
    fs.utimesSync(q, OLD, OLD);
    clock.advance(1000);
    c.flush();
    c.close();
    const next = cache(clock);
    expect(await next.digestOf(p)).toEqual(digestOf("object\n"));
    expect(next.hits).toBe(1);
    expect(await next.digestOf(q)).toEqual(digestOf("OBJECT\n"));
    expect(next.misses).toBe(1);
  });

  it("keeps a file written just before close once the kernel's file clock has ticked past it (the wall clock standing still)", async () => {
    const clock = new FakeClock(Date.now());
    const c = cache(clock);
    const p = join(dir, "fresh.o");
    fs.writeFileSync(p, "object\n");
    c.remember(p, fs.statSync(p, { bigint: true }), digestOf("object\n"));
    c.close();
    const next = cache(clock);
    expect(await next.digestOf(p)).toEqual(digestOf("object\n"));
    expect(next.hits).toBe(1);
  });
});
