/**
 * The inference's moderated noise (src/core/search/inference.ts): special functions against known
 * values, and the limma-style fit of configs' variances of paired differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  digamma,
  fisherFCdf,
  fitModeration,
  moderatedNoise,
  noiseVariance,
  poolDifferences,
  priorVariance,
  trigamma,
  trigammaInverse,
  varianceRatioP,
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

describe('variance ratio and the prior of true gains', () => {
  it("computes Fisher's F distribution", () => {
    // With 2 numerator degrees of freedom the CDF has a closed form: 1 − (1 + 2f/d2)^(−d2/2).
    for (const [f, d2] of [
      [1, 4],
      [3, 2],
      [19, 2],
      [0.2, 9],
    ] as const)
      close(fisherFCdf(f, 2, d2), 1 - (1 + (2 * f) / d2) ** (-d2 / 2), 1e-7, `F(${f}; 2, ${d2})`);
    close(fisherFCdf(1, 7, 7), 0.5, 1e-7, 'equal df: the median is 1');
    assert.equal(fisherFCdf(0, 3, 3), 0);
  });

  it('tells a paired scatter from an unpaired one, and not two alike', () => {
    // A config that stays paired with the baseline (sd 0.15) next to one that re-seeds it (sd 0.9).
    const [paired] = sets(1, 5, 0.6, 0.15, 4) as [number[]];
    const [unpaired] = sets(1, 5, 0.4, 0.9, 5) as [number[]];
    const p = varianceRatioP(
      noiseVariance(poolDifferences([paired])),
      4,
      noiseVariance(poolDifferences([unpaired])),
      4,
    );
    assert.ok(p < 0.05, `p ${p}`);
    // Alike scatters: a two-sided test rejects about 5 % of the time.
    let rejected = 0;
    const pairs = sets(400, 4, 0, 0.5, 6);
    for (let i = 0; i < pairs.length; i += 2) {
      const a = poolDifferences([pairs[i] as number[]]);
      const b = poolDifferences([pairs[i + 1] as number[]]);
      if (varianceRatioP(noiseVariance(a), a.df, noiseVariance(b), b.df) < 0.05) rejected += 1;
    }
    assert.ok(rejected >= 3 && rejected <= 20, `${rejected} of 200 alike pairs rejected`);
    assert.equal(varianceRatioP(0, 2, 1, 2), 1, 'no scatter: no test');
  });

  it("reads each gain's own noise where given", () => {
    const gains = [
      { mean: 0.6, n: 4 },
      { mean: 0.5, n: 3 },
    ];
    // With the pool's noise (0.6) both gains look like noise; a paired config's own (0.02) does not.
    const pooled = priorVariance(gains, 0.6, 0.0025);
    const own = priorVariance(
      gains.map((g) => ({ ...g, noise: 0.02 })),
      0.6,
      0.0025,
    );
    close(pooled, (0.36 + 0.25) / 2 - (0.6 / 4 + 0.6 / 3) / 2, 1e-12, 'pooled');
    close(own, (0.36 + 0.25) / 2 - (0.02 / 4 + 0.02 / 3) / 2, 1e-12, 'own');
    assert.equal(priorVariance([{ mean: 0, n: 3 }], 1, 0.01), 0.01, 'floored');
  });
});
