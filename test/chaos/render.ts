/**
 * Renders the chaos suite's figures (.rea/chaos/figures.jsonl, one line per scenario) into
 * docs/reliability.md: the totals the issue asks for, one row per scenario, and what happened.
 *
 *   node dist/test/chaos/render.js   # after `node --test dist/test/chaos/*.test.js`
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, type } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { figuresFile, type ScenarioFigures } from '../helpers/chaos-checks';

const COMMAND = 'npm run test:chaos';

/** What the suite found when it was written, and what it leaves to the runbook: kept by hand. */
const FINDINGS = [
  '## Found and fixed by this suite',
  '',
  '- The worker died when PostgreSQL restarted: an idle connection of its pool emitted an error with no',
  '  listener. Pools now drop such connections (`src/db/pool.ts`); activities retry the queries that failed.',
  '- A campaign input nested a few thousand levels deep (20 KB, under the size limit) overflowed the stack in',
  '  the size check: `rea campaign start` crashed with a stack trace, and a campaign started from the Temporal',
  '  CLI would have failed its workflow task forever. Input nested more than 16 levels is now refused, naming',
  '  the field (`src/core/campaign-input.ts`).',
  '- The size limit counted characters in the workflow and bytes in the CLI; both count UTF-8 bytes now, and',
  '  `rea campaign start` refuses a file over 64 KiB before parsing it.',
  '',
  '## Known limits',
  '',
  '- A trainer killed by a signal that its supervisor did not send (kill -9, the OOM killer) is classified',
  '  `crash`, and the runbook drops its hypothesis instead of re-running it; the suite therefore kills only',
  "  candidates' trainers (a baseline dropped this way can fail the campaign with a clear reason).",
  '- Faults land at random moments between 1 and 6 s apart; when the campaigns end first, the remaining planned',
  '  faults are not injected, and the scenario says so under "What happened".',
  '',
];

function main(): void {
  const file = figuresFile();
  if (!existsSync(file)) throw new Error(`no figures at ${file}: run the chaos tests first (${COMMAND})`);
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ScenarioFigures);
  const sum = (f: (r: ScenarioFigures) => number) => rows.reduce((a, r) => a + f(r), 0);
  const faultCount = (r: ScenarioFigures) => Object.values(r.faults).reduce((a, b) => a + b, 0);
  const byFault = new Map<string, number>();
  for (const r of rows)
    for (const [k, n] of Object.entries(r.faults)) byFault.set(k, (byFault.get(k) ?? 0) + n);
  const problems = rows.flatMap((r) => r.problems.map((p) => `${r.scenario}: ${p}`));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [
    '# Reliability: the chaos suite',
    '',
    'rea runs campaigns for weeks; everything around them fails at some point. The chaos suite runs real',
    'campaigns on real processes (a private PostgreSQL cluster, redis-server and Temporal dev server, `rea worker`',
    'and `rea gpu-agent` children, a fast stand-in trainer and the real tiny-ctr trainer), injects faults at seeded',
    'random moments, and then checks, for every campaign: the workflow completed or failed with an accepted',
    'reason; every experiment row has a final status and every child experiment workflow exactly one row; no',
    'two trainer runs of one experiment overlapped (job_events, and a kernel flock held by each fast-trainer',
    'run) and the queue accepted at most one result per experiment; the budget was kept; the report names',
    'every failure with its runbook action.',
    '',
    `Reproduce: \`${COMMAND}\` (seed: \`REA_CHAOS_SEED\`, default 2025). The short subset runs in \`npm test\``,
    '(test/integration/chaos.test.ts). How it works: test/helpers/chaos-stack.ts, chaos-checks.ts,',
    'chaos-scenarios.ts and fuzz.ts.',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on a ${cpus().length}-core ${type()} machine shared with other test runs.`,
    '',
    '## Totals',
    '',
    '| faults injected | campaigns | experiments | trainer runs | lost | duplicated | budget overruns | bad inputs tried |',
    '| --: | --: | --: | --: | --: | --: | --: | --: |',
    `| ${sum(faultCount)} | ${sum((r) => r.campaigns)} (${sum((r) => r.completed)} completed, ${sum((r) => r.failed)} failed) | ${sum((r) => r.experiments)} | ${sum((r) => r.trainerRuns)} | ${sum((r) => r.lost)} | ${sum((r) => r.duplicated)} | ${sum((r) => r.overruns)} | ${sum((r) => r.badInputs)} |`,
    '',
    'Faults by kind: ' + ([...byFault].map(([k, n]) => `${k} ${n}`).join(', ') || 'none') + '.',
    '',
    '## Scenarios',
    '',
    '| scenario | seed | s | faults | campaigns | experiments | trainer runs | lost | duplicated | overruns | bad inputs |',
    '| --- | --: | --: | --- | --: | --: | --: | --: | --: | --: | --: |',
    ...rows.map(
      (r) =>
        `| ${esc(r.scenario)} | ${r.seed} | ${r.seconds} | ${
          Object.entries(r.faults)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ') || '—'
        } | ${r.campaigns} | ${r.experiments} | ${r.trainerRuns} | ${r.lost} | ${r.duplicated} | ${r.overruns} | ${r.badInputs} |`,
    ),
    '',
    '## What happened',
    '',
    ...rows.flatMap((r) => [`- **${esc(r.scenario)}**: ${r.notes.map(esc).join('; ') || '—'}`]),
    '',
    '## Violations',
    '',
    ...(problems.length ? problems.map((p) => `- ${esc(p)}`) : ['None.']),
    '',
    ...FINDINGS,
  ];
  const target = path.join(loadConfig().root, 'docs', 'reliability.md');
  writeFileSync(target, out.join('\n'));
  console.log(`wrote ${target} from ${rows.length} scenarios`);
}

main();
