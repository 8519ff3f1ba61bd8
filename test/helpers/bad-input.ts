/**
 * The bad-input properties, in-process: fast-check generates bad campaign inputs, model specs,
 * update and signal payloads, trainer protocol lines and LLM answers from the shipped examples
 * (test/helpers/fuzz.ts), and each must be refused with an error that names the field, through
 * the same validators the CLI, the workflows and the worker use; valid variations must pass. The
 * unit test runs a short subset; the chaos suite runs ≥ 10,000.
 *
 *   const counts = checkBadInputs({ seed: 2025, runs: 100, goodRuns: 20 });
 *   // throws on the first input wrongly accepted or refused without naming its field (shrunk by fast-check)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as fc from 'fast-check';
import { loadConfig } from '../../src/config';
import { parseCampaignInput } from '../../src/core/campaign-input';
import { CampaignMachine, type CampaignEvent } from '../../src/core/campaign/machine';
import { initialState } from '../../src/core/campaign/state';
import { InvalidInputError, parseOrThrow } from '../../src/core/errors';
import { abortSchema, addHypothesisSchema, rejectPlanSchema, setBudgetSchema } from '../../src/core/messages';
import { configProblems, parseModelSpec, type ModelSpec } from '../../src/core/model-spec';
import { parseAnswer } from '../../src/engine/llm';
import { slateAnswerSchema, slateHypotheses } from '../../src/engine/llm-prompt';
import { parseLine } from '../../src/trainer/protocol';
import {
  badCampaignInputs,
  badLlmAnswers,
  badMessages,
  badModelSpecs,
  badProtocolLines,
  getAt,
  goodCampaignInput,
  goodLlmAnswer,
  goodModelSpec,
  goodProgressLine,
  jsonText,
  type BadAnswer,
  type BadCase,
  type BadMessage,
  type BadText,
  type JsonObject,
} from './fuzz';

const ROOT = loadConfig().root;

/** The valid examples the mutations start from: the example campaign and every shipped model spec. */
export function validExamples(): { campaign: JsonObject; specs: JsonObject[] } {
  const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as JsonObject;
  const models = path.join(ROOT, 'models');
  return {
    campaign: read(path.join(ROOT, 'examples', 'campaign.json')),
    specs: readdirSync(models)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => read(path.join(models, f))),
  };
}

/** Whether `message` names `field`: the field followed by what is wrong with it, or by a deeper path. */
export const names = (message: string, field: string): boolean =>
  [':', '.', '['].some((after) => message.includes(`${field}${after}`)) ||
  (field.startsWith('at most') && message.includes(field));

/** Why `run` did not refuse naming `field`, or undefined when it did. */
export function refusalProblem(run: () => unknown, field: string): string | undefined {
  try {
    run();
  } catch (err) {
    if (!(err instanceof InvalidInputError)) return `failed with ${String(err)}, not a refusal`;
    if (!names(err.message, field)) return `refused without naming ${field}: ${err.message.slice(0, 300)}`;
    if (!field.startsWith('at most') && !err.fields.some((f) => f === field || names(`${f}:`, field)))
      return `refused with fields ${err.fields.join(', ')}, not ${field}`;
    return undefined;
  }
  return `accepted, expected a refusal naming ${field}`;
}

/** The campaign's update validators (workflows/campaign-messages.ts) and abort signal parse, in-process. */
function messageValidator(spec: ModelSpec): (m: BadMessage) => string | undefined {
  const input = parseCampaignInput({ model: spec.name, budget: { experiments: 40 } });
  const machine = new CampaignMachine(
    initialState(input, [spec.fidelity.low, spec.fidelity.high]),
    spec,
    input,
  );
  const events: Record<BadMessage['message'], (raw: unknown) => CampaignEvent | undefined> = {
    rejectPlan: (raw) => ({ type: 'reject', ...parseOrThrow(rejectPlanSchema, raw, 'rejectPlan') }),
    setBudget: (raw) => ({ type: 'setBudget', budget: parseOrThrow(setBudgetSchema, raw, 'setBudget') }),
    addHypothesis: (raw) => ({
      type: 'addHypothesis',
      ...parseOrThrow(addHypothesisSchema, raw, 'addHypothesis'),
    }),
    // A signal cannot be refused: the workflow falls back to the default reason; the parse must still say why.
    abort: (raw) => void parseOrThrow(abortSchema, raw, 'abort'),
  };
  return (m) =>
    refusalProblem(() => {
      const event = events[m.message](m.value);
      const why = event && machine.refusal(event);
      if (why) throw new InvalidInputError(why, [m.field]);
    }, m.field);
}

