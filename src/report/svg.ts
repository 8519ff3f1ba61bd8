/**
 * Small SVG charts for campaign reports, without dependencies: the primary metric over time, the
 * budget burn, and wins and losses by hypothesis source. Output is deterministic (same input, same
 * bytes), every text is escaped, and each phase has its own marker shape as well as its own colour,
 * so that a chart printed in greyscale still reads.
 *
 *   const svg = metricChart({ metric: 'ne', direction: 'minimize', runs: [
 *     { phase: 'preflight', baseline: true, value: 0.71, title: 'c.e0000 baseline' },
 *     { phase: 'validation', baseline: false, value: null, title: 'c.e0002 failed (oom)' },
 *   ] });
 */

/** Escapes text for XML content and attribute values (double- or single-quoted). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => XML_ENTITIES[ch] ?? ch);
}
const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Coordinates with at most two decimals, so that output does not depend on float noise. */
const n = (x: number): string => String(Math.round(x * 100) / 100);

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const INK = '#222222';
const GRID = '#d0d0d0';
/** Failures are vermillion crosses: a shape no phase uses. */
const FAILURE = '#D55E00';

type Shape = 'square' | 'circle' | 'triangle' | 'diamond';

/** Okabe–Ito colours (safe for colour-blind readers), each phase with its own shape too. */
export const PHASE_STYLE: Record<string, { colour: string; shape: Shape }> = {
  preflight: { colour: '#000000', shape: 'square' },
  validation: { colour: '#E69F00', shape: 'circle' },
  combination: { colour: '#009E73', shape: 'triangle' },
  exploitation: { colour: '#0072B2', shape: 'diamond' },
};
const OTHER_PHASE = { colour: '#777777', shape: 'circle' as Shape };
const styleOf = (phase: string) => PHASE_STYLE[phase] ?? OTHER_PHASE;

/** Alternating light greys behind consecutive phases. */
const BAND_FILLS = ['#f3f3f3', '#e4e4e4'];

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Round tick values covering [lo, hi] with about `count` steps of 1, 2 or 5 × 10^k. */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi <= lo) {
    const pad = Math.abs(lo) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** Tick labels with as many decimals as the step needs, and no more. */
export function tickLabels(ticks: readonly number[]): string[] {
  const step = ticks.length > 1 ? Math.abs((ticks[1] as number) - (ticks[0] as number)) : 1;
  const decimals = step > 0 ? Math.min(10, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))) : 0;
  return ticks.map((t) => {
    const s = t.toFixed(decimals);
    return s === '-0' || /^-0\.0*$/.test(s) ? s.slice(1) : s;
  });
}

function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function text(
  x: number,
  y: number,
  content: string,
  opts: {
    anchor?: 'start' | 'middle' | 'end';
    size?: number;
    weight?: string;
    fill?: string;
    rotate?: boolean;
  } = {},
): string {
  const attrs = [
    `x="${n(x)}"`,
    `y="${n(y)}"`,
    `font-size="${opts.size ?? 12}"`,
    `fill="${opts.fill ?? INK}"`,
    opts.anchor && opts.anchor !== 'start' ? `text-anchor="${opts.anchor}"` : '',
    opts.weight ? `font-weight="${opts.weight}"` : '',
    opts.rotate ? `transform="rotate(-90 ${n(x)} ${n(y)})"` : '',
  ].filter(Boolean);
  return `<text ${attrs.join(' ')}>${escapeXml(content)}</text>`;
}

function title(content: string): string {
  return `<title>${escapeXml(content)}</title>`;
}

