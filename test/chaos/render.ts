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
  '- Found by the fast-check generators: `name in spec.knobs` is true for `constructor`, `toString` and every',
  '  other name on Object.prototype. `addHypothesis {"delta": {"constructor": 1}}` passed the update validator,',
  '  `rejectPlan` took `excludeKnobs: ["constructor"]` for a known knob, a model spec with',
  '  `activeWhen: {"constructor": [1]}` was accepted, and an LLM answer naming such a knob made the gate throw a',
  '  TypeError instead of dropping the change. Knob look-ups now use `hasKnob` (`Object.hasOwn`).',
  "- Found by the fast-check generators: a `__proto__` key (JSON.parse makes it an own key) in a model spec's",
  '  `knobs` or `trainer.env`, or in `addHypothesis.delta`, was dropped by the schema and the input accepted;',
  '  and a model spec nested 20,000 levels deep under `fixed` overflowed the stack (a RangeError, not a',
  '  refusal). Every schema parse (`parseOrThrow`) now refuses `__proto__` keys and input nested more than 64',
  '  levels, naming the field (`src/core/errors.ts`).',
  '- A full disk under the run folder failed every job a gpu-agent took while it lasted: the agent could not',
  '  write the run\'s config.json, the job failed as `lost` ("gpu-agent failed the job: ENOSPC: no space left on',
  '  device"), and the runbook re-ran it at once into the same full disk. Four fills of 2-3 s burnt 21 of a',
  '  campaign\'s 40 experiments, and one that landed on the baselines failed its campaign ("every baseline run',
  '  failed"). The agent now waits for room (pauses of 0.25 s growing to 4 s, up to 30 s) before it fails the',
  '  job with the folder and what to do in the message, and a finished run no longer fails for its log tail',
  '  (`src/trainer/run.ts`). With the same fills, 10 to 12 of 40 failed (three runs), each a trainer whose own write',
  '  met the full disk.',
  '- Under every fault at once ("every fault, random order": 3 campaigns of 44 experiments; worker, agent and',
  '  trainer kills, Temporal, PostgreSQL and Redis restarts, a FLUSHALL), 2 to 6 experiments per run were',
  "  trained twice, each run's result accepted by the queue (no result lost, no budget exceeded). It surfaced",
  '  once the suite required every planned fault to land (`requireEveryFault`); before, the campaigns ended',
  '  after 3 of the 7. The cause, read from the journal and the workflow histories the failure now prints: a',
  '  job finished while the worker was dead (its event bridge and polls with it); the FLUSHALL that came',
  "  before the experiment's next poll wiped the only copy of the result, so the poll saw the job missing and",
  "  submitted it again. The agents' journal now keeps each run's whole outcome, and the pool reads a result",
  '  the queue accepted back from it when Redis has forgotten the job (`src/cluster/job-journal.ts`).',
  '',
  '## Known limits',
  '',
  '- A trainer killed by a signal that rea did not send is classed `oom` when its memory cgroup counted an',
  '  OOM kill (or its peak memory was at the cap), and `lost` (re-run) otherwise. The suite still kills only',
  "  candidates'",
  '  trainers (a baseline dropped by the runbook can fail the campaign with a clear reason).',
  '- A trainer that itself meets a full disk (its output names ENOSPC, EDQUOT, "No space left on device" or',
  '  "Disk quota exceeded") is classed `lost`, not `crash`: the run was fine, so the runbook runs it again',
  '  once; the message quotes the line, the run folder and its free space. The `disk-full` fault is injected',
  '  only while candidates train, for the same reason as trainer kills.',
  '- `trainer-oom` moves a running trainer into a memory cgroup of its own (v1 `memory.limit_in_bytes`, or v2',
  "  `memory.max`) and needs root; the kernel's OOM killer does the rest. The stand-in trainer",
  '  (test/chaos/trainers/growing.py) allocates batch_size × 64 KiB near its end, so that the kill comes while',
  '  it runs.',
  '- Faults land at random moments 1 to 6 s apart (0.3 to 5 s in the connection, disk and memory rows); when',
  '  the campaigns end first, the remaining planned faults are not injected, and the scenario says so under',
  '  "What happened".',
  '',
];

