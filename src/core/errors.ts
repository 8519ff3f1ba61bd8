/**
 * Turns zod issues into one readable line per field, so that every refusal names the field and
 * what is allowed. Sandbox-safe: imported by workflows.
 *
 *   formatIssues('campaign input', result.error.issues)
 *   // "campaign input is invalid: budget.experiments: expected an integer >= 2 (got 1)"
 */
import type { z } from 'zod';

export function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

export function formatIssues(what: string, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const base = issue.path.length ? `${fieldPath(issue.path)}.` : '';
      return issue.keys.map((k) => `${base}${k}: unknown field (remove it)`).join('; ');
    }
    return `${fieldPath(issue.path)}: ${issue.message}`;
  });
  return `${what} is invalid: ${lines.join('; ')}`;
}

/** The error type for refused input; `fields` lists the offending field paths. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  constructor(
    message: string,
    readonly fields: string[],
  ) {
    super(message);
  }
}

/** Deepest nesting `parseOrThrow` accepts: far deeper input would overflow the stack inside the schema. */
export const MAX_INPUT_DEPTH = 64;

/**
 * The first path in `value` that is nested more than `max` levels deep or that holds an own
 * `__proto__` key (JSON.parse makes one; the schemas would drop it or set a prototype with it, not
 * refuse it), found without recursion; undefined when there is none.
 */
export function shapeProblem(
  value: unknown,
  max: number,
): { path: (string | number)[]; problem: 'too deep' | 'prototype key' } | undefined {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop() as { v: unknown; path: (string | number)[] };
    if (v === null || typeof v !== 'object') continue;
    if (path.length >= max) return { path, problem: 'too deep' };
    if (Object.prototype.hasOwnProperty.call(v, '__proto__'))
      return { path: [...path, '__proto__'], problem: 'prototype key' };
    for (const [k, child] of Object.entries(v))
      stack.push({ v: child, path: [...path, Array.isArray(v) ? Number(k) : k] });
  }
  return undefined;
}

/** Throws InvalidInputError, naming the field, when `value` is nested too deep or holds a `__proto__` key. */
export function refuseBadShape(value: unknown, what: string, maxDepth = MAX_INPUT_DEPTH): void {
  const shape = shapeProblem(value, maxDepth);
  if (!shape) return;
  // The first two levels name the field; the rest of a deep path is the garbage itself.
  const field = fieldPath(shape.problem === 'too deep' ? shape.path.slice(0, 2) : shape.path);
  const why =
    shape.problem === 'too deep'
      ? `nested more than ${maxDepth} levels deep`
      : 'a prototype key is not a field (remove it)';
  throw new InvalidInputError(`${what} is invalid: ${field}: ${why}`, [field]);
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  refuseBadShape(value, what);
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = result.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys' ? i.keys.map((k) => fieldPath([...i.path, k])) : [fieldPath(i.path)],
  );
  throw new InvalidInputError(formatIssues(what, result.error.issues), fields);
}