function protocolProblem(c: BadText): string | undefined {
  const parsed = parseLine(c.text);
  if (parsed.kind !== 'log') return `taken as ${parsed.kind}`;
  if (!parsed.refused) return 'not refused';
  if (!names(parsed.refused, c.field))
    return `refused without naming ${c.field}: ${parsed.refused.slice(0, 300)}`;
  return undefined;
}

function llmProblem(spec: ModelSpec, c: BadAnswer): string | undefined {
  const parsed = parseAnswer(c.text, slateAnswerSchema);
  if (!c.gate) {
    if (parsed.ok) return 'accepted by the answer schema';
    if (!(c.field === 'malformed JSON' ? parsed.reason.includes(c.field) : names(parsed.reason, c.field)))
      return `refused without naming ${c.field}: ${parsed.reason.slice(0, 300)}`;
    return undefined;
  }
  if (!parsed.ok) return `the answer schema refused a well-formed answer: ${parsed.reason}`;
  const { hypotheses, dropped } = slateHypotheses(spec, parsed.value, [], []);
  for (const h of hypotheses) {
    const problems = configProblems(spec, h.delta);
    if (problems.length) return `a config passed the gate: ${problems.join('; ')}`;
  }
  const said = [...dropped.flatMap((d) => d.notes), ...hypotheses.map((h) => h.rationale)].join('\n');
  if (!said.includes(c.field)) return `the gate did not name ${c.field}: ${said.slice(0, 300)}`;
  return undefined;
}

/** Counts of the bad inputs tried, by target and by kind, and of the valid ones accepted. */
export interface BadInputCounts {
  byTarget: Map<string, number>;
  byKind: Map<string, number>;
  good: number;
  total: number;
}

export const TARGETS = [
  'campaign inputs',
  'model specs',
  'update and signal payloads',
  'trainer protocol lines',
  'LLM answers',
] as const;
type Target = (typeof TARGETS)[number];

/**
 * Runs `runs` bad inputs per target (and `goodRuns` valid ones) with fixed seeds; throws, with
 * fast-check's shrunk counterexample and its seed, on the first one handled wrongly.
 */
