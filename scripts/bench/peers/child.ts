// Kill-test child: one system's worker in its own process, so the parent can
// SIGKILL it mid-run. Env: BENCH_SYSTEM, BENCH_URLS (JSON of BenchUrls).
// Prints "ready" once the worker listens, then works until killed.
import { makeSystem, type BenchUrls, type SystemKey } from './systems.js';

const system = makeSystem(process.env.BENCH_SYSTEM as SystemKey, JSON.parse(process.env.BENCH_URLS!) as BenchUrls);
await system.startWorker();
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30);
