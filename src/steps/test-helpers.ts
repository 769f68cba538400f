// Shared by the steps' tests: a program the preload tracer must refuse, made from one it reaches.
/** A dynamic ELF whose GNU build-id note is made Go's (owner "Go\0\0", type 4): it still runs. */
export function goLookalike(elf: Buffer): Buffer {
  const gnu = Buffer.from([4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0]);
  const at = elf.indexOf(gnu);
  if (at < 0) throw new Error("no GNU build-id note");
  Buffer.from([4, 0, 0, 0, 0x47, 0x6f, 0, 0]).copy(elf, at + 8);
  return elf;
}
