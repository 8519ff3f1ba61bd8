/**
 * The Kubernetes adapter against a local Kubernetes API server (test/helpers/fake-kubernetes.ts) over
 * TLS, whose kubelet runs each Job's pod as a real process: the real PyTorch trainer for tiny-ctr, a
 * sleeping Python for the time limit. The adapter is made by the worker's registry from a kubeconfig
 * file that the test writes, exactly as `rea worker` would make it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import YAML from 'yaml';
import {
  trainingJob,
  type ClusterAdapter,
  type JobStatus,
  type TrainingJob,
} from '../../src/cluster/adapter';
import {
  jobManifest,
  jobName,
  KubernetesAdapter,
  type KubernetesSettings,
} from '../../src/cluster/kubernetes';
import { resolveConnection } from '../../src/cluster/kubeconfig';
import { createClusters, type Clusters } from '../../src/cluster/registry';
import { loadConfig } from '../../src/config';
import { baselineConfig, parseModelSpec, type ModelSpec } from '../../src/core/model-spec';
import { FakeKubernetes } from '../helpers/fake-kubernetes';
import { FIXTURE_MODELS, waitFor } from '../helpers/stack';

const TOKEN = 'kube-token-5f2b9c1e-do-not-log';
const NAMESPACE = 'ml-training';
const config = loadConfig();
const dir = mkdtempSync(path.join(os.tmpdir(), 'rea-k8s-test-'));

/** A self-signed certificate for 127.0.0.1, so that the adapter really verifies the server via the kubeconfig's CA. */
function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const keyFile = path.join(dir, 'server.key');
  const certFile = path.join(dir, 'server.crt');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' }); // prettier-ignore
  return { key: readFileSync(keyFile), cert: readFileSync(certFile) };
}

function writeKubeconfig(server: string, ca: Buffer, token: string, name: string): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'fake',
      clusters: [{ name: 'fake', cluster: { server, 'certificate-authority-data': ca.toString('base64') } }],
      users: [{ name: 'rea', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'rea', namespace: NAMESPACE } }],
    }),
  );
  return file;
}

const logLines: string[] = [];
const log = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  }),
);

let fake: FakeKubernetes;
let clusters: Clusters;
let k8s: ClusterAdapter;
let kubeconfig: string;
let ca: Buffer;
let spec: ModelSpec;
let settings: KubernetesSettings;

function job(experimentId: string, overrides: Partial<TrainingJob> = {}): TrainingJob {
  const base = trainingJob(spec, {
    experimentId,
    campaignId: 'k8s-test-campaign',
    config: baselineConfig(spec),
    fidelity: spec.fidelity.low,
    seed: 1,
  });
  return { ...base, ...overrides };
}

/** A trainer that reports one progress line and sleeps: for progress, the time limit and cancellation. */
function sleeper(experimentId: string, timeLimitSec: number): TrainingJob {
  return job(experimentId, {
    trainer: {
      argv: [
        '{python}',
        '-c',
        'import time; print(\'rea:progress {"step": 1, "steps": 10, "loss": 0.5, "examples_per_s": 100.0}\', flush=True); time.sleep(120)',
      ],
    },
    resources: { ...spec.resources, timeLimitSec },
  });
}