function marker(shape: Shape, cx: number, cy: number, r: number, fill: string, stroke: string): string {
  const paint = `fill="${fill}" stroke="${stroke}" stroke-width="1.5"`;
  switch (shape) {
    case 'circle':
      return `<circle cx="${n(cx)}" cy="${n(cy)}" r="${n(r)}" ${paint}/>`;
    case 'square':
      return `<rect x="${n(cx - r * 0.9)}" y="${n(cy - r * 0.9)}" width="${n(r * 1.8)}" height="${n(r * 1.8)}" ${paint}/>`;
    case 'triangle':
      return `<path d="M${n(cx)} ${n(cy - r * 1.15)}L${n(cx + r * 1.1)} ${n(cy + r * 0.8)}L${n(cx - r * 1.1)} ${n(cy + r * 0.8)}Z" ${paint}/>`;
    case 'diamond':
      return `<path d="M${n(cx)} ${n(cy - r * 1.25)}L${n(cx + r * 1.1)} ${n(cy)}L${n(cx)} ${n(cy + r * 1.25)}L${n(cx - r * 1.1)} ${n(cy)}Z" ${paint}/>`;
  }
}

function cross(cx: number, cy: number, r: number): string {
  return `<path d="M${n(cx - r)} ${n(cy - r)}L${n(cx + r)} ${n(cy + r)}M${n(cx - r)} ${n(cy + r)}L${n(cx + r)} ${n(cy - r)}" stroke="${FAILURE}" stroke-width="2" fill="none"/>`;
}

