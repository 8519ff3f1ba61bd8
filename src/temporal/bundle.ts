/**
 * The workflow bundle: how it is built, and where.
 *
 * Two things keep a worker's memory small (measured by `npm run bench -- --only hibernation`):
 *
 * - **Shared modules.** Temporal's reusable V8 context evaluates every module a workflow imports once
 *   per workflow, except the modules the bundle preloads, which all workflows share (deep-frozen).
 *   Zod is most of the bundle (≈ 1 MB of its 1.5 MB of code) and keeps no per-workflow state, so it
 *   is preloaded; rea's own modules build schemas at module scope that zod mutates lazily, so they
 *   stay per workflow (they are small).
 * - **Bundling in a child process.** Webpack leaves ≈ 115 MB in the process that runs it; `rea worker`
 *   bundles in a short-lived child process and loads the file it writes.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BundleOptions } from '@temporalio/worker';

/** The module that loads what every workflow in a worker shares (workflows/shared-modules.ts: zod). */
export function sharedWorkflowModules(): string[] {
  return [require.resolve('../../workflows/shared-modules')];
}

export function workflowsPath(): string {
  return require.resolve('../../workflows');
}

/** The options every bundle of rea's workflows is built with (worker, tests, bench). */
export function workflowBundleOptions(): Pick<BundleOptions, 'workflowsPath' | 'preloadModules'> {
  return { workflowsPath: workflowsPath(), preloadModules: sharedWorkflowModules() };
}

/**
 * Bundles the workflows in a child process into `dir` and returns the file's path. The child's
 * output (webpack's summary) is dropped unless it fails, when its last lines are in the error.
 */
export async function bundleInChildProcess(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `workflow-bundle-${process.pid}.js`);
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, out], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      output.push(d.toString());
      if (output.length > 200) output.splice(0, output.length - 200);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0)
    throw new Error(
      `bundling the workflows failed (exit ${code}): ${output.join('').trim().split('\n').slice(-15).join('\n')}`,
    );
  return out;
}

/** The child: bundles, writes the code next to its final name, then renames it into place. */
async function childMain(out: string): Promise<void> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const bundle = await bundleWorkflowCode({ ...workflowBundleOptions() });
  const tmp = `${out}.tmp`;
  writeFileSync(tmp, bundle.code);
  renameSync(tmp, out);
  // A sanity check that the file is what the worker will read.
  if (readFileSync(out).length !== Buffer.byteLength(bundle.code)) throw new Error(`short write of ${out}`);
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node bundle.js <output file>\n');
    process.exit(2);
  }
  childMain(out).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
