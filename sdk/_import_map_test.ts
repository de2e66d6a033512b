import { assertEquals } from "./_test_assert.ts";
import { importMapFor } from "./_import_map.ts";
import { fromFileUrl } from "./_paths.ts";

Deno.test("importMapFor() maps the SDK and the pipeline file", () => {
  const map = importMapFor("/repo/deno-pipeline.ts", "/opt/deno-ci/sdk");
  assertEquals(map, {
    imports: {
      "deno-ci": "file:///opt/deno-ci/sdk/mod.ts",
      "deno-ci/templates": "file:///opt/deno-ci/sdk/templates/mod.ts",
      "deno-ci:pipeline": "file:///repo/deno-pipeline.ts",
    },
  });
});

Deno.test("importMapFor() encodes paths that are not plain URLs", () => {
  const map = importMapFor("/my repo/#1/ci?.ts");
  assertEquals(map.imports["deno-ci:pipeline"], "file:///my%20repo/%231/ci%3F.ts");
  assertEquals(fromFileUrl(map.imports["deno-ci:pipeline"]), "/my repo/#1/ci?.ts");
});

Deno.test("importMapFor() resolves a relative pipeline path against the current directory", () => {
  assertEquals(
    fromFileUrl(importMapFor("./ci/../deno-pipeline.ts").imports["deno-ci:pipeline"]),
    `${Deno.cwd()}/deno-pipeline.ts`,
  );
});
