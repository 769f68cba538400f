// The head's file view for the compile-cache protocol: one build's hashed tree (its context and the outputs its actions produced) and externalDigest for files outside it.
import { posix } from "node:path";
import type { Digest } from "../core/index.js";
import type { FileView } from "../cache/index.js";
import { type ContextEntry, type ContextIndex, toTreePath } from "./context-index.js";

/** What the head knows of one build while preparing its actions. */
export interface BuildView {
  projectRoot: string;
  context: ContextIndex;
  /** Outputs of this build's finished actions, by tree path (newer than the context). */
  produced: Map<string, ContextEntry>;
  noCache: boolean;
}

/** A file of the build by tree path: an output an action produced, else the context's. */
export function lookupFile(view: BuildView, treePath: string): ContextEntry | undefined {
  return view.produced.get(treePath) ?? view.context.file(treePath);
}

/**
 * One action's view (paths it spells are relative to `cwd`, a tree path): key paths are tree paths, or absolute outside
 * the tree. A look-up reads the build as it is now (produced outputs first); a record reads the context the compile ran
 * against, not the tree now, since the manifest must say what was read. Probes ask the context only.
 */
export function buildFileView(view: BuildView, cwd: string, externalDigest: (absPath: string) => Promise<Digest | undefined>): FileView {
  return {
    keyPath: (p) => toTreePath(view.projectRoot, cwd, p) ?? posix.resolve(view.projectRoot, cwd, p),
    digestOf: (p) => (posix.isAbsolute(p) ? externalDigest(p) : lookupFile(view, p)?.digest),
    readDigestOf: (p) => (posix.isAbsolute(p) ? externalDigest(p) : view.context.file(p)?.digest),
    exists: (p) => view.context.file(p) !== undefined,
  };
}
