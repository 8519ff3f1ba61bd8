/**
 * The numbers of the search-quality and transfer benchmarks, from the runs each method made: best
 * NE, gain over the baseline, share of the gap to the Bayes-optimal NE closed, and the compute
 * (training steps) needed to reach a target gain. Pure functions over recorded runs.
 *
 *   const s = summarize(run, { ne: 0.869, bayesNe: 0.737 });
 *   s.bestNe; s.gainPct; s.gapClosedPct; stepsToGain(run, ref, 1.5);
 */
import { escapeXml } from '../src/report/svg';

/** One training run of a search, in the order it finished; `ne` only for runs at the eval fidelity. */
export interface RunPoint {
  /** Training steps spent by the search when this run finished (this run included). */
  cumSteps: number;
  /** NE at the evaluation fidelity, or null (another fidelity, failed, pruned). */
  ne: number | null;
}

export interface SearchRun {
  method: string;
  task: string;
  seed: number;
  points: RunPoint[];
  stepsUsed: number;
  runs: number;
  /** The baseline at this search's trainer seed (the seed's own noise), when measured. */
  ref?: Reference;
  /** rea: runs of the baseline config (its replicates) are already left out of `points`. */
  baselineRunsExcluded?: boolean;
  /** What the method itself answers (rea: its confirmed best, mean of replicates). */
  answer?: { ne: number; hypothesisId: string; significant: boolean };
}

export interface Reference {
  /** Baseline NE at the evaluation fidelity (trainer seed 0). */
  ne: number;
  /** Bayes-optimal NE (synthetic data only). */
  bayesNe?: number;
}

export const gainPct = (ref: Reference, ne: number): number => ((ref.ne - ne) / ref.ne) * 100;

/** The best NE at the eval fidelity within `steps` of compute (all of it when omitted). */
export function bestWithin(run: SearchRun, steps = Infinity): number | undefined {
  let best: number | undefined;
  for (const p of run.points)
    if (p.cumSteps <= steps && p.ne !== null && (best === undefined || p.ne < best)) best = p.ne;
  return best;
}

/** Steps spent when the best-so-far first reached `targetGainPct`, or undefined if it never did. */
export function stepsToGain(run: SearchRun, ref: Reference, targetGainPct: number): number | undefined {
  let best = Infinity;
  for (const p of run.points) {
    if (p.ne !== null) best = Math.min(best, p.ne);
    if (Number.isFinite(best) && gainPct(ref, best) >= targetGainPct) return p.cumSteps;
  }
  return undefined;
}

export function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/**
 * Median of compute-to-target over seeds, where a seed that never reached the target counts as
 * infinite (so the median is "not reached" when half or more of the seeds failed).
 */
export function medianStepsToGain(runs: readonly SearchRun[], ref: Reference, target: number): number {
  return median(runs.map((r) => stepsToGain(r, r.ref ?? ref, target) ?? Infinity));
}

/** Best-so-far NE against compute, as a step function sampled at `xs` (median over seeds). */
export function bestSoFarCurve(runs: readonly SearchRun[], xs: readonly number[]): (number | null)[] {
  return xs.map((x) => {
    const values = runs.map((r) => bestWithin(r, x)).filter((v): v is number => v !== undefined);
    // Only once every seed has a value, so that the median is over the same seeds everywhere.
    return values.length === runs.length && values.length ? median(values) : null;
  });
}

/** One trainer run on a slot, in epoch milliseconds (from the gpu-agent's job_events journal). */
export interface JobSpan {
  start: number;
  end: number;
}

/** Busy slot-time over `slots` × (last finish − first start). */
export function utilization(jobs: readonly JobSpan[], slots: number): number {
  if (!jobs.length) return NaN;
  const t0 = Math.min(...jobs.map((j) => j.start));
  const t1 = Math.max(...jobs.map((j) => j.end));
  const busy = jobs.reduce((a, j) => a + (j.end - j.start), 0);
  return busy / (slots * (t1 - t0));
}

/**
 * For every job start after the first wave (the first `slots` starts): the seconds since the most
 * recent job finish before it, i.e. how long rea took from a result to the next job running. At a
 * phase boundary that includes waiting for the step's last job and planning the next step.
 */
