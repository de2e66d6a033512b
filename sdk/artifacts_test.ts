import { assertEquals, assertThrows } from "./_test_assert.ts";
import { artifactPath, publishArtifact } from "./artifacts.ts";
import { workspace } from "./workspace.ts";

Deno.test("artifactPath() names the artifact it cannot find", () => {
  assertThrows(
    () => artifactPath("deno-ci-test-missing"),
    Deno.errors.NotFound,
    "Cannot find artifact 'deno-ci-test-missing' at",
  );
});

Deno.test("artifactPath() returns the folder an earlier stage's artifact was placed in", async () => {
  const root = `${workspace}/.deno-ci`;
  const existed = await Deno.stat(root).then(() => true, () => false);
  const path = `${root}/artifacts/deno-ci-test-present`;
  await Deno.mkdir(path, { recursive: true });
  try {
    assertEquals(artifactPath("deno-ci-test-present"), path);
  } finally {
    await Deno.remove(existed ? path : root, { recursive: true });
  }
});

Deno.test("publishArtifact() rejects names and paths that leave the workspace", () => {
  assertThrows(
    () => publishArtifact("../x", ["dist"]),
    TypeError,
    "must start with a letter or digit",
  );
  assertThrows(() => publishArtifact("site", []), TypeError, "give at least one path");
  assertThrows(
    () => publishArtifact("site", ["/etc/passwd"]),
    TypeError,
    "must be relative to the workspace",
  );
  assertThrows(() => publishArtifact("site", ["dist/../../x"]), TypeError, "stay inside it");
});
