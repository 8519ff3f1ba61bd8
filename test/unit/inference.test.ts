/**
 * The inference's moderated noise (src/core/search/inference.ts): special functions against known
 * values, and the limma-style fit of configs' variances of paired differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  digamma,
  fitModeration,
  moderatedNoise,
  noiseVariance,
  poolDifferences,
  trigamma,
  trigammaInverse,
} from '../../src/core/search/inference';
import { gaussian, seededRandom } from '../../src/core/search/space';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} is not ${b} ± ${tol}`);

/** `configs` sets of `n` paired differences with mean `mu` and standard deviation `sd`. */
function sets(configs: number, n: number, mu: number, sd: number, seed: number): number[][] {
  const random = seededRandom(seed);
  return Array.from({ length: configs }, () => Array.from({ length: n }, () => mu + sd * gaussian(random)));
}

describe('moderated noise', () => {
  it('computes digamma, trigamma and its inverse', () => {
    close(digamma(1), -0.5772156649, 1e-8, 'ψ(1)');
    close(digamma(0.5), -1.963510026, 1e-8, 'ψ(1/2)');
    close(digamma(10), 2.2517525891, 1e-8, 'ψ(10)');
    close(trigamma(1), Math.PI ** 2 / 6, 1e-8, "ψ'(1)");
    close(trigamma(0.5), Math.PI ** 2 / 2, 1e-8, "ψ'(1/2)");
    for (const x of [0.05, 0.7, 3, 40, 900])
      close(trigammaInverse(trigamma(x)), x, x * 1e-6, `inverse at ${x}`);
  });

  it('leaves the pool alone where the configs scatter alike', () => {
    // 12 configs, 4 seeds each, one noise level: their sample variances differ by chance only.
    const fit = fitModeration(sets(12, 4, 0.3, 0.5, 1));
    if (fit) assert.ok(fit.d0 > 20, `d0 ${fit.d0}: alike variances should weigh the pool heavily`);
  });

  it("lets a paired config's small scatter count where others are unpaired", () => {
    // Most configs re-seed the run (sd 0.9: unpaired from the baseline); two stay paired (sd 0.1).
    const unpaired = sets(8, 3, 0.2, 0.9, 2);
    const paired = sets(2, 3, 0.6, 0.1, 3);
    const all = [...unpaired, ...paired];
    const pooled = noiseVariance(poolDifferences(all));
    const fit = fitModeration(all);
    assert.ok(fit, 'variances this different are fitted');
    assert.ok(fit.d0 < 10, `d0 ${fit.d0}`);
    const mine = moderatedNoise(paired[0] as number[], fit);
    assert.ok(mine.variance < pooled / 2, `moderated ${mine.variance} vs pooled ${pooled}`);
    assert.ok(mine.df > 2, 'the prior adds degrees of freedom');
    const theirs = moderatedNoise(unpaired[0] as number[], fit);
    assert.ok(theirs.variance > mine.variance * 2, `unpaired ${theirs.variance} vs paired ${mine.variance}`);
  });

  it('needs three replicated configs with some scatter', () => {
    assert.equal(
      fitModeration([
        [1, 2],
        [0, 0.5],
      ]),
      undefined,
    );
    assert.equal(fitModeration([[1, 1], [0, 0], [2, 2], [3]]), undefined);
  });
});
