// Where the paths of a gcc/clang command line sit, and the options policy refuses: the driver's option table applied word by word, `-Wl,`/`-Wa,`/`-Wp,` pieces included.
import { assemblerPiece } from "./assembler.js";
import { LinkerWalker } from "./linker.js";
import { DRIVER_NOT_A_PATH, SEPARATE_VALUE_OPTIONS, pathRole, driverLongOption, joinedOption, programOption } from "./options.js";
import { type At, type Found, isPathLike, libraryName, refuse } from "./slot.js";

/** Dumps and optimization reports written to a named file. */
function writesNamedFile(a: string): boolean {
  return a.startsWith("-fdump-") || a.startsWith("-fopt-info") || a.startsWith("-fprofile-note") || a.startsWith("-ftime-trace");
}

/** One walk over a driver argv (or the pieces of a `-Wp,`/`-Xpreprocessor`), pushing path slots and refusals into `out`. */
class DriverWalk {
  constructor(
    private readonly argv: readonly string[],
    private readonly out: Found[],
    private readonly linker: LinkerWalker,
    /** The words are cc1's (`-Wp,` pieces), where `-MD`/`-MMD` take the depfile as their value. */
    private readonly cppPieces: boolean,
  ) {}

  at(index: number): At {
    return (role, option, start, end) => ({ slot: { index, start, end, role, option } });
  }

  run(): void {
    for (let i = 1; i < this.argv.length; ) {
      const step = this.word(i);
      if (step === 0) break;
      i += step;
    }
    this.linker.done();
  }

  /** Reads argument `i`; returns how many words it took, 0 to stop (a value missing at the end). */
  private word(i: number): number {
    const { argv, out } = this;
    const a = argv[i]!;
    if (a === "-" || !a.startsWith("-")) {
      out.push(a.startsWith("@") ? this.at(i)("read", "@file", 1, a.length) : this.at(i)("read", "input", 0, a.length));
      return 1;
    }
    if (a.startsWith("--")) {
      const took = this.longOption(i, a);
      if (took > 0) return took;
    }
    const bad = programOption(a);
    if (bad) {
      out.push({ refuse: bad });
      return SEPARATE_VALUE_OPTIONS.has(a) ? 2 : 1;
    }
    // In -Wp, pieces, cc1's -MD/-MMD name the depfile.
    if (this.cppPieces && (a === "-MD" || a === "-MMD") && i + 1 < argv.length) {
      out.push(this.at(i + 1)("write", a, 0, argv[i + 1]!.length));
      return 2;
    }
    if (SEPARATE_VALUE_OPTIONS.has(a)) {
      if (i + 1 >= argv.length) return 0;
      this.value(a, argv[i + 1]!, 0, i + 1, a);
      return 2;
    }
    if (a.startsWith("-Wl,") || a.startsWith("-Wa,") || a.startsWith("-Wp,")) this.pieces(i, a);
    else this.joined(i, a);
    return 1;
  }

  /** A `--long[=value]` spelling of a short option; 0 when it is none Orion knows (then read as any other word). */
  private longOption(i: number, a: string): number {
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    const short = driverLongOption(name);
    if (short === "-B" || short === "-specs") {
      this.out.push(refuse(name, short === "-B" ? "it changes where the driver finds the programs it runs" : "a specs file can run any program"));
      return eq < 0 ? 2 : 1;
    }
    if (!short) return 0;
    const opt = short === "?" ? "--sysroot" : short;
    if (eq > 0) this.value(opt, a, eq + 1, i, name);
    else if (i + 1 < this.argv.length) {
      this.value(opt, this.argv[i + 1]!, 0, i + 1, name);
      return 2;
    }
    return 1;
  }

  /** The value of option `opt`: argument `index` (`text`) from character `start` on; `shown` is how argv spelled the option. */
  private value(opt: string, text: string, start: number, index: number, shown: string): void {
    const v = text.slice(start);
    const role = pathRole(opt);
    if (role) this.out.push(this.at(index)(role, shown, start, text.length));
    else if (opt === "-Xlinker") this.linker.feed(v, this.at(index), start, this.out);
    else if (opt === "-Xassembler") assemblerPiece(v, this.at(index), start, this.out);
    else if (opt === "-Xpreprocessor") {
      const inner: Found[] = [];
      new DriverWalk(["", v], inner, this.linker, true).run();
      for (const f of inner) this.out.push("slot" in f ? { slot: { ...f.slot, index, start: f.slot.start + start, end: f.slot.end + start } } : f);
    } else if (opt === "-imultilib" && isPathLike(v)) this.out.push(refuse(shown, `${v} is not a subdirectory name`));
    else if (opt === "-l") libraryName("-l", v, this.out);
  }

  /** `-Wl,…`, `-Wa,…`, `-Wp,…`: each comma-separated piece goes to the linker, assembler or preprocessor reader. */
  private pieces(i: number, a: string): void {
    let offset = 4;
    const pieces = a.slice(4).split(",");
    if (a.startsWith("-Wp,")) {
      const inner: Found[] = [];
      new DriverWalk(["", ...pieces], inner, this.linker, true).run();
      // Pieces are words 1.. of that pseudo-argv: place their slots back inside this argument.
      const starts: number[] = [];
      for (const piece of pieces) {
        starts.push(offset);
        offset += piece.length + 1;
      }
      for (const f of inner) this.out.push("slot" in f ? { slot: { ...f.slot, index: i, start: starts[f.slot.index - 1]! + f.slot.start, end: starts[f.slot.index - 1]! + f.slot.end } } : f);
      return;
    }
    for (const piece of pieces) {
      if (a.startsWith("-Wl,")) this.linker.feed(piece, this.at(i), offset, this.out);
      else assemblerPiece(piece, this.at(i), offset, this.out);
      offset += piece.length + 1;
    }
  }

  /** A joined option (`-Idir`, `-ofile`, `-Tscript`, `-lname`), or any `-opt=value` whose value looks like a path. */
  private joined(i: number, a: string): void {
    const joined = joinedOption(a);
    const joinedRole = joined && pathRole(joined);
    if (joined && joinedRole) {
      // `-I=dir` is relative to the sysroot; the dir itself is what is checked.
      const start = joined.length + (joined === "-I" && a[2] === "=" ? 1 : 0);
      this.out.push(this.at(i)(joinedRole, joined, start, a.length));
      return;
    }
    if (a.startsWith("-T") && a.length > 2 && !/^-T(text|data|bss)/.test(a)) {
      this.out.push(this.at(i)("read", "-T", 2, a.length));
      return;
    }
    if (a.startsWith("-l")) return libraryName("-l", a.slice(2), this.out);
    if (a.startsWith("-D") || a.startsWith("-U")) return;
    const eq = a.indexOf("=");
    if (eq < 0 || DRIVER_NOT_A_PATH.some((p) => a.startsWith(p))) return;
    const name = a.slice(0, eq);
    const value = a.slice(eq + 1);
    if (name === "--sysroot" || isPathLike(value)) this.out.push(this.at(i)(writesNamedFile(a) ? "write" : "read", name, eq + 1, a.length));
  }
}

/** Path slots and refusals of a driver (gcc, cc, clang…) command line. */
export function driverSlots(argv: readonly string[], out: Found[]): void {
  new DriverWalk(argv, out, new LinkerWalker(), false).run();
}
