// Reads assembler words (`-Wa,` pieces, `-Xassembler` values): its outputs, include dirs, and anything path-like.
import { type At, type Found, isPathLike } from "./slot.js";

/** One assembler word (`-Wa,` piece or `-Xassembler` value): its outputs, include dirs, and anything path-like. */
export function assemblerPiece(piece: string, at: At, offset: number, out: Found[]): void {
  if (piece.startsWith("-o") && piece.length > 2) out.push(at("write", "-Wa,-o", offset + 2, offset + piece.length));
  else if (piece.startsWith("-I") && piece.length > 2) out.push(at("read", "-Wa,-I", offset + 2, offset + piece.length));
  else if (/^-a[a-z]*=/.test(piece) || piece.startsWith("--MD=")) out.push(at("write", piece.slice(0, piece.indexOf("=")), offset + piece.indexOf("=") + 1, offset + piece.length));
  else if (piece.startsWith("@")) out.push(at("read", "@file", offset + 1, offset + piece.length));
  else if (piece.includes("=") && isPathLike(piece.slice(piece.indexOf("=") + 1))) out.push(at("read", piece.slice(0, piece.indexOf("=")), offset + piece.indexOf("=") + 1, offset + piece.length));
  // Separate values (`-Wa,-o,file`, `-Wa,--MD,file`): any word that names a path is checked; an output is checked as a read would be, the stricter rule below covers writes in the project.
  else if (!piece.startsWith("-") && isPathLike(piece)) out.push(at("write", "assembler argument", offset, offset + piece.length));
}
