// Reads linker words — `ld`'s argv, or the pieces of `-Wl,` and `-Xlinker` — against ld's option table: which take a value, and which values are paths.
import { type At, type Found, type PathRole, libraryName, refuse } from "./slot.js";

/** Linker options that take the next word, and what it is ("opaque": a name, an address, a run-time path). */
const LINKER_VALUE: Record<string, PathRole | "opaque" | "program"> = {
  "-o": "write", "--output": "write", "-Map": "write", "--Map": "write", "--out-implib": "write", "--dependency-file": "write",
  "-T": "read", "--script": "read", "-dT": "read", "--default-script": "read", "-L": "read", "--library-path": "read",
  "--version-script": "read", "--dynamic-list": "read", "-rpath-link": "read", "--rpath-link": "read", "--just-symbols": "read",
  "-Y": "read", "--retain-symbols-file": "read", "-c": "read", "--mri-script": "read", "--sysroot": "read",
  "-plugin": "program", "--plugin": "program",
  "-rpath": "opaque", "--rpath": "opaque", "-R": "opaque", "-soname": "opaque", "--soname": "opaque", "-h": "opaque",
  "-e": "opaque", "--entry": "opaque", "-u": "opaque", "--undefined": "opaque", "-y": "opaque", "--trace-symbol": "opaque",
  "-z": "opaque", "-m": "opaque", "-b": "opaque", "--format": "opaque", "-A": "opaque", "--architecture": "opaque",
  "-F": "opaque", "--filter": "opaque", "-f": "opaque", "--auxiliary": "opaque", "-G": "opaque", "-I": "opaque",
  "--dynamic-linker": "opaque", "--defsym": "opaque", "--wrap": "opaque", "--hash-style": "opaque",
  "--section-start": "opaque", "-Ttext": "opaque", "-Tdata": "opaque", "-Tbss": "opaque", "-Ttext-segment": "opaque",
  "-Trodata-segment": "opaque", "-Tldata-segment": "opaque", "--image-base": "opaque", "--exclude-libs": "opaque",
  "--require-defined": "opaque", "--oformat": "opaque", "-a": "opaque", "--sort-section": "opaque", "-plugin-opt": "opaque",
  "--plugin-opt": "opaque", "-l": "opaque", "--library": "opaque",
};

/**
 * What an abbreviated long linker option (`--scr=…`, ld takes any unambiguous prefix) may stand for: a plugin is
 * refused, a path is checked (written if any candidate writes); a name is never trusted to swallow the next word
 * unchecked, since a flag that happens to prefix one (`--trace`, `--trace-symbol`) takes none.
 */
function abbreviatedLinkerOption(name: string): PathRole | "program" | undefined {
  const bare = name.replace(/^-+/, "");
  if (bare.length < 3) return undefined;
  const kinds = Object.entries(LINKER_VALUE)
    .filter(([k]) => k.replace(/^-+/, "").startsWith(bare))
    .map(([, kind]) => kind);
  if (kinds.includes("program")) return "program";
  if (kinds.includes("write")) return "write";
  if (kinds.includes("read")) return "read";
  return undefined;
}

/**
 * Walks linker words (`ld`'s argv, or the pieces of `-Wl,` and `-Xlinker`), carrying "the next word is a value" across
 * driver arguments, as the linker sees them joined. `at(start, end)` places a path slot within the current argument.
 */
export class LinkerWalker {
  private pending?: { option: string; kind: PathRole | "opaque" | "program" };

  feed(word: string, at: At, offset: number, out: Found[]): void {
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      if (p.kind === "program") out.push(refuse(p.option, "it loads a linker plugin"));
      else if (p.kind === "opaque") libraryName(p.option, word, out);
      else out.push(at(p.kind, p.option, offset, offset + word.length));
      return;
    }
    if (!word.startsWith("-") || word === "-") {
      if (word.startsWith("@")) out.push(at("read", "@file", offset + 1, offset + word.length));
      else out.push(at("read", "linker input", offset, offset + word.length));
      return;
    }
    const eq = word.indexOf("=");
    const name = eq > 0 ? word.slice(0, eq) : word;
    // GNU ld accepts a single dash for long options (-Map, -rpath) and a double one for short ones.
    const kind = LINKER_VALUE[name] ?? LINKER_VALUE[name.replace(/^--/, "-")] ?? LINKER_VALUE[`-${name}`] ?? abbreviatedLinkerOption(name);
    if (kind === "program" || name === "-plugin" || name === "--plugin") {
      out.push(refuse(name, "it loads a linker plugin"));
      return;
    }
    if (kind !== undefined) {
      if (eq > 0) {
        if (kind === "opaque") libraryName(name, word.slice(eq + 1), out);
        else out.push(at(kind, name, offset + eq + 1, offset + word.length));
      } else this.pending = { option: name, kind };
      return;
    }
    // Joined short forms: -Ldir, -Tscript, -lname, -ofile (-Ttext=… and friends are addresses, matched above by name).
    for (const [prefix, role] of [["-L", "read"], ["-T", "read"], ["-o", "write"]] as const) {
      if (word.startsWith(prefix) && word.length > prefix.length && !word.startsWith("-Tt") && !word.startsWith("-Td") && !word.startsWith("-Tb") && !word.startsWith("-Tr") && !word.startsWith("-Tl")) {
        out.push(at(role, prefix, offset + prefix.length, offset + word.length));
        return;
      }
    }
    if (word.startsWith("-l")) {
      libraryName("-l", word.slice(2), out);
      return;
    }
    // An option Orion does not know: a value that looks like a path is checked as one.
    if (eq > 0) out.push(at("read", name, offset + eq + 1, offset + word.length));
  }

  /** A value still expected when the words run out (`-Wl,-T` at the end): nothing to check, the linker will complain. */
  done(): void {
    this.pending = undefined;
  }
}