export function slotGaps(jobs: readonly JobSpan[], slots: number): number[] {
  const ends = jobs.map((j) => j.end).sort((a, b) => a - b);
  const starts = jobs.map((j) => j.start).sort((a, b) => a - b);
  const gaps: number[] = [];
  let e = -1;
  starts.forEach((start, i) => {
    while (e + 1 < ends.length && (ends[e + 1] as number) <= start) e += 1;
    if (i >= slots && e >= 0) gaps.push((start - (ends[e] as number)) / 1000);
  });
  return gaps;
}

const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3', '4 4', '1 2'];

/** A line chart of median best-so-far NE against training steps, one line per method. */
export function bestSoFarSvg(opts: {
  title: string;
  series: { name: string; runs: SearchRun[] }[];
  ref: Reference;
  maxSteps: number;
}): string {
  const W = 780;
  const H = 420;
  const L = 70;
  const R = 230;
  const T = 40;
  const B = 50;
  const xs = Array.from({ length: 101 }, (_, i) => (opts.maxSteps * i) / 100);
  const curves = opts.series.map((s) => ({ name: s.name, ys: bestSoFarCurve(s.runs, xs) }));
  const all = [opts.ref.ne, ...curves.flatMap((c) => c.ys.filter((y): y is number => y !== null))];
  if (opts.ref.bayesNe !== undefined) all.push(opts.ref.bayesNe);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const pad = (hi - lo) * 0.05 || 0.01;
  const y0 = lo - pad;
  const y1 = hi + pad;
  const px = (x: number) => L + ((W - L - R) * x) / opts.maxSteps;
  const py = (y: number) => T + ((H - T - B) * (y1 - y)) / (y1 - y0);
  const r2 = (v: number) => String(Math.round(v * 100) / 100);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#222"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#222"/>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const x = (opts.maxSteps * i) / 5;
    out.push(
      `<text x="${r2(px(x))}" y="${H - B + 18}" text-anchor="middle">${Math.round(x)}</text>`,
      `<line x1="${r2(px(x))}" y1="${H - B}" x2="${r2(px(x))}" y2="${H - B + 4}" stroke="#222"/>`,
    );
    const y = y0 + ((y1 - y0) * i) / 5;
    out.push(
      `<text x="${L - 6}" y="${r2(py(y) + 4)}" text-anchor="end">${y.toFixed(4)}</text>`,
      `<line x1="${L}" y1="${r2(py(y))}" x2="${W - R}" y2="${r2(py(y))}" stroke="#ddd"/>`,
    );
  }
  out.push(
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">training steps spent (sum of the fidelity knob over all runs)</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">best NE so far (median over seeds)</text>`,
  );
  const hline = (y: number, label: string) =>
    out.push(
      `<line x1="${L}" y1="${r2(py(y))}" x2="${W - R}" y2="${r2(py(y))}" stroke="#888" stroke-dasharray="3 3"/>`,
      `<text x="${W - R + 4}" y="${r2(py(y) + 4)}" fill="#555">${escapeXml(label)}</text>`,
    );
  hline(opts.ref.ne, `baseline, seed 0: ${opts.ref.ne.toFixed(4)}`);
  if (opts.ref.bayesNe !== undefined && opts.ref.bayesNe >= y0)
    hline(opts.ref.bayesNe, `Bayes ${opts.ref.bayesNe.toFixed(4)}`);
  curves.forEach((c, i) => {
    const colour = COLOURS[i % COLOURS.length] as string;
    const dash = DASHES[i % DASHES.length] as string;
    let d = '';
    let prev: number | null = null;
    c.ys.forEach((y, j) => {
      if (y === null) return;
      const x = xs[j] as number;
      d += d
        ? ` L${r2(px(x))},${r2(py(prev ?? y))} L${r2(px(x))},${r2(py(y))}`
        : `M${r2(px(x))},${r2(py(y))}`;
      prev = y;
    });
    if (d)
      out.push(
        `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      );
    const ly = T + 80 + i * 18;
    out.push(
      `<line x1="${W - R + 10}" y1="${ly}" x2="${W - R + 34}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${W - R + 40}" y="${ly + 4}">${escapeXml(c.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** A CSV line; fields with commas, quotes or newlines are quoted. */
export function csvLine(fields: (string | number | boolean | null | undefined)[]): string {
  return fields
    .map((f) => {
      const s = f === null || f === undefined ? '' : String(f);
      return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    })
    .join(',');
}
