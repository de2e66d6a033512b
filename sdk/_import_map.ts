// The import map every runner command uses.
//
// "deno-ci:pipeline" names the pipeline file. The runner imports that literal
// specifier: Deno loads statically analysable imports, dynamic ones included,
// without read permission, so planning can import the pipeline with no
// permissions at all and still catch its syntax errors.

import { toFileUrl } from "./_paths.ts";

/** The specifier the runner imports the pipeline file by. */
export const PIPELINE_SPECIFIER = "deno-ci:pipeline";

/** An import map for one pipeline file. */
export interface ImportMap {
  imports: Record<string, string>;
}

/**
 * Returns the import map for `pipelineFile`, with the SDK at `sdkDir` (the
 * folder of this file by default).
 */
export function importMapFor(pipelineFile: string, sdkDir?: string): ImportMap {
  const sdk = sdkDir
    ? toFileUrl(sdkDir.endsWith("/") ? sdkDir : `${sdkDir}/`)
    : new URL(".", import.meta.url).href;
  return {
    imports: {
      "deno-ci": new URL("mod.ts", sdk).href,
      "deno-ci/templates": new URL("templates/mod.ts", sdk).href,
      [PIPELINE_SPECIFIER]: toFileUrl(pipelineFile),
    },
  };
}
