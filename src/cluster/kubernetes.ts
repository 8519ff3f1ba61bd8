/**
 * The Kubernetes adapter: each experiment is a batch/v1 Job (one pod, no retries) whose container
 * runs the trainer argv, with the trainer config in a ConfigMap owned by the Job. The outcome is read
 * back from the Job's conditions and the pod: the `rea:metrics` line of its log, or its exit code.
 *
 *   const k8s = new KubernetesAdapter(spec.cluster, { connection: resolveConnection(), log });
 *   await k8s.submit(trainingJob(spec, run)); // { jobId: run.experimentId, created: true }
 *   await k8s.status(run.experimentId);       // { state: 'running', progress: {...} }
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { ClusterSettings } from '../core/model-spec';
import type { FailureClass, Metrics } from '../core/types';
import type { Logger } from '../logging';
import { failureClassForExit, parseLine, type Progress } from '../trainer/protocol';
import { expandArgv } from '../trainer/run';
import type { ClusterAdapter, JobStatus, TrainingJob } from './adapter';
import type { KubernetesConnection } from './kubeconfig';

export type KubernetesSettings = Extract<ClusterSettings, { adapter: 'kubernetes' }>;

/** Where the ConfigMap with config.json is mounted, and the emptyDir the metrics file goes to. */
export const CONFIG_MOUNT = '/etc/rea';
export const OUTPUT_MOUNT = '/var/rea/output';
export const CONTAINER = 'trainer';

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  campaign: 'rea.dev/campaign',
  experiment: 'rea.dev/experiment',
  /** On a ConfigMap kept after its Job was cancelled: the durable record of the cancellation. */
  cancelled: 'rea.dev/cancelled',
} as const;
export const ANNOTATIONS = {
  experimentId: 'rea.dev/experiment-id',
  campaignId: 'rea.dev/campaign-id',
  model: 'rea.dev/model',
  primaryMetric: 'rea.dev/primary-metric',
  cancelledAt: 'rea.dev/cancelled-at',
  /** When a cancellation record may be deleted. */
  expiresAt: 'rea.dev/expires-at',
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const HASH_CHARS = 10;

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, HASH_CHARS);
}

/**
 * The Job name for an experiment id: the id itself when it is a DNS-1123 label (lowercase
 * alphanumerics and '-', at most 63), otherwise a readable lowercase prefix plus a hash of the exact
 * id, so that distinct ids never share a name by construction.
 *
 *   jobName('exp-42')               // 'exp-42'
 *   jobName('Camp_1/baseline#0')    // 'camp-1-baseline-0-<10 hex>'
 */
export function jobName(experimentId: string): string {
  if (DNS_LABEL.test(experimentId)) return experimentId;
  const readable = experimentId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63 - HASH_CHARS - 1)
    .replace(/-+$/, '');
  return `${readable || 'rea'}-${shortHash(experimentId)}`;
}

/**
 * A label value for any text: unchanged when it is already one (at most 63 of A-Z a-z 0-9 - _ .,
 * alphanumeric at both ends), else a readable prefix plus a hash. The exact text goes in an annotation.
 *
 *   labelValue('campaign-7')   // 'campaign-7'
 *   labelValue('a b')          // 'a-b-<10 hex>'
 */
export function labelValue(text: string): string {
  if (text.length <= 63 && LABEL_VALUE.test(text)) return text;
  const readable = text
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63 - HASH_CHARS - 1)
    .replace(/[^A-Za-z0-9]+$/, '');
  return readable ? `${readable}-${shortHash(text)}` : shortHash(text);
}

export function configMapName(name: string): string {
  return `${name}-config`;
}

/** Kubernetes expands $(VAR) in command, args and env values; $$ keeps a literal $. */
function literal(text: string): string {
  return text.replace(/\$/g, '$$$$');
}

interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
}
interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
export interface KubeJob {
  metadata: ObjectMeta;
  spec?: { activeDeadlineSeconds?: number };
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
  };
}
interface ContainerState {
  running?: { startedAt?: string };
  waiting?: { reason?: string; message?: string };
  terminated?: { exitCode: number; signal?: number; reason?: string; message?: string };
}
export interface KubePod {
  metadata: ObjectMeta;
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: Condition[];
    containerStatuses?: { name: string; state?: ContainerState; lastState?: ContainerState }[];
  };
}
export interface KubeConfigMap {
  metadata: ObjectMeta;
  data?: Record<string, string>;
}

function reaLabels(job: TrainingJob): Record<string, string> {
  return {
    [LABELS.managedBy]: 'rea',
    [LABELS.campaign]: labelValue(job.campaignId),
    [LABELS.experiment]: labelValue(job.experimentId),
  };
}

/**
 * The batch/v1 Job that runs `job`: one pod, never restarted (the campaign's runbook decides
 * retries), killed at the time limit, deleted `ttlSecondsAfterFinished` after it ends.
 *
 *   jobManifest(trainingJob(spec, run), spec.cluster, 'ml-training')
 */
export function jobManifest(job: TrainingJob, settings: KubernetesSettings, namespace: string): object {
  const name = jobName(job.experimentId);
  const labels = reaLabels(job);
  const command = expandArgv(job.trainer.argv, {
    '{python}': settings.python,
    '{config}': `${CONFIG_MOUNT}/config.json`,
    '{metrics}': `${OUTPUT_MOUNT}/metrics.json`,
  }).map(literal);
  const { gpus, cpus, memoryMb, timeLimitSec } = job.resources;
  const quantities: Record<string, string> = { cpu: String(cpus), memory: `${memoryMb}Mi` };
  if (gpus > 0) quantities[settings.gpuResource] = String(gpus);
  const env = [
    { name: 'PYTHONUNBUFFERED', value: '1' }, // progress lines reach the log as they are printed
    ...Object.entries(job.trainer.env ?? {}).map(([k, v]) => ({ name: k, value: literal(v) })),
  ];
  const cwd = job.trainer.cwd;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace,
      labels,
      annotations: {
        [ANNOTATIONS.experimentId]: job.experimentId,
        [ANNOTATIONS.campaignId]: job.campaignId,
        [ANNOTATIONS.model]: job.model,
        [ANNOTATIONS.primaryMetric]: job.primaryMetric,
      },
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: timeLimitSec,
      ttlSecondsAfterFinished: settings.ttlSecondsAfterFinished,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          ...(settings.serviceAccountName ? { serviceAccountName: settings.serviceAccountName } : {}),
          containers: [
            {
              name: CONTAINER,
              image: settings.image,
              command,
              // A relative cwd (like ".") means the image's WORKDIR: the repository root in rea's image.
              ...(cwd && cwd.startsWith('/') ? { workingDir: cwd } : {}),
              env,
              // Limits equal to requests: Guaranteed QoS, the last class the kubelet evicts.
              resources: { requests: quantities, limits: quantities },
              volumeMounts: [
                { name: 'config', mountPath: CONFIG_MOUNT, readOnly: true },
                { name: 'output', mountPath: OUTPUT_MOUNT },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: configMapName(name) } },
            { name: 'output', emptyDir: {} },
          ],
        },
      },
    },
  };
}

/** The ConfigMap with the trainer's config.json, owned by the Job so that it goes when the Job goes. */
export function configMapManifest(job: TrainingJob, namespace: string, ownerUid: string): KubeConfigMap {
  const name = jobName(job.experimentId);
  return {
    metadata: {
      name: configMapName(name),
      namespace,
      labels: reaLabels(job),
      annotations: { [ANNOTATIONS.experimentId]: job.experimentId },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: ownerUid }],
    },
    data: { 'config.json': JSON.stringify(job.config, null, 2) },
  };
}

export class KubernetesApiError extends Error {
  override readonly name = 'KubernetesApiError';
  constructor(
    readonly verb: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string,
    detail: string,
    hint = '',
  ) {
    super(`Kubernetes API ${verb} ${path} failed: ${status} ${reason}: ${detail}${hint ? `; ${hint}` : ''}`);
  }
}

