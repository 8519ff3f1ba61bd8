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

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = result.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys' ? i.keys.map((k) => fieldPath([...i.path, k])) : [fieldPath(i.path)],
  );
  throw new InvalidInputError(formatIssues(what, result.error.issues), fields);
}
