// deno-lint-ignore-file no-deprecated-deno-api -- these tests exercise the legacy API on purpose
import { assert, assertEquals, assertRejects } from "./_test_assert.ts";
import { settleChildren } from "./_children.ts";
import "./deno_run.ts";

// The children registry is per process, so these tests settle it in order:
// each test leaves nothing failing behind except where it checks for it.

Deno.test("Deno.run() reports the exit status like Deno 1", async () => {
  const ok = Deno.run({ cmd: ["true"] });
  assertEquals(await ok.status(), { success: true, code: 0 });
  assert(ok.pid > 0);
});

Deno.test("Deno.run() reads piped output with output() and stderrOutput()", async () => {
  const process = Deno.run({
    cmd: ["sh", "-c", "echo out; echo err >&2"],
    stdout: "piped",
    stderr: "piped",
  });
  const [out, err] = await Promise.all([process.output(), process.stderrOutput()]);
  assertEquals(new TextDecoder().decode(out), "out\n");
  assertEquals(new TextDecoder().decode(err), "err\n");
  assertEquals((await process.status()).success, true);
  process.close();
});

Deno.test("Deno.run() writes to a piped stdin and reads with read()", async () => {
  const process = Deno.run({ cmd: ["cat"], stdin: "piped", stdout: "piped" });
  await process.stdin.write(new TextEncoder().encode("hello"));
  process.stdin.close();
  const buffer = new Uint8Array(3);
  const chunks: string[] = [];
  for (
    let count = await process.stdout.read(buffer);
    count !== null;
    count = await process.stdout.read(buffer)
  ) {
    chunks.push(new TextDecoder().decode(buffer.subarray(0, count)));
  }
  assertEquals(chunks.join(""), "hello");
  await process.status();
});

Deno.test("Deno.run() output() needs a piped stdout", async () => {
  const process = Deno.run({ cmd: ["true"] });
  await assertRejects(() => process.output(), TypeError, 'without stdout: "piped"');
  await process.status();
});

Deno.test("Deno.run() processes that exit non-zero are reported by settleChildren()", async () => {
  assertEquals(await settleChildren(), []);
  const failing = Deno.run({ cmd: ["sh", "-c", "exit 4"] });
  const status = await failing.status();
  assertEquals(status, { success: false, code: 4 });
  assertEquals(await settleChildren(), [{ command: ["sh", "-c", "exit 4"], code: 4 }]);
});

Deno.test("Deno.run() killed processes do not count as failures", async () => {
  const before = (await settleChildren()).length;
  const sleeper = Deno.run({ cmd: ["sleep", "30"] });
  sleeper.kill();
  const status = await sleeper.status();
  assertEquals(status.success, false);
  assertEquals(status.signal, 15);
  assertEquals((await settleChildren()).length, before);
});
