/** Reads model specs from the models folder: models/<name>.json, validated. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from './core/errors';
import { parseModelSpec, type ModelSpec } from './core/model-spec';

export class UnknownModelError extends InvalidInputError {}

export async function readModelSpec(modelsDir: string, name: string): Promise<ModelSpec> {
  const file = path.join(modelsDir, `${name}.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UnknownModelError(`model: no model spec named "${name}" (looked for ${file})`, ['model']);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`model spec ${file} is not valid JSON: ${(err as Error).message}`, [
      '(root)',
    ]);
  }
  const spec = parseModelSpec(json);
  if (spec.name !== name) {
    throw new InvalidInputError(
      `model spec ${file}: name: expected "${name}" (the file's name), got "${spec.name}"`,
      ['name'],
    );
  }
  return spec;
}
