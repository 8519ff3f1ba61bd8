/** The worker's memory settings: the workflow cache sized by REA_WORKFLOW_CACHE_MB, and the shared modules. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config';
import { bundleInChildProcess } from '../../src/temporal/bundle';
import { CACHED_WORKFLOW_MB, workflowCacheSize } from '../../src/temporal/worker';

describe('workflow cache', () => {
  it('is sized by REA_WORKFLOW_CACHE_MB', () => {
    assert.equal(loadConfig({}).REA_WORKFLOW_CACHE_MB, 150);
    assert.equal(loadConfig({ REA_WORKFLOW_CACHE_MB: '512' }).REA_WORKFLOW_CACHE_MB, 512);
    assert.equal(workflowCacheSize(200), Math.floor(200 / CACHED_WORKFLOW_MB));
    assert.equal(workflowCacheSize(2 * CACHED_WORKFLOW_MB), 2);
    // Temporal's smallest cache is 2 workflows.
    assert.equal(workflowCacheSize(1), Math.max(2, Math.floor(1 / CACHED_WORKFLOW_MB)));
  });

  it('refuses a bad REA_WORKFLOW_CACHE_MB, naming it', () => {
    for (const bad of ['0', '-5', 'lots', '2000000'])
      assert.throws(
        () => loadConfig({ REA_WORKFLOW_CACHE_MB: bad }),
        (err: unknown) => err instanceof ConfigError && /REA_WORKFLOW_CACHE_MB/.test(err.message),
        bad,
      );
  });
});

describe('workflow bundle', () => {
  it('is built in a child process, with zod preloaded for every workflow to share', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rea-bundle-'));
    const file = await bundleInChildProcess(dir);
    assert.ok(existsSync(file));
    const code = readFileSync(file, 'utf8');
    assert.ok(code.includes('globalThis.__webpack_module_cache__'), 'a bundle for the reusable V8 context');
    const preload = /exports\.preloadModules = function preloadModules\(\) \{([^}]*)\}/.exec(code);
    assert.ok(preload, 'the entrypoint has a preload list');
    // webpack names modules by path: the preload loads workflows/shared-modules, which loads zod.
    assert.match(preload[1] as string, /workflows\/shared-modules\.js/);
    const at = code.indexOf('"./dist/workflows/shared-modules.js"\n');
    assert.ok(at >= 0, 'the shared-modules module is in the bundle');
    const body = code.slice(at, code.indexOf('/***/', at));
    assert.match(body, /__webpack_require__\([^)]*"\.\/node_modules\/zod\//);
  });
});