/** Another experiment (or something that is not rea's) already owns the Job name. */
export class KubernetesNameClashError extends Error {
  override readonly name = 'KubernetesNameClashError';
}

const RETRIES = 4;
const REQUEST_TIMEOUT_MS = 30_000;
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const LOG_TAIL_LINES = 200;
const PROGRESS_TAIL_LINES = 20;
const LOG_LIMIT_BYTES = 1024 * 1024;
const MIN_CANCEL_RECORD_SEC = 86400;
const PRUNE_EVERY_MS = 10 * 60_000;

interface ApiResponse {
  status: number;
  retryAfterSec?: number;
  text: string;
}

/** A thin Kubernetes REST client: JSON in and out, bearer token or client certificate, retries. */
class KubeClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly conn: KubernetesConnection,
    private readonly log: Logger,
  ) {
    this.agent = conn.server.startsWith('https:')
      ? new https.Agent({
          keepAlive: true,
          ca: conn.ca,
          cert: conn.cert,
          key: conn.key,
          rejectUnauthorized: !conn.insecureSkipTlsVerify,
          servername: conn.tlsServerName,
        })
      : new http.Agent({ keepAlive: true });
  }

  /** JSON of a 2xx answer; KubernetesApiError otherwise. 429, 5xx and network errors are retried. */
  async json<T>(verb: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const res = await this.call(verb, path, body, contentType);
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new KubernetesApiError(verb, path, res.status, 'BadResponse', 'the answer is not JSON');
    }
  }

  async text(path: string): Promise<string> {
    return (await this.call('GET', path)).text;
  }

  private async call(verb: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse> {
    for (let attempt = 1; ; attempt++) {
      // Outside the retry: an unreadable token file is a configuration error, not a network blip.
      const token = this.conn.token?.();
      let res: ApiResponse;
      try {
        res = await this.once(verb, path, token, body, contentType);
      } catch (err) {
        const message = (err as Error).message;
        if (attempt >= RETRIES)
          throw new KubernetesApiError(
            verb,
            path,
            0,
            'Unreachable',
            `${message} (server ${this.conn.server}, ${attempt} tries)`,
            `check that the API server is reachable (from ${this.conn.source})`,
          );
        this.log.warn({ verb, path, attempt, error: message }, 'Kubernetes API unreachable; retrying');
        await sleep(backoffMs(attempt));
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res;
      if (RETRYABLE_STATUS.has(res.status) && attempt < RETRIES) {
        this.log.warn(
          { verb, path, attempt, status: res.status },
          'Kubernetes API busy or failing; retrying',
        );
        await sleep(Math.max(backoffMs(attempt), Math.min(res.retryAfterSec ?? 0, 5) * 1000));
        continue;
      }
      throw this.error(verb, path, res);
    }
  }

  private error(verb: string, path: string, res: ApiResponse): KubernetesApiError {
    let reason = http.STATUS_CODES[res.status] ?? 'Error';
    let detail = res.text.slice(0, 500) || 'no message';
    try {
      const status = JSON.parse(res.text) as { kind?: string; reason?: string; message?: string };
      if (status.kind === 'Status') {
        reason = status.reason || reason;
        detail = status.message || detail;
      }
    } catch {
      // not a Status object: keep the text
    }
    const hint =
      res.status === 401
        ? `the API server rejected the credentials from ${this.conn.source}`
        : res.status === 403
          ? 'the service account lacks a permission: see the Role in docs/clusters.md'
          : '';
    return new KubernetesApiError(verb, path, res.status, reason, detail, hint);
  }

  private once(
    verb: string,
    path: string,
    token: string | undefined,
    body?: unknown,
    contentType?: string,
  ): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.conn.server + path);
      const headers: Record<string, string> = { Accept: 'application/json, */*', 'User-Agent': 'rea' };
      if (token) headers.Authorization = `Bearer ${token}`;
      let payload: Buffer | undefined;
      if (body !== undefined) {
        payload = Buffer.from(JSON.stringify(body));
        headers['Content-Type'] = contentType ?? 'application/json';
        headers['Content-Length'] = String(payload.length);
      }
      const request = url.protocol === 'https:' ? https.request : http.request;
      const req = request(
        url,
        { method: verb, headers, agent: this.agent, timeout: REQUEST_TIMEOUT_MS },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const retryAfter = Number(res.headers['retry-after']);
            resolve({
              status: res.statusCode ?? 0,
              retryAfterSec: Number.isFinite(retryAfter) ? retryAfter : undefined,
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000}s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function backoffMs(attempt: number): number {
  return 200 * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const isStatus = (err: unknown, ...codes: number[]): err is KubernetesApiError =>
  err instanceof KubernetesApiError && codes.includes(err.status);

function condition(job: KubeJob, type: string): Condition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

function seconds(from?: string, to?: string): number {
  if (!from) return 0;
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  return Number.isFinite(ms) ? Math.max(0, ms / 1000) : 0;
}

function failed(failureClass: FailureClass, message: string, wallTimeSec: number): JobStatus {
  return { state: 'finished', outcome: { status: 'failed', failureClass, message, wallTimeSec } };
}

export interface KubernetesAdapterOptions {
  connection: KubernetesConnection;
  log: Logger;
}

export class KubernetesAdapter implements ClusterAdapter {
  readonly namespace: string;
  private readonly api: KubeClient;
  private readonly log: Logger;
  private lastPrune = 0;

  constructor(
    private readonly settings: KubernetesSettings,
    opts: KubernetesAdapterOptions,
  ) {
    this.namespace = settings.namespace ?? opts.connection.namespace ?? 'default';
    this.log = opts.log.child({ cluster: 'kubernetes', namespace: this.namespace });
    this.api = new KubeClient(opts.connection, this.log);
    const auth = opts.connection.cert
      ? 'client certificate'
      : opts.connection.token
        ? 'bearer token'
        : 'none';
    this.log.info(
      { server: opts.connection.server, source: opts.connection.source, auth },
      'Kubernetes adapter ready',
    );
  }

  private jobPath(name = ''): string {
    return `/apis/batch/v1/namespaces/${this.namespace}/jobs${name ? `/${name}` : ''}`;
  }
  private configMapPath(name = ''): string {
    return `/api/v1/namespaces/${this.namespace}/configmaps${name ? `/${name}` : ''}`;
  }
  private podsPath(): string {
    return `/api/v1/namespaces/${this.namespace}/pods`;
  }

  private async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.api.json<T>('GET', path);
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Throws when the Job named for `experimentId` belongs to another experiment. */
  private checkOwner(obj: { metadata: ObjectMeta }, experimentId: string, kind: string): void {
    const owner = obj.metadata.annotations?.[ANNOTATIONS.experimentId];
    if (owner !== experimentId) {
      throw new KubernetesNameClashError(
        `${kind} ${this.namespace}/${obj.metadata.name} belongs to ${owner === undefined ? 'something that is not rea (no rea.dev/experiment-id annotation)' : `experiment "${owner}"`}, ` +
          `not to experiment "${experimentId}"; delete it or use another namespace`,
      );
    }
  }

  /**
   * Creates the Job, then its ConfigMap with the Job's uid as owner. A submit retried after a crash
   * between the two finds the Job (409) and completes the pair; the pod waits for the ConfigMap.
   */
  async submit(job: TrainingJob): Promise<{ jobId: string; created: boolean }> {
    const name = jobName(job.experimentId);
    const existingConfig = await this.get<KubeConfigMap>(this.configMapPath(configMapName(name)));
    if (existingConfig && this.isCancelRecord(existingConfig, job.experimentId)) {
      this.log.info({ experimentId: job.experimentId, job: name }, 'not submitting a cancelled experiment');
      return { jobId: job.experimentId, created: false };
    }
    let created = true;
    let k8sJob: KubeJob;
    try {
      k8sJob = await this.api.json<KubeJob>(
        'POST',
        this.jobPath(),
        jobManifest(job, this.settings, this.namespace),
      );
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
      created = false;
      const found = await this.get<KubeJob>(this.jobPath(name));
      if (!found)
        throw new Error(`Job ${this.namespace}/${name} existed a moment ago and is gone now; submit again`);
      k8sJob = found;
    }
    this.checkOwner(k8sJob, job.experimentId, 'Job');
    const uid = k8sJob.metadata.uid;
    if (!uid)
      throw new Error(
        `Job ${this.namespace}/${name} came back without metadata.uid: the API server answered something that is not a Job`,
      );
    if (!(await this.ensureConfigMap(job, name, uid, existingConfig))) {
      // Cancelled while we were creating it: the cancellation wins.
      await this.deleteJob(name);
      return { jobId: job.experimentId, created: false };
    }
    this.log.info({ experimentId: job.experimentId, job: name, created }, 'Kubernetes Job submitted');
    return { jobId: job.experimentId, created };
  }

  /** Makes the ConfigMap exist with this Job as its owner; false when it is a cancellation record. */
  private async ensureConfigMap(
    job: TrainingJob,
    name: string,
    uid: string,
    existing: KubeConfigMap | undefined,
  ): Promise<boolean> {
    const wanted = configMapManifest(job, this.namespace, uid);
    let current = existing;
    if (!current) {
      try {
        await this.api.json('POST', this.configMapPath(), { apiVersion: 'v1', kind: 'ConfigMap', ...wanted });
        return true;
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
        current = await this.get<KubeConfigMap>(this.configMapPath(configMapName(name)));
        if (!current)
          throw new Error(`ConfigMap ${configMapName(name)} existed a moment ago and is gone; submit again`);
      }
    }
    if (this.isCancelRecord(current, job.experimentId)) return false;
    if (current.metadata.ownerReferences?.some((o) => o.uid === uid) && current.data?.['config.json'])
      return true;
    // Left from an earlier Job of this name that the garbage collector has not removed yet: take it over.
    await this.api.json(
      'PATCH',
      this.configMapPath(configMapName(name)),
      { metadata: wanted.metadata, data: wanted.data },
      'application/merge-patch+json',
    );
    return true;
  }

  private isCancelRecord(cm: KubeConfigMap, experimentId: string): boolean {
    return (
      cm.metadata.labels?.[LABELS.cancelled] === 'true' &&
      cm.metadata.annotations?.[ANNOTATIONS.experimentId] === experimentId
    );
  }

  async status(experimentId: string): Promise<JobStatus> {
    const name = jobName(experimentId);
    const job = await this.get<KubeJob>(this.jobPath(name));
    if (!job || job.metadata.deletionTimestamp) {
      const record = await this.get<KubeConfigMap>(this.configMapPath(configMapName(name)));
      if (record && this.isCancelRecord(record, experimentId)) {
        return failed('cancelled', 'Kubernetes Job cancelled by rea', 0);
      }
      if (!job) return { state: 'missing' };
    }
    this.checkOwner(job, experimentId, 'Job');
    const wallTimeSec = seconds(job.status?.startTime, job.status?.completionTime);
    if (condition(job, 'Complete')) return this.succeeded(job, name, wallTimeSec);
    const failure = condition(job, 'Failed');
    if (failure) return this.failed(job, name, failure, wallTimeSec);
    if ((job.status?.active ?? 0) === 0) return { state: 'queued' };
    const pod = (await this.pods(name)).at(-1);
    if (!pod || pod.status?.phase === 'Pending') return { state: 'queued' };
    return { state: 'running', progress: await this.progress(pod) };
  }

  private async succeeded(job: KubeJob, name: string, wallTimeSec: number): Promise<JobStatus> {
    const pods = await this.pods(name);
    const pod = pods.filter((p) => p.status?.phase === 'Succeeded').at(-1) ?? pods.at(-1);
    if (!pod)
      return failed(
        'crash',
        `Job ${name} succeeded but its pod is gone, and with it the metrics`,
        wallTimeSec,
      );
    const lines = await this.podLog(pod, LOG_TAIL_LINES);
    let metrics: Metrics | undefined;
    for (const line of lines) {
      const parsed = parseLine(line);
      if (parsed.kind === 'metrics') metrics = parsed.metrics;
    }
    if (!metrics)
      return failed(
        'crash',
        `trainer bug: exited 0 without a rea:metrics line in the log of pod ${pod.metadata.name}`,
        wallTimeSec,
      );
    const primary = job.metadata.annotations?.[ANNOTATIONS.primaryMetric];
    if (primary && typeof metrics[primary] !== 'number')
      return failed(
        'crash',
        `trainer bug: its rea:metrics line lacks the primary metric "${primary}"`,
        wallTimeSec,
      );
    return { state: 'finished', outcome: { status: 'succeeded', metrics, wallTimeSec } };
  }

  private async failed(
    job: KubeJob,
    name: string,
    failure: Condition,
    wallTimeSec: number,
  ): Promise<JobStatus> {
    if (failure.reason === 'DeadlineExceeded') {
      return failed(
        'timeout',
        `trainer ran past its time limit of ${job.spec?.activeDeadlineSeconds ?? '?'}s (Job ${name}: ${failure.message ?? 'DeadlineExceeded'})`,
        wallTimeSec,
      );
    }
    const pod = (await this.pods(name)).at(-1);
    if (!pod)
      return failed(
        'lost',
        `Job ${name} failed (${failure.reason}: ${failure.message}) and its pod is gone`,
        wallTimeSec,
      );
    const disruption = pod.status?.conditions?.find(
      (c) => c.type === 'DisruptionTarget' && c.status === 'True',
    );
    if (pod.status?.reason === 'Evicted' || pod.status?.reason === 'Preempting' || disruption) {
      const why = disruption
        ? `${disruption.reason}: ${disruption.message}`
        : `${pod.status?.reason}: ${pod.status?.message}`;
      return failed('lost', `pod ${pod.metadata.name} was evicted or preempted (${why})`, wallTimeSec);
    }
    const container = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER);
    const terminated = container?.state?.terminated ?? container?.lastState?.terminated;
    if (terminated?.reason === 'OOMKilled') {
      return failed(
        'oom',
        `container ${CONTAINER} of pod ${pod.metadata.name} was OOMKilled at its memory limit`,
        wallTimeSec,
      );
    }
    if (!terminated) {
      return failed(
        'lost',
        `pod ${pod.metadata.name} failed before its container ran (${pod.status?.reason ?? failure.reason}: ${pod.status?.message ?? failure.message})`,
        wallTimeSec,
      );
    }
    const lines = await this.podLog(pod, LOG_TAIL_LINES).catch(() => [] as string[]);
    let reported: { failureClass: FailureClass; message: string } | undefined;
    let lastLog: string | undefined;
    for (const line of lines) {
      const parsed = parseLine(line);
      if (parsed.kind === 'error') reported = { failureClass: parsed.failureClass, message: parsed.message };
      else if (parsed.kind === 'log' && line.trim()) lastLog = line;
    }
    const failureClass = reported?.failureClass ?? failureClassForExit(terminated.exitCode);
    return failed(
      failureClass,
      `trainer exited with code ${terminated.exitCode}: ${reported?.message ?? lastLog ?? terminated.message ?? 'no output'}`,
      wallTimeSec,
    );
  }

  /** The Job's pods, oldest first. */
  private async pods(name: string): Promise<KubePod[]> {
    const list = await this.api.json<{ items?: KubePod[] }>(
      'GET',
      `${this.podsPath()}?labelSelector=${encodeURIComponent(`job-name=${name}`)}`,
    );
    return (list.items ?? []).sort((a, b) =>
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
    );
  }

  /** The last `lines` lines of the trainer container's log (stdout and stderr, as the kubelet keeps them). */
  private async podLog(pod: KubePod, tail: number): Promise<string[]> {
    const text = await this.api.text(
      `${this.podsPath()}/${pod.metadata.name}/log?container=${CONTAINER}&tailLines=${tail}&limitBytes=${LOG_LIMIT_BYTES}`,
    );
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines;
  }

  private async progress(pod: KubePod): Promise<Progress | undefined> {
    let lines: string[];
    try {
      lines = await this.podLog(pod, PROGRESS_TAIL_LINES);
    } catch (err) {
      if (isStatus(err, 400, 404)) return undefined; // container not started yet, or the pod just went
      throw err;
    }
    let progress: Progress | undefined;
    for (const line of lines) {
      const parsed = parseLine(line);
      if (parsed.kind === 'progress') progress = parsed.progress;
    }
    return progress;
  }

  /**
   * Stops the experiment's Job and keeps a durable record that rea cancelled it: its ConfigMap is
   * relabelled `rea.dev/cancelled=true` and released from the Job before the Job is deleted
   * (propagationPolicy Background), so that status says "cancelled" afterwards, from any worker,
   * and a late submit does not start it again. A finished Job is left alone: its outcome stands.
   */
  async cancel(experimentId: string): Promise<void> {
    const name = jobName(experimentId);
    const job = await this.get<KubeJob>(this.jobPath(name));
    if (job) {
      this.checkOwner(job, experimentId, 'Job');
      if (condition(job, 'Complete') || condition(job, 'Failed')) return;
    }
    await this.recordCancellation(experimentId, name);
    await this.deleteJob(name);
    this.log.info({ experimentId, job: name }, 'Kubernetes Job cancelled');
    await this.pruneCancelRecords().catch((err: Error) =>
      this.log.warn({ error: err.message }, 'could not prune old cancellation records; will try again'),
    );
  }

  private async recordCancellation(experimentId: string, name: string): Promise<void> {
    const now = Date.now();
    const keepSec = Math.max(this.settings.ttlSecondsAfterFinished, MIN_CANCEL_RECORD_SEC);
    const metadata = {
      labels: { [LABELS.managedBy]: 'rea', [LABELS.cancelled]: 'true' },
      annotations: {
        [ANNOTATIONS.experimentId]: experimentId,
        [ANNOTATIONS.cancelledAt]: new Date(now).toISOString(),
        [ANNOTATIONS.expiresAt]: new Date(now + keepSec * 1000).toISOString(),
      },
    };
    const path = this.configMapPath(configMapName(name));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        // ownerReferences: null releases it from the Job, so the garbage collector keeps it.
        await this.api.json(
          'PATCH',
          path,
          { metadata: { ...metadata, ownerReferences: null } },
          'application/merge-patch+json',
        );
        return;
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
      try {
        await this.api.json('POST', this.configMapPath(), {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: configMapName(name), ...metadata },
        });
        return;
      } catch (err) {
        if (!isStatus(err, 409)) throw err; // created by a submit meanwhile: patch that one
      }
    }
  }

  private async deleteJob(name: string): Promise<void> {
    try {
      await this.api.json('DELETE', `${this.jobPath(name)}?propagationPolicy=Background`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        propagationPolicy: 'Background',
      });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  /** Deletes cancellation records past their expiry; at most every ten minutes per adapter. */
  private async pruneCancelRecords(): Promise<void> {
    if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = Date.now();
    const selector = encodeURIComponent(`${LABELS.managedBy}=rea,${LABELS.cancelled}=true`);
    const list = await this.api.json<{ items?: KubeConfigMap[] }>(
      'GET',
      `${this.configMapPath()}?labelSelector=${selector}`,
    );
    for (const cm of list.items ?? []) {
      const expires = Date.parse(cm.metadata.annotations?.[ANNOTATIONS.expiresAt] ?? '');
      if (!(expires < Date.now())) continue;
      await this.api.json('DELETE', this.configMapPath(cm.metadata.name)).catch((err: unknown) => {
        if (!isStatus(err, 404)) throw err;
      });
    }
  }

  async logs(experimentId: string): Promise<string[]> {
    const pod = (await this.pods(jobName(experimentId))).at(-1);
    if (!pod) return [];
    try {
      return await this.podLog(pod, 50);
    } catch (err) {
      if (isStatus(err, 400, 404)) return []; // not started yet, or gone
      throw err;
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async close(): Promise<void> {
    this.api.close();
  }
}
