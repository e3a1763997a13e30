// What the worker's telemetry checks cost per job with `@opentelemetry/api` present and no SDK
// registered: the one thing the `runledger` bench variant does that `untraced` does not (there,
// `activeTracer` and `activeMeter` answer "none" at once, and every other telemetry step is skipped
// on that answer in both). Per job the worker asks once for the tracer (starting the attempt) and
// once for the meter (ending it), plus once for the meter per claim. This times those two calls
// against two functions returning undefined, in alternating rounds, and prints the difference per
// job with its 95 % interval.
//   npm run bench -- --help && node .bench-build/bench/telemetry-checks.js [rounds]
import { activeMeter, activeTracer } from "../src/store/index.ts";
import { meanInterval } from "./telemetry-cost.ts";

const ITERATIONS = 2_000_000;
const rounds = Number(process.argv[2] ?? 15);

const none = (): object | undefined => undefined;

/** CPU ns per job of asking `tracer` and `meter` as the worker does for one job. */
function perJob(tracer: () => object | undefined, meter: () => object | undefined): number {
  let found = 0;
  const before = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) {
    if (tracer() !== undefined) found++;
    if (meter() !== undefined) found++;
  }
  const used = process.cpuUsage(before);
  if (found !== 0) throw new Error("an SDK is registered: this measures the path without one");
  return ((used.user + used.system) * 1000) / ITERATIONS;
}

// Warm both paths up, then pair them in each round, in alternating order.
perJob(activeTracer, activeMeter);
perJob(none, none);
const extra: number[] = [];
for (let round = 0; round < rounds; round++) {
  const [checked, stubbed] =
    round % 2 === 0
      ? [perJob(activeTracer, activeMeter), perJob(none, none)]
      : [perJob(none, none), perJob(activeTracer, activeMeter)].reverse();
  extra.push(checked! - stubbed!);
}
const m = meanInterval(extra);
console.log(
  `telemetry checks without an SDK: ${m.mean.toFixed(1)} ns per job more than none ` +
    `(± ${m.half.toFixed(1)} ns, 95 %, ${m.rounds} rounds of ${ITERATIONS.toLocaleString("en-US")} jobs)`,
);
