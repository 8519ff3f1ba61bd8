/**
 * `npm run bench`: what a user of rea gets, against the alternatives at equal compute, and what
 * rea's orchestration costs. Writes bench/results/. See bench/README.md.
 *
 *   npm run bench                      # the default tier
 *   npm run bench -- --smoke           # every part end to end in a few minutes
 *   npm run bench -- --only orchestration
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBenchPackages, loadRaw, MODELS, RESULTS, ROOT, say } from './common';
import {
  runOrchestration,
  writeOrchestration,
  type OrchestrationRaw,
  type OrchestrationTier,
} from './orchestration';
import { startStack, stopStack } from './stack';

interface Tier extends OrchestrationTier {
  name: 'default' | 'full' | 'smoke';
  expectedMinutes: string;
}

const DEFAULT_TIER: Tier = {
  name: 'default',
  hibernating: 1000,
  fastExperiments: 5000,
  expectedMinutes: 'about 3 hours on 2 cores',
};
const FULL_TIER: Tier = { ...DEFAULT_TIER, name: 'full', expectedMinutes: 'hours' };
const SMOKE_TIER: Tier = {
  ...DEFAULT_TIER,
  name: 'smoke',
  hibernating: 20,
  fastExperiments: 200,
  expectedMinutes: 'a few minutes',
};

const ONLY_PARTS = ['orchestration', 'fast', 'hibernation'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      full: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      /** Only rewrite the reports from the raw results of earlier runs. */
      report: { type: 'boolean', default: false },
    },
  });
  const tier = values.smoke ? SMOKE_TIER : values.full ? FULL_TIER : DEFAULT_TIER;
  const only = values.only;
  if (only && !ONLY_PARTS.includes(only))
    throw new Error(
      `--only: expected one of ${ONLY_PARTS.map((p) => `"${p}"`).join(', ')} ("orchestration" is "fast" and "hibernation"), got "${only}"`,
    );
  const startedAt = new Date();
  mkdirSync(MODELS, { recursive: true });
  mkdirSync(path.join(RESULTS, 'raw'), { recursive: true });
  ensureBenchPackages();
  if (!values.report) {
    say(`tier ${tier.name}: ${tier.expectedMinutes}`);
    const stack = await startStack();
    say(`Temporal dev server at ${stack.env.address}`);
    try {
      await runOrchestration(stack, tier, {
        fast: !only || only === 'orchestration' || only === 'fast',
        hibernation: !only || only === 'orchestration' || only === 'hibernation',
      });
    } finally {
      await stopStack(stack);
    }
  }
  writeReports(tier, startedAt);
}

function writeReports(tier: Tier, startedAt: Date): void {
  const orch = loadRaw<OrchestrationRaw>('orchestration', tier.name);
  const summary: string[] = [`# Benchmark summary (${tier.name} tier)`, ''];
  if (orch) {
    const lines = writeOrchestration(orch.orch, [], orch.header);
    summary.push('## Orchestration', '', orch.header, '', ...lines.map((l) => `- ${l}`), '');
  }
  summary.push(
    `This invocation (\`${process.argv.slice(2).join(' ') || 'default'}\`) took ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} minutes.`,
  );
  writeFileSync(path.join(RESULTS, 'summary.md'), `${summary.join('\n')}\n`);
  // The results are committed: keep them in the repository's format, so that `npm run lint` passes.
  spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'prettier'),
    ['--write', '--log-level', 'warn', RESULTS],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  say(`done: ${RESULTS}`);
  console.log(summary.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
