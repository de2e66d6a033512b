import { assertEquals } from "./_test_assert.ts";
import { stateOf } from "./_model.ts";
import { buildPlan } from "./_plan.ts";
import { Pipeline } from "./pipeline.ts";

Deno.test("Pipeline.deploy() puts the deployment spec in the plan", () => {
  const pipeline = new Pipeline()
    .stage("build", () => {})
    .deploy("ship", {
      branches: ["main"],
      environment: "production",
      release: { artifact: "site" },
      strategy: { type: "canary", steps: [{ setWeight: 20 }, { pause: {} }] },
      approvals: { beforePromote: { role: "admin", count: 2 } },
    });
  const plan = buildPlan(stateOf(pipeline)!, null, "/w/deno-pipeline.ts");
  assertEquals(plan.errors, []);
  const ship = plan.stages[1];
  assertEquals(ship.needs, ["build"]);
  assertEquals(ship.options.branches, ["main"]);
  assertEquals(ship.deploy, {
    environment: "production",
    release: { artifact: "site", name: null },
    target: null,
    strategy: { type: "canary", steps: [{ setWeight: 20 }, { pause: {} }] },
    approvals: { beforePromote: { role: "admin", count: 2 } },
    progressDeadline: null,
    run: false,
  });
  assertEquals(plan.stages[0].deploy, null);
});

Deno.test("Pipeline.deploy() with a function marks the stage to run first", () => {
  const pipeline = new Pipeline().deploy(
    "ship",
    { environment: "staging", release: { artifact: "site" } },
    () => {},
  );
  const plan = buildPlan(stateOf(pipeline)!, null, "/w/deno-pipeline.ts");
  assertEquals(plan.stages[0].deploy?.run, true);
  assertEquals(plan.stages[0].deploy?.strategy, { type: "allAtOnce" });
});

Deno.test("Pipeline.deploy() reports every invalid option", () => {
  const pipeline = new Pipeline().deploy("ship", {
    environment: "Prod!",
    release: { artifact: "" },
    strategy: { type: "canary", steps: [{ setWeight: 150 }, { setWeight: 12.5 }] },
    progressDeadline: -1,
  });
  const plan = buildPlan(stateOf(pipeline)!, null, "/w/deno-pipeline.ts");
  assertEquals(plan.errors.map((error) => error.message), [
    `Deploy stage 'ship': 'environment' must be a name of lower-case letters, digits, '.', '_' or '-', got "Prod!"`,
    "Deploy stage 'ship': 'release.artifact' must name an artifact an earlier stage publishes",
    "Deploy stage 'ship': 'progressDeadline' must be seconds above 0, got -1",
    "Deploy stage 'ship': canary step 1: setWeight must be a whole percent from 0 to 100, got 150",
    "Deploy stage 'ship': canary step 2: setWeight must be a whole percent from 0 to 100, got 12.5",
  ]);
});

Deno.test("Pipeline.deploy() still rejects unknown stage options", () => {
  const pipeline = new Pipeline().deploy("ship", {
    environment: "staging",
    release: { artifact: "site" },
    colour: "blue",
  } as never);
  const plan = buildPlan(stateOf(pipeline)!, null, "/w/deno-pipeline.ts");
  assertEquals(plan.errors.map((error) => error.message), [
    "Stage 'ship': unknown option 'colour'",
  ]);
});
