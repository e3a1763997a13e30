// One worker process of the `scale-pN` scenarios. argv: database URL, system (`runledger` or
// `unprepared`), concurrency. Sets up, prints "ready", starts its Supervisor on "go" (stdin),
// stops on "stop" and prints the sequence numbers of the jobs it ran and the CPU time it used
// from "go" to "stop" (µs) as one JSON line.
import { createInterface } from "node:readline";
import { runledgerSystem } from "./systems/runledger.ts";

const [url = "", system = "runledger", concurrency = "25"] = process.argv.slice(2);
// A small pool per process, as a fleet sharing one server keeps it.
const bench = runledgerSystem(url, { pooled: system === "unprepared", max: 8 });
const ran: number[] = [];
await bench.setup();
process.stdout.write("ready\n");
let cpu = process.cpuUsage();
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "go") {
    cpu = process.cpuUsage();
    await bench.startWorker(Number(concurrency), (seq) => ran.push(seq));
  }
  if (line === "stop") break;
}
const used = process.cpuUsage(cpu);
await bench.stopWorker();
process.stdout.write(`${JSON.stringify({ ran, cpuUs: used.user + used.system })}\n`);
await bench.close();
process.exit(0);
