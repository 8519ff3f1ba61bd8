/** The numbers `npm run bench` reports, on hand-made runs whose answers are known. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bestSoFarSvg,
  bestWithin,
  csvLine,
  gainPct,
  medianStepsToGain,
  percentile,
  slotGaps,
  stepsToGain,
  utilization,
  type SearchRun,
} from '../../bench/analysis';

const ref = { ne: 0.9, bayesNe: 0.7 };
const run = (seed: number, points: [number, number | null][]): SearchRun => ({
  method: 'random',
  task: 't',
  seed,
  points: points.map(([cumSteps, ne]) => ({ cumSteps, ne })),
  stepsUsed: points.at(-1)?.[0] ?? 0,
  runs: points.length,
});

describe('bench analysis', () => {
  it('takes the best NE among runs at the evaluation fidelity, within a compute limit', () => {
    const r = run(0, [
      [100, null],
      [300, 0.88],
      [500, 0.86],
      [700, null],
      [900, 0.87],
    ]);
    assert.equal(bestWithin(r), 0.86);
    assert.equal(bestWithin(r, 400), 0.88);
    assert.equal(bestWithin(r, 200), undefined);
  });

  it('counts the steps spent when the best-so-far first reaches a gain', () => {
    const r = run(0, [
      [100, 0.89],
      [300, 0.87],
      [500, 0.85],
    ]);
    assert.ok(Math.abs(gainPct(ref, 0.855) - 5) < 1e-9);
    assert.equal(stepsToGain(r, ref, 3), 300);
    assert.equal(stepsToGain(r, ref, 5), 500);
    assert.equal(stepsToGain(r, ref, 10), undefined);
  });

  it('reports "not reached" as the median when half the seeds never reach the target', () => {
    const reached = run(0, [[100, 0.8]]);
    const missed = run(1, [[100, 0.9]]);
    assert.equal(medianStepsToGain([reached, missed, missed], ref, 5), Infinity);
    assert.equal(medianStepsToGain([reached, reached, missed], ref, 5), 100);
  });

  it('measures a hand-over as the time from the latest finish to the next start, after the first wave', () => {
    const s = 1000;
    // Two slots: jobs A and B start at once; C starts 0.5 s after A ends; D 2 s after B ends.
    const jobs = [
      { start: 0, end: 10 * s },
      { start: 0, end: 12 * s },
      { start: 10.5 * s, end: 20 * s },
      { start: 14 * s, end: 20 * s },
    ];
    assert.deepEqual(slotGaps(jobs, 2), [0.5, 2]);
    // Busy 10 + 12 + 9.5 + 6 = 37.5 slot-seconds of 2 × 20.
    assert.equal(utilization(jobs, 2), 37.5 / 40);
  });

  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile([3], 99), 3);
  });

  it('draws one escaped line per method and the baseline and Bayes references', () => {
    const svg = bestSoFarSvg({
      title: 'a <task>',
      series: [
        {
          name: 'rea',
          runs: [
            run(0, [
              [100, 0.88],
              [200, 0.85],
            ]),
          ],
        },
        { name: 'random & co', runs: [run(0, [[200, 0.87]])] },
      ],
      ref,
      maxSteps: 200,
    });
    assert.match(svg, /a &lt;task&gt;/);
    assert.match(svg, /random &amp; co/);
    assert.equal(svg.match(/<path /g)?.length, 2);
    assert.match(svg, /baseline, seed 0: 0\.9000/);
    assert.match(svg, /Bayes 0\.7000/);
  });

  it('quotes CSV fields that need it', () => {
    assert.equal(csvLine(['a', 1, 'b,c', 'say "x"', undefined, null]), 'a,1,"b,c","say ""x""",,');
  });
});
