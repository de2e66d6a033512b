import { assertEquals, assertThrows } from "./_test_assert.ts";
import { env } from "./env.ts";

Deno.test("env.get() and env.has() read the environment", () => {
  Deno.env.set("DENO_CI_TEST_VALUE", "yes");
  assertEquals(env.get("DENO_CI_TEST_VALUE"), "yes");
  assertEquals(env.has("DENO_CI_TEST_VALUE"), true);
  assertEquals(env.toObject().DENO_CI_TEST_VALUE, "yes");
  Deno.env.delete("DENO_CI_TEST_VALUE");
});

Deno.test("env.require() names a missing variable", () => {
  assertThrows(
    () => env.require("DENO_CI_TEST_MISSING"),
    Deno.errors.NotFound,
    "'DENO_CI_TEST_MISSING': it is not set",
  );
});