/** How bad input is generated and checked, and the counts by kind (from the scenarios named "bad input ..."). */
function badInputSection(rows: ScenarioFigures[]): string[] {
  const bad = rows.filter((r) => r.scenario.startsWith('bad input'));
  if (!bad.length) return [];
  return [
    '## Bad input',
    '',
    'fast-check (test/helpers/fuzz.ts) mutates valid examples (examples/campaign.json, every models/*.json,',
    'valid update payloads, protocol lines and LLM answers) into bad ones: a required field dropped, wrong',
    'types, out-of-range numbers, NaN and ±Infinity, unknown fields (look-alikes, `constructor`), wrong enum',
    'values, strings past their limits, `__proto__` keys, nesting thousands of levels deep, input past 64 KiB,',
    'malformed JSON. Each must be refused with an error that names the mutated field: campaign inputs, model',
    "specs and update payloads by their validators (updates also by the campaign's state machine, against the",
    'spec), the abort signal by its parse; a protocol line must not be taken as progress, metrics or an error,',
    'and an LLM answer must be refused by its schema, or have its bad change dropped or repaired by the gate',
    'with no config outside the spec getting through. Valid variations within the declared ranges must pass, so',
    'the properties fail in both directions. Seeds are fixed (`REA_CHAOS_SEED`); a failure prints the shrunk',
    'counterexample. The in-process run (test/helpers/bad-input.ts) is the bulk; a sample goes end to end',
    'through `rea campaign start`, `temporal workflow start --type campaign` and the update validators of a real',
    "campaign waiting for its plan's approval, which must change nothing and start no experiment. `npm test`",
    'runs 500 of them in-process (test/unit/bad-input.test.ts).',
    '',
    `Reproduce: \`${COMMAND}\`, or these rows alone: \`npx tsc -p . && node --test dist/test/chaos/bad-input.test.js\`.`,
    '',
    ...bad.flatMap((r) => [
      `**${r.scenario}** (seed ${r.seed}, ${r.seconds} s): ${r.badInputs} bad inputs.`,
      '',
      ...r.notes.map((n) => `- ${n}`),
      '',
    ]),
  ];
}

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
    'random moments (processes killed, services restarted, PostgreSQL and Redis connections reset or refused by a',
    "TCP proxy, the run folder's tmpfs filled, trainers moved into a memory cgroup too small for them), and then",
    'checks, for every campaign: the workflow completed or failed with an accepted',
    'reason; every experiment row has a final status and every child experiment workflow exactly one row; no',
    'two trainer runs of one experiment overlapped (job_events, and a kernel flock held by each fast-trainer',
    'run) and the queue accepted at most one result per experiment; the budget was kept; the report names',
    'every failure with its runbook action.',
    '',
    `Reproduce: \`${COMMAND}\` (seed: \`REA_CHAOS_SEED\`, default 2025). The short subset runs in \`npm test\``,
    '(test/integration/chaos.test.ts). How it works: test/helpers/chaos-stack.ts, chaos-checks.ts,',
    'chaos-scenarios.ts, chaos-proxy.ts; bad input: fuzz.ts and bad-input.ts. The connection, disk and memory',
    'rows alone: `npx tsc -p . && node --test dist/test/chaos/connection-faults.test.js` (as root: mount, cgroups).',
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
    ...badInputSection(rows),
    '## What happened',
    '',
    ...rows.flatMap((r) => [
      `- **${esc(r.scenario)}**: ${
        r.scenario.startsWith('bad input')
          ? 'counts by kind under "Bad input" above'
          : r.notes.map(esc).join('; ') || '—'
      }`,
    ]),
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
