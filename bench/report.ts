/**
 * The benchmark's reports, written from the raw results: search-quality.{md,csv} with a chart per
 * task, noise.md, transfer.{md,csv}, and the headline for summary.md and the README.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { escapeXml, niceTicks, tickLabels } from '../src/report/svg';
import { csvLine } from './analysis';
import { RESULTS, type Spec } from './common';
import { EVAL_SEEDS } from './evaluate';
import { hasPlanted, type NoiseRaw } from './noise';
import {
  answerKey,
  scored,
  searchComplete,
  taskSpec,
  type ScoredRecord,
  type SearchRaw,
  type TaskRaw,
} from './search';
import {
  bootstrapCi,
  mean,
  median,
  pairedWinRate,
  shareBelowZero,
  shareMissed,
  wilcoxonSignedRank,
} from './stats';
import { LABEL, SHORT, TIERS, type Method, type Tier } from './tiers';
import { transferOutcome, type TransferRaw } from './transfer';

const pct = (v: number | undefined, digits = 2) =>
  v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(digits)} %`;
const share = (v: number) => (Number.isFinite(v) ? `${Math.round(v * 100)} %` : '—');
const num = (v: number | undefined, digits = 5) =>
  v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
const ci = (c: { estimate: number; low: number; high: number }) =>
  `${pct(c.estimate)} [${Number.isFinite(c.low) ? c.low.toFixed(2) : '—'}, ${Number.isFinite(c.high) ? c.high.toFixed(2) : '—'}]`;
const pValue = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3));
const describe = (delta: Record<string, unknown>) =>
  Object.keys(delta).length
    ? Object.entries(delta)
        .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : String(v)}`)
        .join(', ')
    : 'baseline';

interface MethodSummary {
  method: Method;
  records: ScoredRecord[];
  gains: number[];
  median: ReturnType<typeof bootstrapCi>;
  worse: number;
  missed: number;
  spent: number;
  oracleShare: number;
  gap?: number;
  bestSearch?: number;
}

function methodsIn(tasks: TaskRaw[], order: Method[]): Method[] {
  const present = new Set(tasks.flatMap((t) => t.records.map((r) => r.method)));
  return order.filter((m) => present.has(m));
}

/** Units (task, seed) where every method in `methods` has a scored search. */
function units(
  tasks: TaskRaw[],
  methods: Method[],
): { task: string; seed: number; gains: Map<Method, number> }[] {
  const out: { task: string; seed: number; gains: Map<Method, number> }[] = [];
  for (const t of tasks) {
    const seeds = [...new Set(t.records.map((r) => r.seed))].sort((a, b) => a - b);
    for (const seed of seeds) {
      const gains = new Map<Method, number>();
      for (const m of methods) {
        const r = t.records.find((x) => x.method === m && x.seed === seed);
        if (r && t.scores[answerKey(r.answer)]) gains.set(m, scored(t, r).gainPct);
      }
      out.push({ task: t.task, seed, gains });
    }
  }
  return out;
}

