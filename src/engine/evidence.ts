/**
 * The evidence a campaign starts from (the design's "dual source"): history — earlier campaigns'
 * observations as a fading prior for the planner, their answers to race at once (transfer), the
 * noise they measured — and research — technique cards whose suggestions fit this spec, by knob
 * name or by role — plus the LLM's picks when one is configured. Every hypothesis passes the spec.
 *
 *   const { evidence } = await gatherEvidence({ history, knowledge }, { spec, campaignId, ... });
 */
import type { Evidence } from '../core/campaign/state';
import {
  baselineConfig,
  hasKnob,
  KNOB_ROLES,
  knobProblem,
  knobsWithRole,
  type Config,
  type KnobRole,
  type KnobValue,
  type ModelSpec,
} from '../core/model-spec';
import { hypothesisId, SearchSpace } from '../core/search/space';
import type { HypothesisSource } from '../core/types';
import { toObservations } from './history';
import type { RetrievedCard } from './knowledge';
import type { HistorySource, KnowledgeIndex } from './sources';
import { describeDelta } from './validate';

export interface EvidenceRequest {
  campaignId: string;
  spec: ModelSpec;
  highFidelity: number;
  excludeKnobs: string[];
  feedback: string[];
  /** How many LLM hypotheses to ask for. */
  count: number;
}

export interface EvidenceDeps {
  history: HistorySource;
  knowledge: KnowledgeIndex;
  /** The LLM's picks (already through the gate), when an LLM is configured. */
  llm?: (req: EvidenceRequest, context: { cards: RetrievedCard[] }) => Promise<Evidence['hypotheses']>;
}

const clean = (text: string, max: number) =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ').slice(0, max);

