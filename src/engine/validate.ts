/**
 * The gate between proposals and trainers: every proposed change is checked against the ModelSpec.
 * What can be repaired is (a value clamped into range, an integer rounded, "true" read as true, a
 * knob's case fixed); what cannot is dropped and said. Nothing that fails the spec gets through.
 *
 *   repairChanges(spec, [{ knob: 'LR', value: 5 }]) // → { delta: { lr: 0.3 }, notes: ['lr: 5 clamped to 0.3'] }
 */
import {
  configProblems,
  hasKnob,
  type Config,
  type Knob,
  type KnobValue,
  type ModelSpec,
} from '../core/model-spec';
import { BASELINE_ID, hypothesisId, withoutBaselineValues } from '../core/planner';
import type { Hypothesis } from '../core/types';

export interface ProposedChange {
  knob: string;
  value: unknown;
}

export interface Repaired {
  delta: Config;
  /** What was repaired or dropped, in words, for the rationale and the logs. */
  notes: string[];
}

const normalizeName = (name: string) =>
  name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');

function coerce(name: string, knob: Knob, raw: unknown): { value?: KnobValue; note?: string } {
  const show = JSON.stringify(raw) ?? String(raw);
  switch (knob.type) {
    case 'int':
    case 'float':
    case 'logfloat': {
      const n =
        typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return { note: `${name}: dropped ${show} (expected a number)` };
      let v = knob.type === 'int' ? Math.round(n) : n;
      const notes: string[] = [];
      if (v !== n) notes.push(`rounded to ${v}`);
      if (v < knob.min || v > knob.max) {
        v = Math.min(knob.max, Math.max(knob.min, v));
        notes.push(`clamped to ${v} (allowed ${knob.min}..${knob.max})`);
      }
      if (typeof raw === 'string') notes.push('read as a number');
      return { value: v, ...(notes.length ? { note: `${name}: ${show} ${notes.join(', ')}` } : {}) };
    }
    case 'categorical': {
      const exact = knob.choices.find((c) => c === raw);
      if (exact !== undefined) return { value: exact };
      const loose = knob.choices.find((c) => String(c).toLowerCase() === String(raw).trim().toLowerCase());
      if (loose !== undefined)
        return { value: loose, note: `${name}: ${show} read as ${JSON.stringify(loose)}` };
      return {
        note: `${name}: dropped ${show} (expected one of ${knob.choices.map((c) => JSON.stringify(c)).join(', ')})`,
      };
    }
    case 'bool':
      if (typeof raw === 'boolean') return { value: raw };
      if (raw === 'true' || raw === 'false')
        return { value: raw === 'true', note: `${name}: ${show} read as ${raw}` };
      return { note: `${name}: dropped ${show} (expected true or false)` };
  }
}

/** Repairs what it can of `changes` against `spec`; knobs in `frozen` are never changed. */
export function repairChanges(
  spec: ModelSpec,
  changes: readonly ProposedChange[],
  frozen: readonly string[] = [],
): Repaired {
  const byNormalName = new Map(Object.keys(spec.knobs).map((k) => [normalizeName(k), k]));
  const delta: Config = {};
  const notes: string[] = [];
  for (const change of changes) {
    const name = typeof change.knob === 'string' ? change.knob : '';
    const knobName = hasKnob(spec, name) ? name : byNormalName.get(normalizeName(name));
    if (!knobName) {
      notes.push(`${name.slice(0, 64) || '(no name)'}: dropped (not a knob of ${spec.name})`);
      continue;
    }
    if (frozen.includes(knobName)) {
      notes.push(`${knobName}: dropped (an engineer excluded this knob)`);
      continue;
    }
    const { value, note } = coerce(knobName, spec.knobs[knobName] as Knob, change.value);
    if (note) notes.push(note);
    if (value !== undefined) delta[knobName] = value;
  }
  const clean = withoutBaselineValues(spec, delta);
  // The last line of defence: nothing that the spec refuses leaves this function.
  if (configProblems(spec, clean).length)
    return { delta: {}, notes: [...notes, 'dropped: still invalid after repair'] };
  return { delta: clean, notes };
}

/**
 * Picks up to `count` hypotheses, new ones only (not in `exclude`, not repeated), preferring ones
 * that change a set of knobs no earlier pick changed, so that the slate is diverse before it is deep.
 */
export function pickDiverse(
  candidates: readonly Hypothesis[],
  count: number,
  exclude: ReadonlySet<string>,
): Hypothesis[] {
  const fresh: Hypothesis[] = [];
  const ids = new Set(exclude);
  for (const h of candidates) {
    const id = hypothesisId(h.delta);
    if (id === BASELINE_ID || ids.has(id)) continue;
    ids.add(id);
    fresh.push({ ...h, id });
  }
  const picked: Hypothesis[] = [];
  const usedKnobSets = new Set<string>();
  const usedKnobs = new Map<string, number>();
  const signature = (h: Hypothesis) => Object.keys(h.delta).sort().join(',');
  // First pass: new knob sets only; second: whatever is left, in order.
  for (const h of fresh) {
    if (picked.length >= count) break;
    const sig = signature(h);
    const crowded = Object.keys(h.delta).every((k) => (usedKnobs.get(k) ?? 0) >= 2);
    if (usedKnobSets.has(sig) || crowded) continue;
    picked.push(h);
    usedKnobSets.add(sig);
    for (const k of Object.keys(h.delta)) usedKnobs.set(k, (usedKnobs.get(k) ?? 0) + 1);
  }
  for (const h of fresh) {
    if (picked.length >= count) break;
    if (!picked.includes(h)) picked.push(h);
  }
  return picked;
}

/** "lr 0.01 → 0.003, optimizer adam → adagrad": a delta in words. */
export function describeDelta(spec: ModelSpec, delta: Config): string {
  return Object.keys(delta)
    .sort()
    .map((k) => `${k} ${String(spec.knobs[k]?.baseline)} → ${String(delta[k])}`)
    .join(', ');
}
