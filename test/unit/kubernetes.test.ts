/** Kubernetes adapter pieces without a server: Job names, label values, kubeconfig reading, the Job manifest. */
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import type { TrainingJob } from '../../src/cluster/adapter';
import {
  inClusterConnection,
  KubernetesConfigError,
  parseKubeconfig,
  resolveConnection,
} from '../../src/cluster/kubeconfig';
import { jobManifest, jobName, labelValue, type KubernetesSettings } from '../../src/cluster/kubernetes';
import { parseModelSpec } from '../../src/core/model-spec';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

describe('Job names from experiment ids', () => {
  it('keeps an id that already is a DNS-1123 label', () => {
    assert.equal(jobName('exp-42'), 'exp-42');
    assert.equal(jobName('a'.repeat(63)), 'a'.repeat(63));
  });

  it('turns a campaign experiment id into a readable prefix plus a hash', () => {
    const name = jobName('nightly-synthetic-ctr-2026-11-26.e0007');
    assert.match(name, /^nightly-synthetic-ctr-2026-11-26-e0007-[0-9a-f]{10}$/);
  });

  it('fits ids of any length and alphabet into 63 lowercase characters', () => {
    for (const id of ['A'.repeat(200), 'Camp_1/baseline#0', '---x---', '.', 'ÜBER.e0001', 'a'.repeat(64)]) {
      const name = jobName(id);
      assert.match(name, DNS_LABEL, id);
      assert.ok(name.length <= 63, id);
      assert.equal(jobName(id), name, 'the same id always gives the same name');
    }
  });

  it('never gives two ids the same name because of case or punctuation', () => {
    const ids = ['Exp-1', 'exp-1', 'exp.1', 'exp_1', 'EXP_1'];
    assert.equal(new Set(ids.map(jobName)).size, ids.length);
  });

  it('leaves room for the ConfigMap suffix within 253 characters', () => {
    assert.ok(`${jobName('x'.repeat(500))}-config`.length <= 253);
  });
});

describe('label values', () => {
  it('keeps a valid value and hashes any other into one', () => {
    assert.equal(labelValue('campaign-7.e0001'), 'campaign-7.e0001');
    for (const text of ['a b', 'x'.repeat(64), '-edge-', 'ü', '']) {
      const value = labelValue(text);
      assert.match(value, /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, text);
      assert.ok(value.length <= 63, text);
    }
    assert.notEqual(labelValue('a b'), labelValue('a-b'));
  });
});

function kubeconfigFile(doc: unknown, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rea-kubeconfig-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  const file = path.join(dir, 'config');
  writeFileSync(file, typeof doc === 'string' ? doc : YAML.stringify(doc));
  return file;
}

interface KubeconfigDoc {
  'current-context': string;
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: Record<string, unknown> }[];
  [key: string]: unknown;
}

const twoContexts: KubeconfigDoc = {
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'prod',
  clusters: [
    { name: 'dev', cluster: { server: 'https://dev.example:6443' } },
    {
      name: 'prod',
      cluster: {
        server: 'https://k8s.example:6443/',
        'certificate-authority-data': Buffer.from('PROD CA').toString('base64'),
      },
    },
  ],
  users: [
    { name: 'trainer-bot', user: { token: 'tok-123' } },
    { name: 'cert-user', user: { 'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key' } },
  ],
  contexts: [
    { name: 'dev', context: { cluster: 'dev', user: 'cert-user' } },
    { name: 'prod', context: { cluster: 'prod', user: 'trainer-bot', namespace: 'ml' } },
  ],
};

