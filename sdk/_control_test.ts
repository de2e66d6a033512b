import { assertEquals, assertRejects, assertThrows } from "./_test_assert.ts";
import {
  hasControlChannel,
  openControlChannel,
  sendControlEvent,
  waitForStart,
} from "./_control.ts";

Deno.test("openControlChannel() leaves events off when DENO_CI_CONTROL_FD is unset", () => {
  Deno.env.delete("DENO_CI_CONTROL_FD");
  assertEquals(openControlChannel(), false);
  assertEquals(hasControlChannel(), false);
  assertEquals(sendControlEvent({ type: "stage_started", stage: "x" }), false);
});

Deno.test("openControlChannel() rejects a descriptor that is not a number from 3", () => {
  Deno.env.set("DENO_CI_CONTROL_FD", "1");
  try {
    assertThrows(
      () => openControlChannel(),
      Error,
      "DENO_CI_CONTROL_FD must be a descriptor number from 3, got '1'",
    );
  } finally {
    Deno.env.delete("DENO_CI_CONTROL_FD");
  }
});

Deno.test("waitForStart() goes on at once when DENO_CI_START_FD is unset", async () => {
  Deno.env.delete("DENO_CI_START_FD");
  assertEquals(await waitForStart(), true);
});

Deno.test("waitForStart() rejects a descriptor that is not a number from 3", async () => {
  Deno.env.set("DENO_CI_START_FD", "two");
  try {
    await assertRejects(
      () => waitForStart(),
      Error,
      "DENO_CI_START_FD must be a descriptor number from 3, got 'two'",
    );
  } finally {
    Deno.env.delete("DENO_CI_START_FD");
  }
});

Deno.test("waitForStart() needs the control channel, whose C library it reads with", async () => {
  Deno.env.set("DENO_CI_START_FD", "8");
  try {
    await assertRejects(() => waitForStart(), Error, "DENO_CI_START_FD needs DENO_CI_CONTROL_FD as well");
  } finally {
    Deno.env.delete("DENO_CI_START_FD");
  }
});
