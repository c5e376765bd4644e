#!/usr/bin/env -S npx tsx
// npm run bench [-- section ...] [--shrink N]
//
// Benchmarks are not tests: they measure, print every figure with its setup,
// compare against a baseline run in the same invocation, write
// bench-results/<section>.json and regenerate that section of
// docs/benchmarks.md (between <!-- <section>:start --> and <!-- <section>:end -->).
//
// Without DATABASE_URL it starts a throwaway cluster with durable settings
// (fsync and synchronous_commit on: not the tests' fast mode) and migrates it.
// --shrink N divides data sizes by N for a smoke run; such figures are
// printed and written to bench-results/<section>.shrinkN.json (ignored by
// git), never to docs/benchmarks.md.
//
// To add a section, append to SECTIONS: a name, and run(url) returning the
// JSON to store and the markdown body of its docs section.
import { benchBindings, bindingsMarkdown } from './bindings.js';
import { benchChanges, changesMarkdown } from './changes.js';
import { benchEngine, engineMarkdown } from './engine.js';
import { benchLive, liveMarkdown } from './live.js';
import { benchMarkov, markovMarkdown } from './markov.js';
import { benchQueue, queueMarkdown } from './queue.js';
import { benchScaleOut, scaleOutMarkdown } from './scaleout.js';
import { machine, machineMarkdown, writeDocSection, writeResults } from './lib/report.js';
import { numberFlag, runOnBenchDatabase } from './lib/run.js';

interface SectionContext {
  url: string;
  shrink: number;
  log: (line: string) => void;
}

interface SectionOutput {
  json: unknown;
  markdown: string;
}

interface Section {
  name: string;
  title: string;
  run(ctx: SectionContext): Promise<SectionOutput>;
}

const SECTIONS: Section[] = [
  {
    name: 'engine',
    title: 'Attribution engine',
    async run({ url, shrink, log }) {
      const result = await benchEngine(url, { shrink, log });
      return { json: result, markdown: engineMarkdown(result) };
    },
  },
  {
    name: 'queue',
    title: 'Queue and orchestrator',
    async run({ url, shrink, log }) {
      const result = await benchQueue(url, { shrink, log });
      return { json: result, markdown: queueMarkdown(result) };
    },
  },
  {
    name: 'live',
    title: 'Live path: ingest to allocation',
    async run({ url, shrink, log }) {
      const result = await benchLive(url, { shrink, log });
      return { json: result, markdown: liveMarkdown(result) };
    },
  },
  {
    name: 'markov',
    title: 'Markov training',
    async run({ url, shrink, log }) {
      const result = await benchMarkov(url, { shrink, log });
      return { json: result, markdown: markovMarkdown(result) };
    },
  },
  {
    name: 'changes',
    title: 'Data that changes: restatement, history, as-of',
    async run({ url, shrink, log }) {
      const result = await benchChanges(url, { shrink, log });
      return { json: result, markdown: changesMarkdown(result) };
    },
  },
  {
    name: 'scale-out',
    title: 'Scale-out: the router and a second shard',
    async run({ url, shrink, log }) {
      const result = await benchScaleOut(url, { shrink, log });
      return { json: result, markdown: scaleOutMarkdown(result) };
    },
  },
  {
    name: 'bindings',
    title: 'Tenant bindings: the cost of the check',
    async run({ url, shrink, log }) {
      const result = await benchBindings(url, { shrink, log });
      return { json: result, markdown: bindingsMarkdown(result) };
    },
  },
];

const args = process.argv.slice(2);
const shrink = numberFlag(args, '--shrink', 1);
const shrinkAt = args.indexOf('--shrink');
const names = args.filter((a, i) => !a.startsWith('--') && (shrinkAt < 0 || i !== shrinkAt + 1));
const unknown = names.filter((n) => !SECTIONS.some((s) => s.name === n));
if (unknown.length > 0) {
  console.error(`unknown bench section(s): ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const chosen = SECTIONS.filter((s) => names.length === 0 || names.includes(s.name));

await runOnBenchDatabase('apportion_bench', async (url) => {
  const m = await machine(url);
  const date = new Date().toISOString().slice(0, 10);
  console.log(machineMarkdown(m, date));
  if (shrink !== 1) console.log(`--shrink ${shrink}: smoke run, data sizes / ${shrink}; docs/benchmarks.md is left alone`);
  for (const section of chosen) {
    console.log(`\n== ${section.name} ==`);
    const t0 = Date.now();
    const out = await section.run({ url, shrink, log: (l) => console.log(l) });
    const file = writeResults(section.name, m, shrink, out.json);
    console.log(`\n${out.markdown}\n`);
    console.log(`wrote ${file} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    if (shrink === 1) {
      writeDocSection(section.name, section.title, `${machineMarkdown(m, date)}\n\n${out.markdown}`);
      console.log(`updated docs/benchmarks.md section ${section.name}`);
    }
  }
});
