/** The benchmark's statistics on inputs whose answers are known (SciPy 1.17's values for Wilcoxon). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bootstrapCi,
  mean,
  median,
  normalCdf,
  pairedWinRate,
  quantile,
  shareBelowZero,
  shareMissed,
  wilcoxonSignedRank,
} from '../../bench/stats';

const close = (actual: number, expected: number, rel = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `expected ${expected}, got ${actual}`);

describe('bench statistics', () => {
  it('computes medians and interpolated quantiles as numpy does', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantile([10, 0], 0.1), 1);
    assert.equal(mean([1, 2, 3, 6]), 3);
  });

  it('matches SciPy on an exact Wilcoxon test without ties', () => {
    // scipy.stats.wilcoxon([1.5, -0.3, 2.2, 0.8, -1.1, 3.4, 0.6, 1.9]) → statistic 5.0, p 0.078125
    const r = wilcoxonSignedRank([1.5, -0.3, 2.2, 0.8, -1.1, 3.4, 0.6, 1.9]);
    assert.equal(r.method, 'exact');
    assert.equal(r.statistic, 5);
    assert.equal(r.rPlus, 31);
    assert.equal(r.p, 0.078125);
  });

  it('drops zero differences and handles tied ranks exactly', () => {
    // scipy.stats.wilcoxon([1, 2, 2, -3, 4, 0, 5, -1, 6, 7, 2]) → statistic 7.5, p 0.0390625
    const r = wilcoxonSignedRank([1, 2, 2, -3, 4, 0, 5, -1, 6, 7, 2]);
    assert.equal(r.n, 10);
    assert.equal(r.statistic, 7.5);
    assert.equal(r.p, 0.0390625);
  });

  it('uses the normal approximation with the tie correction above 50 differences', () => {
    // scipy.stats.wilcoxon(np.arange(1, 61) - 10.5) → statistic 105.0, p 2.474962274685607e-09
    const r = wilcoxonSignedRank(Array.from({ length: 60 }, (_, i) => i + 1 - 10.5));
    assert.equal(r.method, 'normal');
    assert.equal(r.statistic, 105);
    close(r.p, 2.474962274685607e-9, 1e-5);
    // scipy.stats.wilcoxon([(i % 7) - 2.0 for i in range(1, 71)]) → statistic 410.0, p 0.0001727604735846219
    const ties = wilcoxonSignedRank(Array.from({ length: 70 }, (_, i) => ((i + 1) % 7) - 2));
    assert.equal(ties.n, 60);
    assert.equal(ties.statistic, 410);
    close(ties.p, 0.0001727604735846219, 1e-5);
  });

  it('gives p = 1 when every difference is zero, and the smallest p when all point one way', () => {
    assert.equal(wilcoxonSignedRank([0, 0, 0]).p, 1);
    // scipy.stats.wilcoxon([-1, -2, -3, -4, -5]) → statistic 0.0, p 0.0625
    assert.equal(wilcoxonSignedRank([-1, -2, -3, -4, -5]).p, 0.0625);
  });

  it('has an accurate normal CDF in the tails', () => {
    close(normalCdf(1.959963985), 0.975, 1e-7);
    close(normalCdf(-3), 0.0013498980316301, 1e-6);
    close(normalCdf(-6), 9.865876450377e-10, 1e-5);
    close(normalCdf(0), 0.5, 1e-7);
  });

  it('counts paired wins, with ties as half', () => {
    const r = pairedWinRate([3, 1, 2, 5], [1, 1, 4, 2]);
    assert.deepEqual(
      { wins: r.wins, losses: r.losses, ties: r.ties, n: r.n },
      { wins: 2, losses: 1, ties: 1, n: 4 },
    );
    assert.equal(r.rate, 0.625);
    assert.throws(() => pairedWinRate([1], [1, 2]), /differ in length/);
  });

  it('gives a bootstrap interval that holds the estimate, narrows with more data, and is reproducible', () => {
    const few = bootstrapCi([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], median);
    assert.equal(few.estimate, 5.5);
    assert.ok(few.low <= 5.5 && few.high >= 5.5 && few.low >= 1 && few.high <= 10);
    assert.deepEqual(bootstrapCi([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], median), few);
    const many = bootstrapCi(
      Array.from({ length: 400 }, (_, i) => 1 + (i % 10)),
      median,
    );
    assert.ok(many.high - many.low < few.high - few.low);
    const constant = bootstrapCi([2, 2, 2, 2], mean);
    assert.deepEqual(constant, { estimate: 2, low: 2, high: 2 });
    const one = bootstrapCi([3], median);
    assert.equal(one.estimate, 3);
    assert.ok(Number.isNaN(one.low) && Number.isNaN(one.high));
  });

  it('counts answers worse than the baseline and searches that missed what a peer found', () => {
    assert.equal(shareBelowZero([-0.1, 0, 0.5, -2]), 0.5);
    // Unit 0: found nothing while a peer found 1.2 % (missed). Unit 1: found nothing, peers < 1 %.
    // Unit 2: found a gain. Unit 3: a loss while a peer found 3 % (missed).
    assert.equal(
      shareMissed(
        [0, 0, 0.4, -0.2],
        [
          [1.2, 0.1],
          [0.5, 0.9],
          [2, 2],
          [3, -1],
        ],
      ),
      0.5,
    );
  });
});
