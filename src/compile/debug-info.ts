// Whether a compile's object embeds the directory it ran in: debug info without a prefix map covering that directory.
import type { DriverCall } from "./driver.js";

/** True when the call writes debug info and no `-fdebug-prefix-map`/`-ffile-prefix-map`/`-fdebug-compilation-dir` covers `cwdAbs`, as ccache's hash_dir decides. */
export function embedsCwd(call: Pick<DriverCall, "hasDebugInfo" | "debugPrefixMapFrom">, cwdAbs: string): boolean {
  if (!call.hasDebugInfo) return false;
  const mapped = call.debugPrefixMapFrom.some(
    (from) => from === "" || cwdAbs === from || cwdAbs.startsWith(from.endsWith("/") ? from : `${from}/`),
  );
  return !mapped;
}