function summarize(t: TaskRaw, m: Method, all: Method[]): MethodSummary | undefined {
  // rea's extra seeds (run beside the "rea + LLM" row) count only where a peer ran the same seed,
  // so that every row of the tables is over the same searches.
  const peerSeeds = new Set(
    t.records.filter((r) => r.method !== 'rea' && r.method !== 'rea-llm').map((r) => r.seed),
  );
  const records = t.records
    .filter((r) => r.method === m && t.scores[answerKey(r.answer)])
    .filter((r) => m !== 'rea' || peerSeeds.size === 0 || peerSeeds.has(r.seed))
    .sort((a, b) => a.seed - b.seed)
    .map((r) => scored(t, r));
  if (!records.length) return undefined;
  const gains = records.map((r) => r.gainPct);
  const others = records.map((r) =>
    all
      .filter((o) => o !== m)
      .flatMap((o) => {
        const x = t.records.find((y) => y.method === o && y.seed === r.seed);
        return x && t.scores[answerKey(x.answer)] ? [scored(t, x).gainPct] : [];
      }),
  );
  const oracle = t.oracle && t.scores[answerKey(t.oracle.answer)] ? scored(t, t.oracle).gainPct : undefined;
  const med = bootstrapCi(gains, median);
  const gaps = records.flatMap((r) => (r.gapClosedPct === undefined ? [] : [r.gapClosedPct]));
  const best = records.flatMap((r) => (r.bestSearchGainPct === undefined ? [] : [r.bestSearchGainPct]));
  return {
    method: m,
    records,
    gains,
    median: med,
    worse: shareBelowZero(gains),
    missed: shareMissed(gains, others, 1),
    spent: mean(records.map((r) => r.used / r.budget)),
    oracleShare: oracle !== undefined && oracle > 0 ? med.estimate / oracle : NaN,
    ...(gaps.length ? { gap: median(gaps) } : {}),
    ...(best.length ? { bestSearch: median(best) } : {}),
  };
}