function finished(adapter: ClusterAdapter, experimentId: string, timeoutMs = 120_000) {
  return waitFor(
    `${experimentId} to finish`,
    async () => {
      const s = await adapter.status(experimentId);
      return s.state === 'finished' ? s.outcome : undefined;
    },
    timeoutMs,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Kubernetes adapter against a local API server that runs the pods', () => {
  before(async () => {
    const tls = selfSignedCert();
    ca = tls.cert;
    fake = await FakeKubernetes.start({
      token: TOKEN,
      tls,
      imageWorkdir: config.root,
      path: [path.dirname(config.REA_PYTHON)],
      namespaces: ['default', NAMESPACE],
      gracePeriodMs: 500,
    });
    kubeconfig = writeKubeconfig(fake.url, ca, TOKEN, 'kubeconfig');
    const raw = JSON.parse(readFileSync(path.join(FIXTURE_MODELS, 'tiny-ctr.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    spec = parseModelSpec({
      ...raw,
      cluster: {
        adapter: 'kubernetes',
        image: 'ghcr.io/example/rea-trainer:1.0',
        serviceAccountName: 'rea-trainer',
        ttlSecondsAfterFinished: 7200,
      },
    });
    settings = spec.cluster as KubernetesSettings;
    clusters = createClusters(loadConfig({ REA_KUBECONFIG: kubeconfig }), log);
    k8s = clusters.for(spec.cluster);
  });

  after(async () => {
    await clusters?.close();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is what the registry makes for cluster.adapter "kubernetes", in the kubeconfig context namespace', () => {
    assert.ok(k8s instanceof KubernetesAdapter);
    assert.equal(k8s.namespace, NAMESPACE);
  });

  it('runs tiny-ctr as a Job and reads its metrics from the pod log', async () => {
    const id = 'k8s-test-campaign.e0001';
    const submitted = await k8s.submit(job(id));
    assert.deepEqual(submitted, { jobId: id, created: true });
    const outcome = await finished(k8s, id);
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
    if (outcome.status !== 'succeeded') return;
    assert.equal(typeof outcome.metrics.ne, 'number');
    assert.equal(typeof outcome.metrics.auc, 'number');
    assert.equal(outcome.metrics.steps, spec.fidelity.low);
    const logs = await k8s.logs(id);
    assert.ok(
      logs.some((l) => l.startsWith('rea:progress ')),
      logs.join('\n'),
    );
  });

  it('labels, annotates and sizes the Job as the spec asks, and makes the ConfigMap its dependent', () => {
    const id = 'k8s-test-campaign.e0001';
    const name = jobName(id);
    const created = fake.jobs.get(`${NAMESPACE}/${name}`);
    assert.ok(created, `Job ${name} exists`);
    assert.match(name, /^k8s-test-campaign-e0001-[0-9a-f]{10}$/);
    assert.deepEqual(created.metadata.labels, {
      'app.kubernetes.io/managed-by': 'rea',
      'rea.dev/campaign': 'k8s-test-campaign',
      'rea.dev/experiment': `k8s-test-campaign.e0001`,
    });
    assert.equal(created.metadata.annotations?.['rea.dev/experiment-id'], id);
    assert.equal(created.spec.backoffLimit, 0);
    assert.equal(created.spec.activeDeadlineSeconds, spec.resources.timeLimitSec);
    assert.equal(created.spec.ttlSecondsAfterFinished, 7200);
    const pod = created.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.serviceAccountName, 'rea-trainer');
    const container = pod.containers[0];
    assert.equal(container?.image, 'ghcr.io/example/rea-trainer:1.0');
    assert.deepEqual(container?.command, [
      'python',
      'trainers/ctr/train.py',
      '--config',
      '/etc/rea/config.json',
      '--metrics',
      '/var/rea/output/metrics.json',
    ]);
    const quantities = { cpu: '1', memory: '2048Mi', 'nvidia.com/gpu': '1' };
    assert.deepEqual(container?.resources, { requests: quantities, limits: quantities });

    const cm = fake.configMaps.get(`${NAMESPACE}/${name}-config`);
    assert.ok(cm, 'the ConfigMap exists');
    assert.deepEqual(
      cm.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
      [['Job', name, created.metadata.uid]],
    );
    assert.equal(
      (JSON.parse(cm.data?.['config.json'] ?? '{}') as { steps?: number }).steps,
      spec.fidelity.low,
    );
  });

  it('reports a bad config as bad_config, with the trainer message naming the key', async () => {
    const id = 'k8s-test-campaign.e0002';
    const bad = job(id);
    await k8s.submit({ ...bad, config: { ...bad.config, learning_rate: 0.1 } });
    const outcome = await finished(k8s, id);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'bad_config', JSON.stringify(outcome));
    assert.match(outcome.status === 'failed' ? outcome.message : '', /learning_rate/);
  });

  it('submits once per experiment: a second submit finds the Job', async () => {
    const id = 'k8s-test-campaign.e0003';
    const jobPosts = (status: number) =>
      fake.requests.filter((r) => r.verb === 'POST' && r.path.endsWith('/jobs') && r.status === status)
        .length;
    const [created, conflicts] = [jobPosts(201), jobPosts(409)];
    assert.equal((await k8s.submit(job(id))).created, true);
    assert.deepEqual(await k8s.submit(job(id)), { jobId: id, created: false });
    assert.deepEqual([jobPosts(201) - created, jobPosts(409) - conflicts], [1, 1]);
    assert.equal(fake.podsOfJob(NAMESPACE, jobName(id)).length, 1, 'one pod');
    const outcome = await finished(k8s, id);
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
  });

  it('completes the Job and ConfigMap pair when a worker died between creating the two', async () => {
    const id = 'k8s-test-campaign.e0004';
    // The first submit's Job made it to the API server; its ConfigMap did not.
    const res = await fetchAsRea(
      'POST',
      `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`,
      jobManifest(job(id), settings, NAMESPACE),
    );
    assert.equal(res.status, 201);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await k8s.status(id)).state, 'queued', 'the pod waits for its config');
    assert.deepEqual(await k8s.submit(job(id)), { jobId: id, created: false });
    const outcome = await finished(k8s, id);
    assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome));
  });

  it('cancels a running Job: the process is gone and status says cancelled, also to a restarted worker', async () => {
    const id = 'k8s-test-campaign.e0005';
    await k8s.submit(sleeper(id, 300));
    const progress = await waitFor('progress from the running trainer', async () => {
      const s = await k8s.status(id);
      return s.state === 'running' ? s.progress : undefined;
    });
    assert.deepEqual(progress, { step: 1, steps: 10, loss: 0.5, examplesPerSec: 100 });
    const pids = fake.processesOfJob(NAMESPACE, jobName(id));
    assert.equal(pids.length, 1);
    await k8s.cancel(id);
    await waitFor(
      'the trainer process to end',
      () => Promise.resolve(pids.every((p) => !isAlive(p)) ? true : undefined),
      10_000,
    );
    assert.equal(fake.jobs.has(`${NAMESPACE}/${jobName(id)}`), false, 'the Job is deleted');
    const status = await k8s.status(id);
    assert.equal(
      status.state === 'finished' && status.outcome.status === 'failed' && status.outcome.failureClass,
      'cancelled',
    );

    const restarted = new KubernetesAdapter(settings, { connection: resolveConnection({ kubeconfig }), log });
    try {
      assert.deepEqual(await restarted.status(id), status);
      assert.deepEqual(await restarted.submit(sleeper(id, 300)), { jobId: id, created: false });
      assert.equal(
        fake.jobs.has(`${NAMESPACE}/${jobName(id)}`),
        false,
        'a late submit does not start it again',
      );
    } finally {
      await restarted.close();
    }
  });

  it('reports a Job that runs past its time limit as a timeout, and its process is killed', async () => {
    const id = 'k8s-test-campaign.e0006';
    await k8s.submit(sleeper(id, 2));
    await waitFor('the trainer to run', async () =>
      (await k8s.status(id)).state === 'running' ? true : undefined,
    );
    const pids = fake.processesOfJob(NAMESPACE, jobName(id));
    assert.equal(pids.length, 1);
    const outcome = await finished(k8s, id, 30_000);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'timeout', JSON.stringify(outcome));
    assert.match(outcome.status === 'failed' ? outcome.message : '', /time limit of 2s/);
    await waitFor(
      'the trainer process to end',
      () => Promise.resolve(pids.every((p) => !isAlive(p)) ? true : undefined),
      10_000,
    );
  });

  it('reports an evicted pod as lost', async () => {
    const id = 'k8s-test-campaign.e0007';
    await k8s.submit(sleeper(id, 300));
    await waitFor('the trainer to run', async () =>
      (await k8s.status(id)).state === 'running' ? true : undefined,
    );
    fake.evict(NAMESPACE, jobName(id));
    const outcome = await finished(k8s, id, 30_000);
    assert.equal(outcome.status === 'failed' && outcome.failureClass, 'lost', JSON.stringify(outcome));
    assert.match(
      outcome.status === 'failed' ? outcome.message : '',
      /evicted or preempted .*TerminationByKubelet/,
    );
  });

  it('rides out a burst of 503s from the API server', async () => {
    const id = 'k8s-test-campaign.e0008';
    fake.failNext(2, 503);
    assert.equal((await k8s.submit(sleeper(id, 300))).created, true);
    await k8s.cancel(id);
  });

  it('refuses a Job name that another experiment owns, naming both', async () => {
    const id = 'k8s-test-campaign.e0009';
    const other = { ...jobManifest(job('someone-else'), settings, NAMESPACE) } as {
      metadata: { name: string };
    };
    other.metadata.name = jobName(id);
    assert.equal(
      (await fetchAsRea('POST', `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, other)).status,
      201,
    );
    await assert.rejects(
      k8s.submit(job(id)),
      /belongs to experiment "someone-else", not to experiment "k8s-test-campaign\.e0009"/,
    );
    await fetchAsRea(
      'DELETE',
      `/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${jobName(id)}?propagationPolicy=Background`,
    );
  });

  it('says which call failed and why when the token is wrong, without the token', async () => {
    const wrong = 'wrong-token-0000';
    const file = writeKubeconfig(fake.url, ca, wrong, 'kubeconfig-wrong');
    const adapter = new KubernetesAdapter(settings, {
      connection: resolveConnection({ kubeconfig: file }),
      log,
    });
    try {
      await assert.rejects(adapter.status('k8s-test-campaign.e0001'), (err: Error) => {
        assert.match(
          err.message,
          /GET \/apis\/batch\/v1\/namespaces\/ml-training\/jobs\/\S+ failed: 401 Unauthorized/,
        );
        assert.match(err.message, /REA_KUBECONFIG=/);
        assert.ok(!err.message.includes(wrong));
        return true;
      });
    } finally {
      await adapter.close();
    }
  });

  it('passes on the API server refusing an invalid Job (422), naming the call and the field', async () => {
    const invalid = job('k8s-test-campaign.e0010');
    await assert.rejects(
      k8s.submit({ ...invalid, resources: { ...invalid.resources, timeLimitSec: 0 } }),
      /POST \/apis\/batch\/v1\/namespaces\/ml-training\/jobs failed: 422 Invalid: Job\.batch "k8s-test-campaign-e0010-[0-9a-f]+" is invalid: spec\.activeDeadlineSeconds/,
    );
  });

  it('reports a Job that never existed as missing, and its logs as empty', async () => {
    assert.deepEqual(await k8s.status('k8s-test-campaign.e9999'), { state: 'missing' } satisfies JobStatus);
    assert.deepEqual(await k8s.logs('k8s-test-campaign.e9999'), []);
  });

  it('never writes the token to its log', () => {
    assert.ok(logLines.length > 5, 'the adapter logged something');
    assert.ok(logLines.some((l) => l.includes('Kubernetes adapter ready')));
    for (const line of logLines) assert.ok(!line.includes(TOKEN), `token in log line: ${line}`);
  });
});

/** A raw API call with rea's token, for setting up states the adapter itself never makes. */
async function fetchAsRea(verb: string, apiPath: string, body?: unknown): Promise<{ status: number }> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(fake.url + apiPath),
      { method: verb, ca, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