describe('kubeconfig reading', () => {
  it('uses the current context: its server, CA data, token and namespace', () => {
    const file = kubeconfigFile(twoContexts);
    const conn = parseKubeconfig(YAML.stringify(twoContexts), { file, source: 'test' });
    assert.equal(conn.server, 'https://k8s.example:6443');
    assert.equal(conn.ca?.toString(), 'PROD CA');
    assert.equal(conn.token?.(), 'tok-123');
    assert.equal(conn.namespace, 'ml');
    assert.equal(conn.cert, undefined);
  });

  it('reads client certificate files relative to the kubeconfig folder', () => {
    const file = kubeconfigFile(twoContexts, { 'pki/client.crt': 'CERT', 'pki/client.key': 'KEY' });
    const conn = parseKubeconfig(YAML.stringify(twoContexts), { file, source: 'test', context: 'dev' });
    assert.equal(conn.cert?.toString(), 'CERT');
    assert.equal(conn.key?.toString(), 'KEY');
    assert.equal(conn.token, undefined);
    assert.equal(conn.namespace, undefined);
  });

  it('reads a tokenFile when it is used', () => {
    const doc = structuredClone(twoContexts);
    doc.users[0] = { name: 'trainer-bot', user: { tokenFile: 'token' } };
    const file = kubeconfigFile(doc, { token: 'from-file\n' });
    assert.equal(resolveConnection({ kubeconfig: file, env: {} }).token?.(), 'from-file');
  });

  it('refuses exec credential plugins with a clear error', () => {
    const doc = structuredClone(twoContexts);
    doc.users[0] = { name: 'trainer-bot', user: { exec: { command: 'aws' } } };
    assert.throws(
      () => parseKubeconfig(YAML.stringify(doc), { file: '/k/config', source: 'test' }),
      (err: Error) =>
        err instanceof KubernetesConfigError &&
        /users\["trainer-bot"\]\.user\.exec .*not supported.*token/.test(err.message),
    );
  });

  it('names the missing context, cluster field or file', () => {
    const text = YAML.stringify({ ...twoContexts, 'current-context': 'staging' });
    assert.throws(
      () => parseKubeconfig(text, { file: '/k/config', source: 'test' }),
      /kubeconfig \/k\/config: no contexts entry named "staging" \(known: dev, prod\)/,
    );
    const noServer = structuredClone(twoContexts);
    noServer.clusters[1] = { name: 'prod', cluster: {} };
    assert.throws(
      () => parseKubeconfig(YAML.stringify(noServer), { file: '/k/config', source: 'test' }),
      /clusters\["prod"\]\.cluster\.server is not set/,
    );
    assert.throws(
      () => resolveConnection({ kubeconfig: '/nonexistent/kubeconfig', env: {} }),
      /REA_KUBECONFIG: cannot read kubeconfig \/nonexistent\/kubeconfig/,
    );
    assert.throws(() => parseKubeconfig(': : :', { file: '/k/config', source: 'test' }), /not valid YAML/);
  });

  it('prefers REA_KUBECONFIG over KUBECONFIG, and KUBECONFIG over in-cluster', () => {
    const a = kubeconfigFile(twoContexts);
    const b = kubeconfigFile(
      { ...twoContexts, 'current-context': 'dev' },
      { 'pki/client.crt': 'C', 'pki/client.key': 'K' },
    );
    const inCluster = { KUBERNETES_SERVICE_HOST: '10.0.0.1' };
    assert.equal(
      resolveConnection({ kubeconfig: a, env: { KUBECONFIG: b, ...inCluster } }).source,
      `REA_KUBECONFIG=${a}`,
    );
    assert.equal(
      resolveConnection({ env: { KUBECONFIG: `/missing${path.delimiter}${b}`, ...inCluster } }).source,
      `KUBECONFIG=${b}`,
    );
  });

  it('says what to set when there is no connection at all', () => {
    assert.throws(
      () => resolveConnection({ env: { HOME: mkdtempSync(path.join(os.tmpdir(), 'rea-home-')) } }),
      /set REA_KUBECONFIG \(or KUBECONFIG\)/,
    );
  });

  it('runs in a pod from the service account token, CA and namespace', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rea-sa-'));
    writeFileSync(path.join(dir, 'token'), 'sa-token');
    writeFileSync(path.join(dir, 'ca.crt'), 'CLUSTER CA');
    writeFileSync(path.join(dir, 'namespace'), 'training\n');
    const conn = inClusterConnection(
      { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      dir,
    );
    assert.equal(conn.server, 'https://10.96.0.1:443');
    assert.equal(conn.token?.(), 'sa-token');
    assert.equal(conn.ca?.toString(), 'CLUSTER CA');
    assert.equal(conn.namespace, 'training');
    assert.throws(
      () => inClusterConnection({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, path.join(dir, 'absent')),
      /in-cluster service account token: cannot read/,
    );
  });
});

const settings: KubernetesSettings = {
  adapter: 'kubernetes',
  image: 'registry.example/rea:1',
  python: '/app/.venv/bin/python',
  gpuResource: 'nvidia.com/gpu',
  ttlSecondsAfterFinished: 3600,
};

function trainingJob(overrides: Partial<TrainingJob> = {}): TrainingJob {
  return {
    experimentId: 'c1.e0001',
    campaignId: 'c1',
    model: 'tiny-ctr',
    trainer: { argv: ['{python}', 'train.py', '--config', '{config}', '--metrics', '{metrics}'] },
    config: { lr: 0.01 },
    resources: { gpus: 0, cpus: 2, memoryMb: 4096, timeLimitSec: 600 },
    primaryMetric: 'ne',
    cluster: settings,
    ...overrides,
  };
}

interface ManifestView {
  spec: {
    template: {
      spec: {
        containers: {
          command: string[];
          workingDir?: string;
          env: { name: string; value: string }[];
          resources: unknown;
        }[];
      };
    };
  };
}

describe('the Job manifest', () => {
  it('asks for no GPU resource when the spec needs no GPU', () => {
    const m = jobManifest(trainingJob(), settings, 'ml') as ManifestView;
    const quantities = { cpu: '2', memory: '4096Mi' };
    assert.deepEqual(m.spec.template.spec.containers[0]?.resources, {
      requests: quantities,
      limits: quantities,
    });
  });

  it('passes the argv literally: a $(VAR) in it is not expanded by the kubelet', () => {
    const m = jobManifest(
      trainingJob({
        trainer: { argv: ['{python}', '-c', 'print("$(HOME) costs $5")'], env: { NOTE: '$(PATH)' } },
      }),
      settings,
      'ml',
    ) as ManifestView;
    const container = m.spec.template.spec.containers[0];
    assert.deepEqual(container?.command, ['/app/.venv/bin/python', '-c', 'print("$$(HOME) costs $$5")']);
    assert.deepEqual(container?.env.find((e) => e.name === 'NOTE')?.value, '$$(PATH)');
  });

  it('sets workingDir only for an absolute trainer cwd', () => {
    const rel = jobManifest(
      trainingJob({ trainer: { argv: ['x'], cwd: '.' } }),
      settings,
      'ml',
    ) as ManifestView;
    assert.equal(rel.spec.template.spec.containers[0]?.workingDir, undefined);
    const abs = jobManifest(
      trainingJob({ trainer: { argv: ['x'], cwd: '/app' } }),
      settings,
      'ml',
    ) as ManifestView;
    assert.equal(abs.spec.template.spec.containers[0]?.workingDir, '/app');
  });
});

describe('kubernetes cluster settings in a model spec', () => {
  const base = {
    name: 'm',
    trainer: { argv: ['{python}', 'train.py'] },
    knobs: { lr: { type: 'float', min: 0, max: 1, baseline: 0.1 } },
    metric: { primary: 'ne', direction: 'minimize' },
    fidelity: { knob: 'steps', low: 1, high: 2 },
  };

  it('fills in python, the GPU resource and the TTL, and leaves the namespace to the connection', () => {
    const spec = parseModelSpec({ ...base, cluster: { adapter: 'kubernetes', image: 'rea:1' } });
    assert.deepEqual(spec.cluster, {
      adapter: 'kubernetes',
      image: 'rea:1',
      python: 'python',
      gpuResource: 'nvidia.com/gpu',
      ttlSecondsAfterFinished: 86400,
    });
  });

  it('refuses a TTL that could delete a Job before rea reads its outcome, naming the field', () => {
    assert.throws(
      () =>
        parseModelSpec({
          ...base,
          cluster: { adapter: 'kubernetes', image: 'rea:1', ttlSecondsAfterFinished: 0 },
        }),
      /cluster\.ttlSecondsAfterFinished: expected at least 3600/,
    );
  });
});