/** A relative change of a numeric knob: "×0.3", "x2", "*0.5", "+1", "-2". */
const RELATIVE = /^\s*([×x*+-])\s*(\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/i;

/**
 * A card's suggestion applied to `spec`: keys are knob names (used only where the spec has the knob)
 * or `role:<role>` (every knob with that role; a relative value such as "×0.3" scales its baseline).
 * Undefined when it does not apply whole: a suggestion is never half-applied.
 */
export function applySuggestion(
  spec: ModelSpec,
  suggestion: Record<string, string | number | boolean>,
  frozen: readonly string[] = [],
): Config | undefined {
  const base = baselineConfig(spec);
  const delta: Config = {};
  for (const [key, raw] of Object.entries(suggestion)) {
    const targets: string[] = key.startsWith('role:')
      ? KNOB_ROLES.includes(key.slice(5) as KnobRole)
        ? knobsWithRole(spec, key.slice(5) as KnobRole)
        : []
      : hasKnob(spec, key)
        ? [key]
        : [];
    if (!targets.length) return undefined;
    for (const name of targets) {
      if (frozen.includes(name)) return undefined;
      const knob = spec.knobs[name];
      if (!knob) return undefined;
      let value: KnobValue = raw;
      const rel = typeof raw === 'string' ? RELATIVE.exec(raw) : null;
      if (rel) {
        if (knob.type !== 'int' && knob.type !== 'float' && knob.type !== 'logfloat') return undefined;
        const b = base[name] as number;
        const n = Number(rel[2]);
        const op = (rel[1] as string).toLowerCase();
        let v = op === '+' ? b + n : op === '-' ? b - n : b * n;
        v = Math.min(
          knob.max,
          Math.max(knob.min, knob.type === 'int' ? Math.round(v) : Number(v.toPrecision(4))),
        );
        value = v;
      }
      if (knobProblem(knob, value)) return undefined;
      delta[name] = value;
    }
  }
  return delta;
}

function researchQuery(spec: ModelSpec, feedback: readonly string[]): string {
  return [
    spec.description ?? '',
    spec.metric.primary,
    'ranking click ctr',
    ...Object.entries(spec.knobs).flatMap(([k, v]) => [
      k.replace(/_/g, ' '),
      v.role?.replace(/_/g, ' ') ?? '',
      v.description ?? '',
    ]),
    ...feedback,
  ].join(' ');
}

export async function gatherEvidence(
  deps: EvidenceDeps,
  req: EvidenceRequest,
): Promise<{ evidence: Evidence; llmAvailable: boolean }> {
  const { spec } = req;
  const space = new SearchSpace(spec, req.excludeKnobs);
  const touchesFrozen = (d: Config) => Object.keys(d).some((k) => req.excludeKnobs.includes(k));
  const hypotheses: Evidence['hypotheses'] = [];
  const seen = new Set<string>([hypothesisId({})]);
  const add = (delta: Config, source: HypothesisSource, rationale: string, entry: 'bottom' | 'top') => {
    const effective = space.delta(delta);
    const id = hypothesisId(effective);
    if (seen.has(id) || touchesFrozen(effective)) return false;
    seen.add(id);
    hypotheses.push({ delta: effective, source, rationale, entry });
    return true;
  };
  const notes: string[] = [];

  // History: earlier answers race at once (transfer); every measurement is a fading prior.
  const history = await deps.history.load(spec, {
    campaignId: req.campaignId,
    highFidelity: req.highFidelity,
  });
  const prior = toObservations(
    history.measurements.filter((m) => m.relation !== 'this'),
    req.highFidelity,
  );
  let transferred = 0;
  for (const a of await deps.history.answers(spec, 5)) {
    if (transferred >= 2 || !Object.keys(a.delta).length) continue;
    if (
      add(
        a.delta,
        'history',
        `history: campaign ${a.campaignId} answered ${describeDelta(spec, a.delta)} (${a.gainPct.toFixed(2)}%${a.confirmed ? ', confirmed' : ', not confirmed'}); race it here`,
        'top',
      )
    )
      transferred += 1;
  }
  const similar = history.measurements
    .filter((m) => m.relation === 'similar' && m.gainPct > 0)
    .sort((a, b) => b.fidelity - a.fidelity || b.gainPct - a.gainPct)
    .slice(0, 2);
  for (const m of similar)
    add(
      m.delta,
      'history',
      `history: ${describeDelta(spec, m.delta)} gained ${m.gainPct.toFixed(2)}% on the similar model ${m.model}`,
      'bottom',
    );
  const noise = await deps.history.noise(spec);
  if (prior.length)
    notes.push(`${prior.length} observations from earlier campaigns feed the planner as a fading prior`);
  if (noise)
    notes.push(
      `noise of paired differences from earlier campaigns: ${Math.sqrt(noise.ss / noise.df).toFixed(3)} % (${noise.df} df)`,
    );

  // Research: cards whose suggestions fit this spec, by knob name or by role, round-robin over cards.
  const cards = await deps.knowledge.search(researchQuery(spec, req.feedback), 8);
  let fromResearch = 0;
  const researchCap = Math.max(2, Math.ceil(req.count / 2));
  for (let i = 0; i < 4 && fromResearch < researchCap; i++) {
    for (const card of cards) {
      const suggestion = card.suggests[i];
      if (!suggestion || fromResearch >= researchCap) continue;
      const delta = applySuggestion(spec, suggestion, req.excludeKnobs);
      if (!delta || !Object.keys(space.delta(delta)).length) continue;
      if (
        add(
          delta,
          'research',
          `research card ${card.id} (${clean(card.title, 120)}): ${clean(card.effect, 400)} [${clean(card.citation, 300)}]`,
          'bottom',
        )
      )
        fromResearch += 1;
    }
  }

  // The LLM, when one is configured: its picks passed the gate already; duplicates are dropped here.
  let llmAvailable = false;
  if (deps.llm) {
    llmAvailable = true;
    try {
      for (const h of await deps.llm(req, { cards })) add(h.delta, 'llm', h.rationale, 'bottom');
    } catch (err) {
      notes.push(`LLM gave no hypotheses: ${clean((err as Error).message, 300)}`);
    }
  }
  return { evidence: { prior, hypotheses, ...(noise ? { noise } : {}), notes }, llmAvailable };
}