/** A strip chart of every search's test gain, one row per method. */
function gainChart(title: string, rows: { label: string; gains: number[] }[], oracle?: number): string {
  const width = 760;
  const rowH = 34;
  const left = 230;
  const right = 30;
  const top = 40;
  const height = top + rows.length * rowH + 50;
  const all = rows.flatMap((r) => r.gains).concat(oracle !== undefined ? [oracle] : [], [0]);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const ticks = niceTicks(lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05 + 1e-9, 6);
  const t0 = ticks[0] as number;
  const t1 = ticks.at(-1) as number;
  const x = (v: number) => left + ((v - t0) / (t1 - t0 || 1)) * (width - left - right);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  tickLabels(ticks).forEach((label, i) => {
    const xv = x(ticks[i] as number);
    parts.push(
      `<line x1="${xv}" x2="${xv}" y1="${top - 8}" y2="${height - 40}" stroke="#eee"/>`,
      `<text x="${xv}" y="${height - 24}" text-anchor="middle">${escapeXml(label)}</text>`,
    );
  });
  parts.push(
    `<line x1="${x(0)}" x2="${x(0)}" y1="${top - 8}" y2="${height - 40}" stroke="#555" stroke-dasharray="4 3"/>`,
    `<text x="${(left + width - right) / 2}" y="${height - 6}" text-anchor="middle">paired test gain over the baseline (%), ${EVAL_SEEDS.length} evaluation seeds</text>`,
  );
  if (oracle !== undefined)
    parts.push(
      `<line x1="${x(oracle)}" x2="${x(oracle)}" y1="${top - 8}" y2="${height - 40}" stroke="#2ca02c" stroke-width="2"/>`,
      `<text x="${x(oracle)}" y="${top - 12}" text-anchor="middle" fill="#2ca02c">oracle</text>`,
    );
  rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2;
    parts.push(`<text x="${left - 10}" y="${y + 4}" text-anchor="end">${escapeXml(r.label)}</text>`);
    r.gains.forEach((g, j) => {
      const jitter = ((j % 5) - 2) * 3;
      parts.push(
        `<circle cx="${x(g).toFixed(1)}" cy="${y + jitter}" r="4" fill="#1f77b4" fill-opacity="0.55"/>`,
      );
    });
    if (r.gains.length) {
      const m = median(r.gains);
      parts.push(
        `<line x1="${x(m)}" x2="${x(m)}" y1="${y - 12}" y2="${y + 12}" stroke="#d62728" stroke-width="3"/>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export interface Headline {
  lines: string[];
}

export function writeSearchQuality(tier: Tier, raw: SearchRaw, order: Method[]): Headline {
  const tasks = raw.tasks.filter((t) => t.records.length);
  const methods = methodsIn(tasks, order);
  const peers = methods.filter((m) => m !== 'rea' && m !== 'rea-llm');
  const csv = [
    csvLine([
      'task',
      'method',
      'seed',
      'metric',
      'budget_steps',
      'steps_used',
      'runs',
      'answer_test_ne',
      'baseline_test_ne',
      'gain_pct',
      'oracle_gain_pct',
      'bayes_test_ne',
      'gap_closed_pct',
      'best_search_gain_pct',
      'confirmed',
      'answer',
    ]),
  ];
  const reaHow = (r: typeof raw): string => {
    const rea = r.tasks.flatMap((t) => t.records).filter((x) => x.method === 'rea' || x.method === 'rea-llm');
    const inproc = rea.filter((x) => x.campaignId?.startsWith('inproc-')).length;
    const real = 'a real campaign (Temporal, PostgreSQL, BullMQ, a 2-slot gpu-agent)';
    const mem =
      "the campaign's own state machine, planner and evidence in one process, its runs trained by the same trainer 2 at a time (`--rea-mode inprocess`: no Temporal, PostgreSQL or queue; the search is the same)";
    const how =
      inproc === 0
        ? real
        : inproc === rea.length
          ? mem
          : `${mem} for ${inproc} of ${rea.length} searches, else ${real}`;
    return `rea runs ${how}, with its default settings and a GPU-hour budget that buys the same units.`;
  };
  const md: string[] = [
    '# Search quality: the config each search hands back, on fresh seeds',
    '',
    raw.header,
    '',
    ...(raw.complete || searchComplete(TIERS[raw.tier as Tier['name']] ?? tier, raw.tasks)
      ? []
      : ['**Partial:** the run stopped before every search finished; the tables list those that did.', '']),
    `Each search gets the same budget — ${tier.budgetRuns} full-fidelity runs' worth of the task's fidelity knob (its \`fidelity.high\` × ${tier.budgetRuns}) — and the spec's search space. What is scored is **what a user gets**: the config the search hands back (rea: its campaign's answer, confirmed or not, as its result names it; a peer: its best trial), re-trained at full fidelity on ${EVAL_SEEDS.length} fresh evaluation seeds (${EVAL_SEEDS.join(', ')}; no search trains with them), scored on the held-out **test** split (\`eval_split: "test"\`), beside the baseline config on the same seeds. The **gain** is the mean over those seeds of the paired (baseline − answer) / baseline, in % (positive is better). The peers run through \`bench/peers.py\`: Optuna 5.0 with ask/tell, 2 trials at a time (as rea runs 2 jobs at a time), the baseline as the first trial, every trial at full fidelity with the study seed as trainer seed (Hyperband prunes at the trainer's progress lines); a trial is charged the units it trained (a failed one its full reservation). ${reaHow(raw)} The **oracle** is the best trial of one multivariate-TPE search at ${tier.oracle?.multiple ?? '—'}× the budget, scored the same way.`,
    '',
    "**Columns.** _median gain_: over search seeds, with a bootstrap 95 % CI. _oracle share_: median gain / the oracle's gain. _worse than baseline_: answers with a negative test gain. _missed_: searches whose answer gained ≤ 0 while another method on the same task and seed gained ≥ 1 %. _spent_: units used / budget (mean). _gap closed_: share of the baseline's gap to the Bayes-optimal NE closed (synthetic data only). _best during search_: the secondary, old measure — the best validation value any full-fidelity run of the search reached, as a gain over the baseline at that run's seed (it rewards the luckiest draw).",
    '',
  ];

  // ---- pooled over every task ----
  const allUnits = units(tasks, methods);
  md.push('## All tasks', '', `${tasks.length} tasks × up to ${tier.seeds.length} search seeds.`, '');
  md.push(
    '| method | searches | median gain (95 % CI) | worse than baseline | missed | spent |',
    '|---|---|---|---|---|---|',
  );
  const pooled = new Map<Method, number[]>();
  for (const m of methods) {
    const sums = tasks.map((t) => summarize(t, m, methods)).filter((s): s is MethodSummary => !!s);
    const gains = sums.flatMap((s) => s.gains);
    pooled.set(m, gains);
    const worse = shareBelowZero(gains);
    const missed = mean(sums.flatMap((s) => s.records.map(() => s.missed)));
    const spent = mean(sums.flatMap((s) => s.records.map((r) => r.used / r.budget)));
    md.push(
      `| ${LABEL[m]} | ${gains.length} | ${ci(bootstrapCi(gains, median))} | ${share(worse)} | ${share(missed)} | ${share(spent)} |`,
    );
  }
  const headline: string[] = [];
  for (const lead of methods.filter((m) => m === 'rea' || m === 'rea-llm')) {
    md.push(
      '',
      `### ${LABEL[lead]} against each peer, paired over (task, seed)`,
      '',
      '| peer | units | win rate (ties ½) | wins / ties / losses | mean paired difference (95 % CI) | Wilcoxon p |',
      '|---|---|---|---|---|---|',
    );
    for (const peer of peers) {
      const both = allUnits.filter((u) => u.gains.has(lead) && u.gains.has(peer));
      if (!both.length) continue;
      const a = both.map((u) => u.gains.get(lead) as number);
      const b = both.map((u) => u.gains.get(peer) as number);
      const diffs = a.map((x, i) => x - (b[i] as number));
      const w = pairedWinRate(a, b);
      const d = bootstrapCi(diffs, mean);
      const p = wilcoxonSignedRank(diffs).p;
      md.push(
        `| ${LABEL[peer]} | ${both.length} | ${share(w.rate)} | ${w.wins} / ${w.ties} / ${w.losses} | ${ci(d)} | ${pValue(p)} |`,
      );
      if (lead === 'rea')
        headline.push(
          `rea vs ${SHORT[peer]}: win rate ${share(w.rate)} over ${both.length} units, mean paired difference ${ci(d)} points, Wilcoxon p ${pValue(p)}`,
        );
    }
  }

  // ---- per task ----
  for (const t of tasks) {
    const spec = taskSpec(t.task);
    const oracle = t.oracle && t.scores[answerKey(t.oracle.answer)] ? scored(t, t.oracle) : undefined;
    const base = t.scores[answerKey({})] ?? [];
    const sums = methods.map((m) => summarize(t, m, methods)).filter((s): s is MethodSummary => !!s);
    md.push(
      '',
      `## ${t.task}`,
      '',
      ...(t.header && t.header !== raw.header ? [`Measured by the run: ${t.header}`, ''] : []),
      `Budget ${t.budget} units of \`${spec.fidelity.knob}\` (${tier.budgetRuns} × ${spec.fidelity.high}; fidelity range ${spec.fidelity.low}..${spec.fidelity.high}). Baseline test ${spec.metric.primary} ${num(mean(base.map((s) => s.value)))} (mean of the evaluation seeds; SD ${num(sd(base.map((s) => s.value)))})${base.every((s) => s.bayes !== undefined) && base.length ? `; Bayes-optimal ${num(mean(base.map((s) => s.bayes as number)))}` : ''}. Oracle: ${oracle ? `${pct(oracle.gainPct)} (${describe(oracle.answer)}; ${oracle.used} units)` : 'not run'}.`,
      '',
      '| method | searches | median gain (95 % CI) | oracle share | worse than baseline | missed | spent | gap closed (median) | best during search (median, secondary) |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const s of sums) {
      md.push(
        `| ${LABEL[s.method]} | ${s.records.length} | ${ci(s.median)} | ${Number.isFinite(s.oracleShare) ? `${(s.oracleShare * 100).toFixed(0)} %` : '—'} | ${share(s.worse)} | ${share(s.missed)} | ${share(s.spent)} | ${pct(s.gap, 1)} | ${pct(s.bestSearch)} |`,
      );
      for (const r of s.records)
        csv.push(
          csvLine([
            t.task,
            r.method,
            r.seed,
            spec.metric.primary,
            r.budget,
            r.used,
            r.runs,
            r.answerTest,
            r.baselineTest,
            r.gainPct.toFixed(4),
            oracle?.gainPct.toFixed(4),
            r.bayesTest,
            r.gapClosedPct?.toFixed(3),
            r.bestSearchGainPct?.toFixed(4),
            r.confirmed === undefined ? '' : r.confirmed,
            JSON.stringify(r.answer),
          ]),
        );
    }
    const lead = sums.find((s) => s.method === 'rea');
    if (lead) {
      const taskUnits = allUnits.filter((u) => u.task === t.task);
      const rows = peers.flatMap((peer) => {
        const both = taskUnits.filter((u) => u.gains.has('rea') && u.gains.has(peer));
        if (!both.length) return [];
        const a = both.map((u) => u.gains.get('rea') as number);
        const b = both.map((u) => u.gains.get(peer) as number);
        const w = pairedWinRate(a, b);
        return [
          `${SHORT[peer]} ${share(w.rate)} (p ${pValue(wilcoxonSignedRank(a.map((x, i) => x - (b[i] as number))).p)})`,
        ];
      });
      md.push('', `rea's paired win rate on this task: ${rows.join('; ')}.`);
      md.push(
        '',
        `rea's answers: ${lead.records.map((r) => `seed ${r.seed}: ${describe(r.answer)} (${pct(r.gainPct)}${r.confirmed ? ', confirmed' : ', not confirmed'}; ${r.used}/${r.budget} units)`).join('; ')}.`,
      );
    }
    const chart = `search-quality-${t.task}.svg`;
    writeFileSync(
      path.join(RESULTS, chart),
      gainChart(
        `${t.task}: test gain of each search's answer (red: median)`,
        sums.map((s) => ({ label: SHORT[s.method], gains: s.gains })),
        oracle?.gainPct,
      ),
    );
    md.push('', `![test gain of each search's answer](${chart})`);
  }
  // rea + LLM beside plain rea on the same units, and how the LLM's hypotheses fared.
  const llmUnits = allUnits.filter((u) => u.gains.has('rea-llm') && u.gains.has('rea'));
  if (llmUnits.length) {
    const a = llmUnits.map((u) => u.gains.get('rea-llm') as number);
    const b = llmUnits.map((u) => u.gains.get('rea') as number);
    const w = pairedWinRate(a, b);
    const llmRecords = tasks.flatMap((t) => t.records.filter((r) => r.method === 'rea-llm'));
    const sum = (key: 'proposed' | 'led', src: string) =>
      llmRecords.reduce((x, r) => x + (r[key]?.[src] ?? 0), 0);
    const rate = (src: string) => {
      const p = sum('proposed', src);
      return p
        ? `${sum('led', src)} of ${p} (${((sum('led', src) / p) * 100).toFixed(0)} %)`
        : 'none proposed';
    };
    md.push(
      '',
      '## rea + LLM (local) beside plain rea',
      '',
      `The same campaign with the embedded local model (${'`'}npm run setup${'`'} installs it; docs/llm.md) proposing hypotheses from the evidence and, mid-campaign, from the optimizer's state, on ${llmUnits.length} (task, seed) units: median test gain ${pct(median(a))} with the LLM, ${pct(median(b))} without; paired win rate of rea + LLM ${share(w.rate)} (${w.wins} / ${w.ties} / ${w.losses}), Wilcoxon p ${pValue(wilcoxonSignedRank(a.map((x, i) => x - (b[i] as number))).p)}.`,
      '',
      `Hypotheses that took the lead (became the incumbent) in the LLM campaigns, by source: LLM ${rate('llm')}; planner ${rate('planner')}; research ${rate('research')}.`,
    );
    headline.push(
      `rea + LLM vs rea: win rate ${share(w.rate)} over ${llmUnits.length} units; LLM hypotheses that took the lead: ${rate('llm')}, planner's: ${rate('planner')}`,
    );
  }
  writeFileSync(path.join(RESULTS, 'search-quality.md'), `${md.join('\n')}\n`);
  writeFileSync(path.join(RESULTS, 'search-quality.csv'), `${csv.join('\n')}\n`);
  const reaGains = pooled.get('rea') ?? [];
  const lines = [
    ...methods.map(
      (m) =>
        `${SHORT[m]}: median test gain ${ci(bootstrapCi(pooled.get(m) ?? [], median))} over ${(pooled.get(m) ?? []).length} searches`,
    ),
    ...headline,
  ];
  if (reaGains.length)
    lines.push(`rea answers worse than the baseline on test: ${share(shareBelowZero(reaGains))}`);
  return { lines };
}

function sd(values: number[]): number {
  if (values.length < 2) return NaN;
  const m = mean(values);
  return Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
}

export function writeNoise(raw: NoiseRaw | undefined): string[] {
  const md = ['# Noise checks: false confirmations and power', ''];
  if (!raw) {
    md.push('Not measured in this tier.');
    writeFileSync(path.join(RESULTS, 'noise.md'), `${md.join('\n')}\n`);
    return ['not measured'];
  }
  const falseWins = raw.null.filter((r) => r.confirmed && Object.keys(r.answer).length > 0);
  const found = raw.power.filter((r) => r.confirmed && hasPlanted(r.answer, raw.planted));
  const e = raw.effect;
  md.push(
    raw.header,
    '',
    `**False confirmations.** ${raw.null.length} cold rea campaigns on \`${raw.nullTask}\`, a task where no knob can change the model's expected quality (each knob only re-randomizes the run or is bookkeeping; docs/trainers.md). A campaign that hands back a non-baseline answer as a confirmed win is a false confirmation: **${falseWins.length} of ${raw.null.length} (${share(falseWins.length / Math.max(1, raw.null.length))})**.`,
    '',
    `**Power.** ${raw.power.length} cold rea campaigns on \`${raw.plantedTask}\`, the same null knobs plus one real effect: ${describe(raw.planted)}${e ? `, measured here over ${e.seeds} trainer seeds at full fidelity on validation: ${e.effectPct.toFixed(3)} % (${e.effectSds.toFixed(2)} noise SDs, where the SD is the baseline's across seeds, ${e.noiseSd.toExponential(2)})` : ''}. Campaigns that confirm it: **${found.length} of ${raw.power.length} (${share(found.length / Math.max(1, raw.power.length))})**.`,
    '',
    '| check | campaign seed | answer | confirmed | units used / budget |',
    '|---|---|---|---|---|',
    ...raw.null.map(
      (r) =>
        `| null | ${r.seed} | ${describe(r.answer)} | ${r.confirmed ? 'yes' : 'no'} | ${r.used} / ${r.budget} |`,
    ),
    ...raw.power.map(
      (r) =>
        `| planted | ${r.seed} | ${describe(r.answer)} | ${r.confirmed ? 'yes' : 'no'} | ${r.used} / ${r.budget} |`,
    ),
  );
  writeFileSync(path.join(RESULTS, 'noise.md'), `${md.join('\n')}\n`);
  return [
    `false confirmations on the no-effect task: ${falseWins.length}/${raw.null.length}`,
    `planted effect (${e ? `${e.effectSds.toFixed(2)} SDs` : '?'}) confirmed: ${found.length}/${raw.power.length}`,
  ];
}

export function writeTransfer(raw: TransferRaw | undefined): string[] {
  const md = ['# Transfer to drifted tasks: warm against cold', ''];
  const csv = [
    csvLine([
      'task',
      'drift_data_seed',
      'campaign_seed',
      'budget_steps',
      'first_answer',
      'warm_steps_used',
      'cold_steps_used',
      'cold_gain_pct',
      'warm_gain_pct_at_cold_steps',
      'warm_steps_to_cold_gain',
      'steps_ratio',
      'warm_answer',
      'cold_answer',
    ]),
  ];
  if (!raw || !raw.pairs.length) {
    md.push('Not measured in this tier.');
    writeFileSync(path.join(RESULTS, 'transfer.md'), `${md.join('\n')}\n`);
    writeFileSync(path.join(RESULTS, 'transfer.csv'), `${csv.join('\n')}\n`);
    return ['not measured'];
  }
  const outcomes = raw.pairs.map(transferOutcome);
  md.push(
    raw.header,
    '',
    `Each pair: a first rea campaign on the task, then the same model on drifted data (a new \`data_seed\`: a new world and rows for the synthetic generator, a new split for real data). The **warm** campaign runs with the first campaign's history (in PostgreSQL; in memory with \`--rea-mode inprocess\`, through the same history interface); the **cold** one with an empty history; same campaign seed and budget. Every answer along each campaign's trail is scored on the drifted task's test split (${EVAL_SEEDS.length} evaluation seeds, paired with the baseline). _Units to the cold gain_: what the warm campaign had spent when its answer first reached the cold campaign's final test gain (0 when the cold campaign found nothing).`,
    '',
    '| task | drift | cold final gain | warm gain at the cold spend | warm units to the cold gain | ratio to the cold spend | warm answer | cold answer |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const o of outcomes) {
    const p = o.pair;
    const warmAnswer = p.warm.trail.at(-1)?.answer ?? {};
    const coldAnswer = p.cold.trail.at(-1)?.answer ?? {};
    md.push(
      `| ${p.task} | ${p.driftDataSeed} | ${pct(o.coldGainPct)} | ${pct(o.warmGainPct)} | ${o.warmUnitsToCold ?? 'not reached'} | ${Number.isFinite(o.unitsRatio) ? o.unitsRatio.toFixed(2) : '∞'} | ${describe(warmAnswer)} | ${describe(coldAnswer)} |`,
    );
    csv.push(
      csvLine([
        p.task,
        p.driftDataSeed,
        p.campaignSeed,
        p.budget,
        JSON.stringify(p.first.answer),
        p.warm.used,
        p.cold.used,
        o.coldGainPct.toFixed(4),
        o.warmGainPct.toFixed(4),
        o.warmUnitsToCold ?? 'not reached',
        Number.isFinite(o.unitsRatio) ? o.unitsRatio.toFixed(3) : 'inf',
        JSON.stringify(warmAnswer),
        JSON.stringify(coldAnswer),
      ]),
    );
  }
  const ratio = bootstrapCi(
    outcomes.map((o) => (Number.isFinite(o.unitsRatio) ? o.unitsRatio : 1e9)),
    median,
  );
  const diff = bootstrapCi(
    outcomes.map((o) => o.warmGainPct - o.coldGainPct),
    median,
  );
  const ratioText = `median units ratio (warm to the cold gain / cold spend) ${ratio.estimate >= 1e9 ? 'not reached' : ratio.estimate.toFixed(2)} [95 % CI ${fmtBound(ratio.low)}, ${fmtBound(ratio.high)}]`;
  const diffText = `median (warm − cold) test gain at equal spend ${ci(diff)} points`;
  md.push('', `Over ${outcomes.length} pairs: ${ratioText}; ${diffText}.`);
  writeFileSync(path.join(RESULTS, 'transfer.md'), `${md.join('\n')}\n`);
  writeFileSync(path.join(RESULTS, 'transfer.csv'), `${csv.join('\n')}\n`);
  return [ratioText, diffText];
}

const fmtBound = (v: number) => (!Number.isFinite(v) ? '—' : v >= 1e9 ? '∞' : v.toFixed(2));

export type { Spec };
