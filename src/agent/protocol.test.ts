// Unit tests of the agent wire format: round trips, framing across chunk boundaries, and refusal of bad frames.
import { describe, expect, it } from "vitest";
import { decodeReply, decodeRequest, encodeReply, encodeRequest, FrameReader, ProtocolError, ReplyStatus } from "./protocol.js";
import { agentSocketPath } from "./socket-path.js";

const call = { argv: ["/usr/bin/gcc", "-c", "a b.c", "-DX=\"é\""], cwd: "/tmp/proj", env: { PATH: "/usr/bin:/bin", EMPTY: "", EQ: "a=b=c" } };

function payloads(frames: Buffer): Buffer[] {
  return new FrameReader().push(frames);
}

describe("protocol", () => {
  it("round-trips a request", () => {
    const [p] = payloads(encodeRequest(call));
    expect(decodeRequest(p!)).toEqual(call);
  });

  it("round-trips a reply with arbitrary bytes", () => {
    const reply = { status: ReplyStatus.DONE, exitCode: -3, stdout: Buffer.from([0, 1, 2, 255]), stderr: Buffer.from("warning: x\n") };
    const [p] = payloads(encodeReply(reply));
    const back = decodeReply(p!);
    expect(back.status).toBe(ReplyStatus.DONE);
    expect(back.exitCode).toBe(-3);
    expect(Buffer.compare(back.stdout, reply.stdout)).toBe(0);
    expect(back.stderr.toString()).toBe("warning: x\n");
    const [empty] = payloads(encodeReply({ status: ReplyStatus.FALLBACK, exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }));
    expect(decodeReply(empty!)).toMatchObject({ status: ReplyStatus.FALLBACK, exitCode: 0 });
  });

  it("round-trips a REWRITE reply, its command string in the stdout field, and refuses one holding NUL", () => {
    const [p] = payloads(encodeReply({ status: ReplyStatus.REWRITE, exitCode: 0, stdout: Buffer.from("echo 'é'; true"), stderr: Buffer.from("note\n") }));
    expect(p!.readUInt8(0)).toBe(2);
    const back = decodeReply(p!);
    expect([back.status, back.stdout.toString(), back.stderr.toString()]).toEqual([ReplyStatus.REWRITE, "echo 'é'; true", "note\n"]);
    expect(() => encodeReply({ status: ReplyStatus.REWRITE, exitCode: 0, stdout: Buffer.from("a\0b"), stderr: Buffer.alloc(0) })).toThrow(ProtocolError);
    // NUL stays fine in a DONE reply's output: it is bytes to print, not a string.
    expect(() => encodeReply({ status: ReplyStatus.DONE, exitCode: 0, stdout: Buffer.from("a\0b"), stderr: Buffer.alloc(0) })).not.toThrow();
    const unknown = Buffer.from(p!);
    unknown.writeUInt8(3, 0);
    expect(() => decodeReply(unknown)).toThrow(/status 3/);
  });

  it("lays the request out as the C client writes it", () => {
    const bytes = encodeRequest({ argv: ["cc", "-c"], cwd: "/w", env: { A: "1" } });
    const expected = Buffer.concat([Buffer.from([17, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]), Buffer.from("cc\0-c\0/w\0A=1\0")]);
    expect(bytes.readUInt32LE(0)).toBe(bytes.length - 4);
    expect(bytes.subarray(4)).toEqual(expected.subarray(4));
  });

  it("reassembles frames split at every byte and several frames in one chunk", () => {
    const a = encodeRequest(call);
    const b = encodeReply({ status: ReplyStatus.DONE, exitCode: 1, stdout: Buffer.from("o"), stderr: Buffer.from("e") });
    const r = new FrameReader();
    const got: Buffer[] = [];
    for (const byte of a) got.push(...r.push(Buffer.from([byte])));
    expect(got).toHaveLength(1);
    expect(decodeRequest(got[0]!)).toEqual(call);
    const both = new FrameReader().push(Buffer.concat([a, b]));
    expect(both).toHaveLength(2);
    expect(decodeReply(both[1]!).exitCode).toBe(1);
  });

  it("refuses malformed requests", () => {
    const [p] = payloads(encodeRequest(call));
    const wrongVersion = Buffer.from(p!);
    wrongVersion.writeUInt32LE(99, 0);
    expect(() => decodeRequest(wrongVersion)).toThrow(ProtocolError);
    expect(() => decodeRequest(p!.subarray(0, p!.length - 3))).toThrow(/strings/);
    expect(() => decodeRequest(Buffer.concat([p!, Buffer.from("x")]))).toThrow(/after its strings/);
    expect(() => encodeRequest({ ...call, cwd: "a\0b" })).toThrow(ProtocolError);
    const huge = Buffer.alloc(4);
    huge.writeUInt32LE(0xffffffff, 0);
    expect(() => new FrameReader().push(huge)).toThrow(/exceeds/);
  });
});

describe("agentSocketPath", () => {
  const base = { uid: 1000, home: "/home/u" };
  it("follows ORION_AGENT_SOCKET, XDG_RUNTIME_DIR, then the cache dir", () => {
    expect(agentSocketPath({ ...base, env: { ORION_AGENT_SOCKET: "/s/x.sock", XDG_RUNTIME_DIR: "/run/user/1000" } })).toBe("/s/x.sock");
    expect(agentSocketPath({ ...base, env: { XDG_RUNTIME_DIR: "/run/user/1000/", ORION_CACHE_DIR: "/c" } })).toBe("/run/user/1000/orion-agent-1000.sock");
    expect(agentSocketPath({ ...base, env: { XDG_RUNTIME_DIR: "", ORION_CACHE_DIR: "/c" } })).toBe("/c/orion-agent-1000.sock");
    expect(agentSocketPath({ ...base, env: { XDG_CACHE_HOME: "/xc" } })).toBe("/xc/orion/orion-agent-1000.sock");
    expect(agentSocketPath({ ...base, env: {} })).toBe("/home/u/.cache/orion/orion-agent-1000.sock");
  });
  it("falls back to /tmp/orion-<uid>/ when the path does not fit in sun_path", () => {
    expect(agentSocketPath({ ...base, env: { ORION_CACHE_DIR: "/" + "d".repeat(120) } })).toBe("/tmp/orion-1000/orion-agent-1000.sock");
    const fits = "/" + "d".repeat(107 - "/orion-agent-1000.sock".length - 1);
    expect(agentSocketPath({ ...base, env: { ORION_CACHE_DIR: fits } })).toBe(`${fits}/orion-agent-1000.sock`);
  });
});