export function checkBadInputs(opts: { seed: number; runs: number; goodRuns: number }): BadInputCounts {
  const { campaign, specs: rawSpecs } = validExamples();
  const specs = rawSpecs.map((raw) => ({ raw, spec: parseModelSpec(raw) }));
  const counts: BadInputCounts = { byTarget: new Map(), byKind: new Map(), good: 0, total: 0 };
  const count = (target: Target, kind: string) => {
    counts.byTarget.set(target, (counts.byTarget.get(target) ?? 0) + 1);
    counts.byKind.set(`${target}: ${kind}`, (counts.byKind.get(`${target}: ${kind}`) ?? 0) + 1);
    counts.total++;
  };
  const oneOf = <T>(record: Record<string, fc.Arbitrary<T>>) => fc.oneof(...Object.values(record));
  /** One spec at a time; the generators are built once per spec. */
  const perSpec = <T>(make: (raw: JsonObject) => Record<string, fc.Arbitrary<T>>) => {
    const built = specs.map((s, i) => ({ i, arb: oneOf(make(s.raw)) }));
    return fc
      .integer({ min: 0, max: specs.length - 1 })
      .chain((i) => (built[i] as { arb: fc.Arbitrary<T> }).arb.map((c) => ({ i, c })));
  };
  const validators = specs.map((s) => messageValidator(s.spec));
  const params = (offset: number, numRuns: number) => ({
    seed: opts.seed + offset,
    numRuns,
    includeErrorInReport: true,
  });
  const fail = (target: string, c: BadCase | BadText, problem: string | undefined) => {
    if (problem === undefined) return;
    const shown = 'value' in c ? jsonText(c.value).slice(0, 200) : c.text.slice(0, 200);
    assert.fail(`${target}, ${c.kind}: ${problem}: ${shown}`);
  };

  fc.assert(
    fc.property(oneOf(badCampaignInputs(campaign)), (c) => {
      count('campaign inputs', c.kind);
      fail(
        'campaign input',
        c,
        refusalProblem(() => parseCampaignInput(c.value), c.field),
      );
    }),
    params(1, opts.runs),
  );
  fc.assert(
    fc.property(perSpec(badModelSpecs), ({ c }) => {
      count('model specs', c.kind);
      fail(
        'model spec',
        c,
        refusalProblem(() => parseModelSpec(c.value), c.field),
      );
    }),
    params(2, opts.runs),
  );
  fc.assert(
    fc.property(perSpec(badMessages), ({ i, c }) => {
      count('update and signal payloads', c.kind);
      fail('message', c, (validators[i] as (m: BadMessage) => string | undefined)(c));
    }),
    params(3, opts.runs),
  );
  fc.assert(
    fc.property(oneOf(badProtocolLines()), (c) => {
      count('trainer protocol lines', c.kind);
      fail('protocol line', c, protocolProblem(c));
    }),
    params(4, opts.runs),
  );
  fc.assert(
    fc.property(perSpec(badLlmAnswers), ({ i, c }) => {
      count('LLM answers', c.kind);
      fail('LLM answer', c, llmProblem((specs[i] as { spec: ModelSpec }).spec, c));
    }),
    params(5, opts.runs),
  );

  // The other direction: variations within the declared ranges pass, so that refusing everything fails.
  fc.assert(
    fc.property(goodCampaignInput(campaign), ({ value, set }) => {
      counts.good++;
      const parsed = parseCampaignInput(value) as unknown as JsonObject;
      for (const [p, v] of set) assert.deepEqual(getAt(parsed, p), v, p.join('.'));
    }),
    params(11, opts.goodRuns),
  );
  fc.assert(
    fc.property(
      fc
        .integer({ min: 0, max: specs.length - 1 })
        .chain((i) => goodModelSpec((specs[i] as { raw: JsonObject }).raw)),
      (value) => {
        counts.good++;
        parseModelSpec(value);
      },
    ),
    params(12, opts.goodRuns),
  );
  fc.assert(
    fc.property(goodProgressLine, ({ text, progress }) => {
      counts.good++;
      const parsed = parseLine(text);
      assert.deepEqual(parsed, {
        kind: 'progress',
        progress: {
          step: progress.step,
          steps: progress.steps,
          loss: progress.loss,
          examplesPerSec: progress.examples_per_s,
        },
      });
    }),
    params(13, opts.goodRuns),
  );
  fc.assert(
    fc.property(
      fc
        .integer({ min: 0, max: specs.length - 1 })
        .chain((i) => goodLlmAnswer((specs[i] as { raw: JsonObject }).raw).map((a) => ({ i, a }))),
      ({ i, a }) => {
        counts.good++;
        const spec = (specs[i] as { spec: ModelSpec }).spec;
        const parsed = parseAnswer(a.text, slateAnswerSchema);
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
        const { hypotheses } = slateHypotheses(spec, parsed.value, [], []);
        const last = new Map(a.changes.map((ch) => [ch.knob, ch.value]));
        const expected = Object.fromEntries([...last].filter(([k, v]) => spec.knobs[k]?.baseline !== v));
        assert.deepEqual(hypotheses[0]?.delta ?? {}, expected);
      },
    ),
    params(14, opts.goodRuns),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: specs.length - 1 }).chain((i) => {
        const spec = (specs[i] as { spec: ModelSpec }).spec;
        // Knobs that matter in the baseline config: a change to a knob inactive there is no change.
        const numeric = Object.entries(spec.knobs).filter(([, k]) => k.type === 'int' && !k.activeWhen);
        return fc.tuple(
          fc.constant(i),
          fc.integer({ min: 2, max: 100_000 }),
          fc.constantFrom(...numeric).chain(([name, k]) =>
            fc
              .integer({ min: k.type === 'int' ? k.min : 0, max: k.type === 'int' ? k.max : 0 })
              .filter((v) => v !== k.baseline)
              .map((v) => ({ [name]: v })),
          ),
        );
      }),
      ([i, experiments, delta]) => {
        counts.good++;
        const validate = validators[i] as (m: BadMessage) => string | undefined;
        const accepted = (m: BadMessage) => assert.match(validate(m) ?? '', /^accepted/, m.message);
        accepted({ message: 'setBudget', kind: 'good', value: { experiments }, field: 'experiments' });
        accepted({
          message: 'addHypothesis',
          kind: 'good',
          value: { delta, rationale: 'an idea' },
          field: 'delta',
        });
        accepted({ message: 'abort', kind: 'good', value: { reason: 'enough' }, field: 'reason' });
      },
    ),
    params(15, opts.goodRuns),
  );
  return counts;
}

/** The counts as lines for the test's output and the docs: totals by target, then by kind. */
export function describeCounts(counts: BadInputCounts): string[] {
  return [
    `${counts.total} bad inputs refused naming the field; ${counts.good} valid variations accepted`,
    ...TARGETS.map((t) => {
      const kinds = [...counts.byKind]
        .filter(([k]) => k.startsWith(`${t}: `))
        .sort()
        .map(([k, n]) => `${n}× ${k.slice(t.length + 2)}`);
      return `${t}: ${counts.byTarget.get(t) ?? 0} (${kinds.join(', ')})`;
    }),
  ];
}