function svgRoot(width: number, height: number, label: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ${FONT}>`,
    title(label),
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
  ].join('\n');
}

/** Horizontal grid lines and labels for `ticks` on the left of `box`. */
function yAxis(box: Box, ticks: number[], y: (v: number) => number, label: string): string[] {
  const labels = tickLabels(ticks);
  const out = ticks.map(
    (t, i) =>
      `<line x1="${n(box.left)}" y1="${n(y(t))}" x2="${n(box.left + box.width)}" y2="${n(y(t))}" stroke="${GRID}" stroke-width="1"/>` +
      text(box.left - 6, y(t) + 4, labels[i] ?? '', { anchor: 'end', size: 11 }),
  );
  out.push(text(14, box.top + box.height / 2, label, { anchor: 'middle', size: 12, rotate: true }));
  return out;
}

/** Integer ticks and labels under `box`. */
function xAxis(box: Box, ticks: number[], x: (v: number) => number, label: string): string[] {
  const bottom = box.top + box.height;
  const out = [
    `<line x1="${n(box.left)}" y1="${n(bottom)}" x2="${n(box.left + box.width)}" y2="${n(bottom)}" stroke="${INK}" stroke-width="1"/>`,
  ];
  for (const t of ticks) {
    out.push(
      `<line x1="${n(x(t))}" y1="${n(bottom)}" x2="${n(x(t))}" y2="${n(bottom + 5)}" stroke="${INK}" stroke-width="1"/>`,
      text(x(t), bottom + 18, String(t), { anchor: 'middle', size: 11 }),
    );
  }
  out.push(text(box.left + box.width / 2, bottom + 38, label, { anchor: 'middle', size: 12 }));
  return out;
}

interface LegendItem {
  label: string;
  /** SVG for a 14×14 swatch drawn around (cx, cy). */
  swatch: (cx: number, cy: number) => string;
}

/** One row of legend items from `left`, wrapping when it would pass `right`. */
function legend(items: LegendItem[], left: number, top: number, right: number): string[] {
  const out: string[] = [];
  let x = left;
  let y = top;
  for (const item of items) {
    const width = 24 + item.label.length * 6.6 + 14;
    if (x + width > right && x > left) {
      x = left;
      y += 18;
    }
    out.push(item.swatch(x + 7, y - 4), text(x + 18, y, item.label, { size: 11 }));
    x += width;
  }
  return out;
}

/** Consecutive x positions (1-based) that share a phase: [phase, first, last]. */
function phaseRuns(phases: readonly string[]): [string, number, number][] {
  const runs: [string, number, number][] = [];
  phases.forEach((phase, i) => {
    const last = runs[runs.length - 1];
    if (last && last[0] === phase) last[2] = i + 1;
    else runs.push([phase, i + 1, i + 1]);
  });
  return runs;
}

/**
 * Shaded bands behind each run of a phase, with the phase's name where it fits. Position i (1-based)
 * spans x(i - offset) to x(i + 1 - offset): offset 0.5 centres a point, 1 ends a step at i.
 */
function phaseBands(box: Box, phases: readonly string[], x: (v: number) => number, offset: number): string[] {
  return phaseRuns(phases).flatMap(([phase, first, last], i) => {
    const x0 = x(first - offset);
    const width = Math.max(0, x(last + 1 - offset) - x0);
    const band = `<rect class="phase-band" x="${n(x0)}" y="${n(box.top)}" width="${n(width)}" height="${n(box.height)}" fill="${BAND_FILLS[i % 2]}">${title(`${phase}: ${last - first + 1} experiment(s)`)}</rect>`;
    const fits = width >= phase.length * 6.2 + 6;
    return fits
      ? [band, text(x0 + width / 2, box.top + 13, phase, { anchor: 'middle', size: 11, fill: '#555555' })]
      : [band];
  });
}

function emptyNote(box: Box, message: string): string {
  return text(box.left + box.width / 2, box.top + box.height / 2, message, {
    anchor: 'middle',
    size: 13,
    fill: '#555555',
  });
}

// ---- (a) the primary metric over time ------------------------------------------------------------

export interface MetricRun {
  phase: string;
  baseline: boolean;
  /** The primary metric; null for a run that failed or was cancelled. */
  value: number | null;
  /** Hover text: experiment id, hypothesis, fidelity, value or failure. */
  title: string;
}

export interface MetricChartInput {
  metric: string;
  /** Unknown while a campaign has no result: then no best-so-far line is drawn. */
  direction?: 'minimize' | 'maximize';
  /** Finished runs, in the order they finished. */
  runs: MetricRun[];
}

/**
 * The best value seen so far after each value: the running minimum for a metric to minimize, the
 * running maximum for one to maximize.
 */
export function bestSoFar(values: readonly number[], direction: 'minimize' | 'maximize'): number[] {
  const out: number[] = [];
  for (const v of values) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? v : direction === 'minimize' ? Math.min(prev, v) : Math.max(prev, v));
  }
  return out;
}

/** Chart (a): each finished run's primary metric in finishing order, over shaded phase bands. */
export function metricChart(input: MetricChartInput): string {
  const W = 760;
  const H = 380;
  const box: Box = { left: 78, top: 58, width: W - 78 - 20, height: H - 58 - 58 };
  const { runs, metric, direction } = input;
  const better =
    direction === 'minimize' ? 'lower is better' : direction === 'maximize' ? 'higher is better' : '';
  const yLabel = better ? `${metric} (${better})` : metric;
  const heading = text(box.left, 18, `${metric} of each experiment, in the order they finished`, {
    size: 14,
    weight: '600',
  });
  const phasesSeen = [...new Set(runs.map((r) => r.phase))];
  const items: LegendItem[] = [
    ...phasesSeen.map((phase) => ({
      label: phase,
      swatch: (cx: number, cy: number) =>
        marker(styleOf(phase).shape, cx, cy, 5, styleOf(phase).colour, styleOf(phase).colour),
    })),
    {
      label: 'baseline (hollow)',
      swatch: (cx: number, cy: number) => marker('circle', cx, cy, 5, '#ffffff', INK),
    },
    ...(direction
      ? [
          {
            label: 'best so far',
            swatch: (cx: number, cy: number) =>
              `<line x1="${n(cx - 8)}" y1="${n(cy)}" x2="${n(cx + 8)}" y2="${n(cy)}" stroke="${INK}" stroke-width="2"/>`,
          },
        ]
      : []),
    { label: 'failed or cancelled', swatch: (cx: number, cy: number) => cross(cx, cy, 4) },
  ];
  const body = [heading, ...legend(items, box.left, 40, W - 10)];
  const values = runs.flatMap((r) => (r.value === null ? [] : [r.value]));
  if (runs.length === 0) {
    body.push(
      `<rect x="${box.left}" y="${box.top}" width="${box.width}" height="${box.height}" fill="none" stroke="${GRID}"/>`,
      emptyNote(box, 'No experiment has finished yet.'),
    );
    return svgRoot(W, H, `${metric} over time: no experiment has finished yet`, body);
  }
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  // Headroom below the lowest value keeps points clear of the failure marks on the x axis.
  const yTicks = niceTicks(lo - (hi - lo) * 0.08, hi, 5);
  const y = linear(
    yTicks[0] as number,
    yTicks[yTicks.length - 1] as number,
    box.top + box.height,
    box.top + 18,
  );
  const x = linear(0.5, runs.length + 0.5, box.left, box.left + box.width);
  const xTicks = niceTicks(1, runs.length, Math.min(10, runs.length), true).filter(
    (t) => t >= 1 && t <= runs.length,
  );
  body.push(
    ...phaseBands(
      box,
      runs.map((r) => r.phase),
      x,
      0.5,
    ),
    ...yAxis(box, yTicks, y, yLabel),
    ...xAxis(box, xTicks, x, 'experiments, in the order they finished'),
  );
  if (direction && values.length) {
    const best = bestSoFar(values, direction);
    const succeeded = runs.flatMap((r, i) => (r.value === null ? [] : [i + 1]));
    const first = succeeded[0] as number;
    let d = `M${n(x(first))} ${n(y(best[0] as number))}`;
    for (let k = 1; k < succeeded.length; k++) {
      d += `H${n(x(succeeded[k] as number))}V${n(y(best[k] as number))}`;
    }
    d += `H${n(box.left + box.width)}`;
    const finalBest = best[best.length - 1] as number;
    body.push(
      `<path class="best-so-far" d="${d}" fill="none" stroke="${INK}" stroke-width="2" stroke-linejoin="round">${title(`best so far: ${finalBest}`)}</path>`,
    );
  }
  runs.forEach((r, i) => {
    const cx = x(i + 1);
    if (r.value === null) {
      body.push(`<g class="failure">${title(r.title)}${cross(cx, box.top + box.height, 5)}</g>`);
      return;
    }
    const s = styleOf(r.phase);
    body.push(
      `<g class="${r.baseline ? 'run baseline' : 'run'}">${title(r.title)}${marker(s.shape, cx, y(r.value), r.baseline ? 5 : 4.5, r.baseline ? '#ffffff' : s.colour, s.colour)}</g>`,
    );
  });
  const failed = runs.length - values.length;
  return svgRoot(
    W,
    H,
    `${metric} of ${runs.length} finished experiments${failed ? `, ${failed} of them failed or cancelled` : ''}`,
    body,
  );
}

// ---- (b) budget burn -----------------------------------------------------------------------------

export interface BudgetChartInput {
  /** Every launched run, in launch order: the budget is charged at launch. */
  launches: { phase: string; costGpuHours: number }[];
  limit: { experiments?: number; gpuHours?: number };
}

/** Chart (b): cumulative experiments and GPU-hours against their limits, over phase bands. */
export function budgetChart(input: BudgetChartInput): string {
  const W = 760;
  const H = 500;
  const { launches, limit } = input;
  const heading = text(78, 18, 'Budget burn: cumulative spend against the limit, in launch order', {
    size: 14,
    weight: '600',
  });
  const items: LegendItem[] = [
    {
      label: 'spent so far',
      swatch: (cx, cy) =>
        `<line x1="${n(cx - 8)}" y1="${n(cy)}" x2="${n(cx + 8)}" y2="${n(cy)}" stroke="#0072B2" stroke-width="2.5"/>`,
    },
    {
      label: 'limit',
      swatch: (cx, cy) =>
        `<line x1="${n(cx - 8)}" y1="${n(cy)}" x2="${n(cx + 8)}" y2="${n(cy)}" stroke="${FAILURE}" stroke-width="2" stroke-dasharray="5 3"/>`,
    },
  ];
  const body = [heading, ...legend(items, 78, 40, W - 10)];
  const panelHeight = 150;
  const panels: { label: string; top: number; values: number[]; limit?: number; unit: string }[] = [];
  let experiments = 0;
  let gpuHours = 0;
  const cumExperiments = [0];
  const cumGpuHours = [0];
  for (const l of launches) {
    experiments += 1;
    gpuHours += l.costGpuHours;
    cumExperiments.push(experiments);
    cumGpuHours.push(gpuHours);
  }
  panels.push(
    {
      label: 'experiments',
      top: 70,
      values: cumExperiments,
      unit: 'experiments',
      ...(limit.experiments === undefined ? {} : { limit: limit.experiments }),
    },
    {
      label: 'GPU-hours',
      top: 70 + panelHeight + 80,
      values: cumGpuHours,
      unit: 'GPU-h',
      ...(limit.gpuHours === undefined ? {} : { limit: limit.gpuHours }),
    },
  );
  const count = launches.length;
  const x = linear(0, Math.max(1, count), 78, W - 20);
  for (const p of panels) {
    const box: Box = { left: 78, top: p.top, width: W - 78 - 20, height: panelHeight };
    const top = Math.max(p.limit ?? 0, p.values[p.values.length - 1] ?? 0);
    const yTicks = niceTicks(0, top > 0 ? top * 1.05 : 1, 4, p.unit === 'experiments');
    const y = linear(0, yTicks[yTicks.length - 1] as number, box.top + box.height, box.top + 16);
    const xTicks = niceTicks(0, Math.max(1, count), Math.min(10, Math.max(1, count)), true).filter(
      (t) => t >= 0 && t <= Math.max(1, count),
    );
    body.push(
      ...phaseBands(
        box,
        launches.map((l) => l.phase),
        x,
        1,
      ),
    );
    body.push(...yAxis(box, yTicks, y, p.label), ...xAxis(box, xTicks, x, 'experiments launched'));
    if (count === 0) body.push(emptyNote(box, 'Nothing launched yet.'));
    else {
      let d = `M${n(x(0))} ${n(y(0))}`;
      // A step at each launch: after x launches, the spend is exactly the sum of their charges.
      p.values.forEach((v, i) => {
        if (i > 0) d += `H${n(x(i))}V${n(y(v))}`;
      });
      const spent = p.values[p.values.length - 1] ?? 0;
      body.push(
        `<path class="spent" d="${d}" fill="none" stroke="#0072B2" stroke-width="2.5">${title(`${p.label} spent: ${formatAmount(spent)}`)}</path>`,
      );
    }
    const used = formatAmount(p.values[p.values.length - 1] ?? 0);
    if (p.limit !== undefined) {
      body.push(
        `<line class="limit" x1="${n(box.left)}" y1="${n(y(p.limit))}" x2="${n(box.left + box.width)}" y2="${n(y(p.limit))}" stroke="${FAILURE}" stroke-width="2" stroke-dasharray="5 3"/>`,
        text(box.left + box.width - 4, y(p.limit) - 5, `limit ${formatAmount(p.limit)} ${p.unit}`, {
          anchor: 'end',
          size: 11,
          fill: '#8a3300',
        }),
      );
    }
    const summary =
      p.limit === undefined
        ? `${p.label}: ${used} ${p.unit} used (no limit)`
        : `${p.label}: ${used} of ${formatAmount(p.limit)} ${p.unit} used`;
    body.push(text(box.left, box.top - 6, summary, { size: 12, weight: '600' }));
  }
  return svgRoot(W, H, `Budget burn over ${count} launched experiments`, body);
}

/** A budget amount with enough significant digits for tiny GPU-hour costs. */
export function formatAmount(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  if (abs >= 100) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  return String(Number(v.toPrecision(3)));
}

// ---- (c) wins and losses by hypothesis source ----------------------------------------------------

export interface SourceTally {
  source: string;
  /** Validated wins: beat the rolling baseline beyond noise. */
  won: number;
  /** Measured, and not a win. */
  lost: number;
  /** Never produced a measurement (every run failed or was cancelled). */
  failed: number;
}

const OUTCOME_STYLE = [
  { key: 'won', label: 'won (beat the baseline beyond noise)', fill: '#0072B2', stroke: '#0072B2' },
  { key: 'lost', label: 'lost (measured, no win)', fill: '#E69F00', stroke: '#8a5a00' },
  { key: 'failed', label: 'failed (no result)', fill: '#ffffff', stroke: FAILURE },
] as const;

/** Chart (c): grouped bars of won, lost and failed hypotheses for each source. */
export function sourceChart(tallies: SourceTally[]): string {
  const W = 760;
  const H = 330;
  const box: Box = { left: 78, top: 70, width: W - 78 - 20, height: H - 70 - 56 };
  const body = [
    text(box.left, 18, 'Hypotheses by source: wins and losses', { size: 14, weight: '600' }),
    ...legend(
      OUTCOME_STYLE.map((o) => ({
        label: o.label,
        swatch: (cx: number, cy: number) =>
          `<rect x="${n(cx - 6)}" y="${n(cy - 6)}" width="12" height="12" fill="${o.fill}" stroke="${o.stroke}" stroke-width="1.5"/>`,
      })),
      box.left,
      40,
      W - 10,
    ),
  ];
  const top = Math.max(1, ...tallies.flatMap((t) => [t.won, t.lost, t.failed]));
  const yTicks = niceTicks(0, top, Math.min(5, top), true);
  const y = linear(0, yTicks[yTicks.length - 1] as number, box.top + box.height, box.top + 10);
  body.push(...yAxis(box, yTicks, y, 'hypotheses'));
  const bottom = box.top + box.height;
  body.push(
    `<line x1="${n(box.left)}" y1="${n(bottom)}" x2="${n(box.left + box.width)}" y2="${n(bottom)}" stroke="${INK}" stroke-width="1"/>`,
  );
  const groupWidth = box.width / Math.max(1, tallies.length);
  const barWidth = Math.min(36, (groupWidth - 24) / OUTCOME_STYLE.length);
  tallies.forEach((t, g) => {
    const centre = box.left + groupWidth * (g + 0.5);
    const start = centre - (barWidth * OUTCOME_STYLE.length) / 2;
    OUTCOME_STYLE.forEach((o, k) => {
      const value = t[o.key];
      const x0 = start + k * barWidth;
      const h = bottom - y(value);
      body.push(
        `<rect class="bar ${o.key}" x="${n(x0 + 1)}" y="${n(bottom - h)}" width="${n(barWidth - 2)}" height="${n(h)}" fill="${o.fill}" stroke="${o.stroke}" stroke-width="1.5">${title(`${t.source}: ${value} ${o.key}`)}</rect>`,
        text(x0 + barWidth / 2, bottom - h - 4, String(value), { anchor: 'middle', size: 11 }),
      );
    });
    body.push(text(centre, bottom + 18, t.source, { anchor: 'middle', size: 12 }));
  });
  if (tallies.every((t) => t.won + t.lost + t.failed === 0))
    body.push(emptyNote(box, 'No hypothesis tested yet.'));
  body.push(text(box.left + box.width / 2, bottom + 40, 'hypothesis source', { anchor: 'middle', size: 12 }));
  const total = tallies.reduce((a, t) => a + t.won + t.lost + t.failed, 0);
  return svgRoot(W, H, `Wins and losses of ${total} hypotheses by source`, body);
}
