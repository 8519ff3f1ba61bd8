/**
 * A local Kubernetes API server for the calls rea's Kubernetes adapter makes, with a kubelet that
 * really runs the pods: real HTTP(S), the API's JSON shapes and status codes (401 without the bearer
 * token, 404 NotFound and 409 AlreadyExists Status objects, 422 Invalid), namespaces, label
 * selectors, merge patches, delete propagation and owner-reference garbage collection.
 *
 *   const k8s = await FakeKubernetes.start({ token: 's3cret', imageWorkdir: repoRoot, path: [venvBin] });
 *   // POST a Job: a Pod appears and its container command runs as a local process.
 *
 * The job controller creates one Pod per attempt (backoffLimit honoured), keeps active/succeeded/failed
 * and the Complete / Failed (BackoffLimitExceeded, DeadlineExceeded) conditions, enforces
 * activeDeadlineSeconds by deleting the pods, and deletes finished Jobs after ttlSecondsAfterFinished.
 *
 * The kubelet ignores the image: the container's command + args run as a process (in their own
 * process group) with `imageWorkdir` as the image's WORKDIR, `path` first on PATH and the container
 * env ($(VAR) references expanded, $$ kept as a literal $, as the kubelet does). There are no mount
 * namespaces here, so each volume is materialised in a per-pod temp folder (a configMap volume as one
 * file per key, an emptyDir as an empty folder) and every argument, env value and workingDir that is
 * a mountPath or starts with `mountPath/` is rewritten to that folder. A path embedded mid-argument
 * (`--config=/etc/rea/config.json`) is not rewritten. stdout and stderr go, line by line, to the pod
 * log served at .../pods/NAME/log (tailLines, limitBytes). Deleting a pod sends SIGTERM to its process
 * group and SIGKILL after `gracePeriodMs`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface FakeKubernetesOptions {
  /** The bearer token every request must carry. */
  token: string;
  /** Serve HTTPS with this key and certificate; plain HTTP when absent. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** The folder the image's WORKDIR stands for: where relative paths in the command resolve. */
  imageWorkdir: string;
  /** Folders put first on the container's PATH, as the image's PATH would (e.g. a venv's bin). */
  path?: string[];
  /** Namespaces that exist; a request into another one gets 404. Default: ["default"]. */
  namespaces?: string[];
  /** SIGTERM to SIGKILL on pod deletion (terminationGracePeriodSeconds, shortened). */
  gracePeriodMs?: number;
}

type Labels = Record<string, string>;
interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}
export interface Meta {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Labels;
  annotations?: Labels;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
  finalizers?: string[];
}
interface EnvVar {
  name: string;
  value?: string;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Labels; limits?: Labels };
}
interface Volume {
  name: string;
  configMap?: { name: string };
  emptyDir?: Record<string, unknown>;
}
interface PodSpec {
  restartPolicy?: string;
  serviceAccountName?: string;
  containers: Container[];
  volumes?: Volume[];
}
interface Condition {
  type: string;
  status: 'True' | 'False';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}
export interface FakeJob {
  apiVersion: 'batch/v1';
  kind: 'Job';
  metadata: Meta;
  spec: {
    backoffLimit?: number;
    activeDeadlineSeconds?: number;
    ttlSecondsAfterFinished?: number;
    template: { metadata?: { labels?: Labels }; spec: PodSpec };
  };
  status: {
    active?: number;
    succeeded?: number;
    failed?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
  };
}
interface ContainerState {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: {
    exitCode: number;
    signal?: number;
    reason: string;
    message?: string;
    startedAt?: string;
    finishedAt: string;
  };
}
export interface FakePod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: Meta;
  spec: PodSpec;
  status: {
    phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
    reason?: string;
    message?: string;
    conditions?: Condition[];
    startTime?: string;
    containerStatuses?: {
      name: string;
      state: ContainerState;
      ready: boolean;
      restartCount: number;
      image: string;
    }[];
  };
}
export interface FakeConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: Meta;
  data?: Record<string, string>;
}

/** The kubelet's side of one pod: its process, its folders and its log. */
interface PodRuntime {
  child?: ChildProcess;
  root?: string;
  log: string[];
  stopping?: NodeJS.Timeout;
  /** Why the kubelet stopped it, when it did. */
  stoppedFor?: 'deleted' | 'evicted';
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;

const now = () => new Date().toISOString();
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The kubelet's $(VAR) expansion: known names are replaced, $$ becomes $, the rest stays. */
export function expandVars(text: string, vars: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '$' && text[i + 1] === '$') {
      out += '$';
      i++;
    } else if (c === '$' && text[i + 1] === '(') {
      const end = text.indexOf(')', i + 2);
      const name = end === -1 ? undefined : text.slice(i + 2, end);
      if (name !== undefined && name in vars) {
        out += vars[name];
        i = end;
      } else out += c;
    } else out += c;
  }
  return out;
}

function selectorMatches(selector: string | null, labels: Labels | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=', 2);
    return k !== undefined && labels?.[k.trim()] === v?.trim();
  });
}

function validateMeta(meta: unknown, kind: string, nameRule: RegExp): string[] {
  if (!isRecord(meta)) return ['metadata: Required value'];
  const problems: string[] = [];
  if (typeof meta.name !== 'string' || !nameRule.test(meta.name))
    problems.push(
      `metadata.name: Invalid value: ${JSON.stringify(meta.name)}: a lowercase RFC 1123 ${kind === 'Job' ? 'label (at most 63 characters)' : 'subdomain'} is required`,
    );
  for (const field of ['labels', 'annotations'] as const) {
    const map = meta[field];
    if (map === undefined) continue;
    if (!isRecord(map)) {
      problems.push(`metadata.${field}: expected a map of strings`);
      continue;
    }
    for (const [k, v] of Object.entries(map)) {
      if (!LABEL_KEY.test(k)) problems.push(`metadata.${field}: Invalid value: "${k}": not a qualified name`);
      if (typeof v !== 'string') problems.push(`metadata.${field}.${k}: expected a string`);
      else if (field === 'labels' && (v.length > 63 || !LABEL_VALUE.test(v)))
        problems.push(
          `metadata.labels: Invalid value: "${v}": a valid label must be 63 characters or less, alphanumeric at both ends`,
        );
    }
  }
  return problems;
}

function validateJob(body: unknown): string[] {
  if (!isRecord(body)) return ['body: expected a Job object'];
  const problems = validateMeta(body.metadata, 'Job', DNS_LABEL);
  const spec = body.spec;
  if (!isRecord(spec)) return [...problems, 'spec: Required value'];
  for (const f of ['backoffLimit', 'ttlSecondsAfterFinished'] as const)
    if (spec[f] !== undefined && !(Number.isInteger(spec[f]) && (spec[f] as number) >= 0))
      problems.push(
        `spec.${f}: Invalid value: ${JSON.stringify(spec[f])}: must be greater than or equal to 0`,
      );
  if (
    spec.activeDeadlineSeconds !== undefined &&
    !(Number.isInteger(spec.activeDeadlineSeconds) && (spec.activeDeadlineSeconds as number) > 0)
  )
    problems.push(
      `spec.activeDeadlineSeconds: Invalid value: ${JSON.stringify(spec.activeDeadlineSeconds)}: must be greater than 0`,
    );
  const template = spec.template;
  const podSpec = isRecord(template) ? template.spec : undefined;
  if (!isRecord(podSpec)) return [...problems, 'spec.template.spec: Required value'];
  if (podSpec.restartPolicy !== 'Never' && podSpec.restartPolicy !== 'OnFailure')
    problems.push(
      `spec.template.spec.restartPolicy: Unsupported value: ${JSON.stringify(podSpec.restartPolicy)}: supported values: "OnFailure", "Never"`,
    );
  const containers = podSpec.containers;
  if (!Array.isArray(containers) || containers.length === 0)
    problems.push('spec.template.spec.containers: Required value');
  const volumes = Array.isArray(podSpec.volumes) ? podSpec.volumes.filter(isRecord) : [];
  for (const [i, c] of (Array.isArray(containers) ? containers : []).entries()) {
    const at = `spec.template.spec.containers[${i}]`;
    if (!isRecord(c)) {
      problems.push(`${at}: expected an object`);
      continue;
    }
    if (typeof c.name !== 'string' || !DNS_LABEL.test(c.name))
      problems.push(`${at}.name: Invalid value: ${JSON.stringify(c.name)}`);
    if (typeof c.image !== 'string' || c.image === '') problems.push(`${at}.image: Required value`);
    for (const f of ['command', 'args'] as const)
      if (
        c[f] !== undefined &&
        !(Array.isArray(c[f]) && (c[f] as unknown[]).every((a) => typeof a === 'string'))
      )
        problems.push(`${at}.${f}: expected a list of strings`);
    const resources = isRecord(c.resources) ? c.resources : {};
    const requests = isRecord(resources.requests) ? resources.requests : {};
    const limits = isRecord(resources.limits) ? resources.limits : {};
    for (const [where, map] of [
      ['requests', requests],
      ['limits', limits],
    ] as const)
      for (const [k, v] of Object.entries(map))
        if (typeof v !== 'string' || !QUANTITY.test(v))
          problems.push(
            `${at}.resources.${where}[${k}]: Invalid value: ${JSON.stringify(v)}: must be a quantity`,
          );
    for (const k of new Set([...Object.keys(requests), ...Object.keys(limits)]))
      if (k.includes('/') && !k.startsWith('kubernetes.io/') && requests[k] !== limits[k])
        problems.push(`${at}.resources.requests[${k}]: Invalid value: must be equal to ${k} limit`);
    for (const m of Array.isArray(c.volumeMounts) ? c.volumeMounts : [])
      if (!isRecord(m) || !volumes.some((v) => v.name === m.name))
        problems.push(`${at}.volumeMounts.name: Not found: ${JSON.stringify(isRecord(m) ? m.name : m)}`);
  }
  return problems;
}

function validateConfigMap(body: unknown): string[] {
  if (!isRecord(body)) return ['body: expected a ConfigMap object'];
  const problems = validateMeta(body.metadata, 'ConfigMap', DNS_SUBDOMAIN);
  if (body.data !== undefined) {
    if (!isRecord(body.data)) problems.push('data: expected a map of strings');
    else
      for (const [k, v] of Object.entries(body.data)) {
        if (!DATA_KEY.test(k))
          problems.push(
            `data[${k}]: Invalid value: a valid config key must consist of alphanumerics, '-', '_' or '.'`,
          );
        if (typeof v !== 'string') problems.push(`data[${k}]: expected a string`);
      }
  }
  return problems;
}

export class FakeKubernetes {
  readonly jobs = new Map<string, FakeJob>();
  readonly pods = new Map<string, FakePod>();
  readonly configMaps = new Map<string, FakeConfigMap>();
  /** Every request, in order: verb, path (with query) and the status answered. */
  readonly requests: { verb: string; path: string; status: number }[] = [];
  private readonly runtimes = new Map<string, PodRuntime>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly namespaces: Set<string>;
  private failures: { count: number; status: number } | undefined;
  private version = 1;
  private server!: http.Server;
  url = '';

  private constructor(private readonly opts: FakeKubernetesOptions) {
    this.namespaces = new Set(opts.namespaces ?? ['default']);
  }

  static async start(opts: FakeKubernetesOptions): Promise<FakeKubernetes> {
    const fake = new FakeKubernetes(opts);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void fake.handle(req, res);
    fake.server = opts.tls
      ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler)
      : http.createServer(handler);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return fake;
  }

  /** The next `count` authenticated requests are answered with `status` (a 503 storm, a 429...). */
  failNext(count: number, status: number): void {
    this.failures = { count, status };
  }

  /** Process ids of the containers running now (a deleted pod's process is gone once it exits). */
  runningProcesses(): number[] {
    return [...this.runtimes.values()].flatMap((r) =>
      r.child?.pid !== undefined && r.child.exitCode === null && r.child.signalCode === null
        ? [r.child.pid]
        : [],
    );
  }

  /** Process ids of the running containers of a Job's pods. */
  processesOfJob(namespace: string, jobName: string): number[] {
    const running = new Set(this.runningProcesses());
    return this.podsOfJob(namespace, jobName).flatMap((p) => {
      const pid = this.runtimes.get(key(namespace, p.metadata.name))?.child?.pid;
      return pid !== undefined && running.has(pid) ? [pid] : [];
    });
  }

  podsOfJob(namespace: string, jobName: string): FakePod[] {
    return [...this.pods.values()].filter(
      (p) => p.metadata.namespace === namespace && p.metadata.labels?.['job-name'] === jobName,
    );
  }

  /** Evicts the job's running pod as node pressure would: DisruptionTarget, phase Failed, process killed. */
  evict(namespace: string, jobName: string): void {
    for (const pod of this.podsOfJob(namespace, jobName)) {
      if (pod.status.phase !== 'Running' && pod.status.phase !== 'Pending') continue;
      pod.status.conditions = [
        ...(pod.status.conditions ?? []),
        {
          type: 'DisruptionTarget',
          status: 'True',
          reason: 'TerminationByKubelet',
          message: 'The node was low on resource: memory.',
          lastTransitionTime: now(),
        },
      ];
      const runtime = this.runtimes.get(key(namespace, pod.metadata.name));
      if (runtime) runtime.stoppedFor = 'evicted';
      this.stopProcess(pod, 0);
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const pod of this.pods.values()) this.stopProcess(pod, 0);
    await new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
    for (const runtime of this.runtimes.values())
      if (runtime.root) rmSync(runtime.root, { recursive: true, force: true });
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private meta(input: Record<string, unknown>, namespace: string): Meta {
    return {
      ...(input as Partial<Meta>),
      name: input.name as string,
      namespace,
      uid: randomUUID(),
      resourceVersion: String(this.version++),
      creationTimestamp: now(),
    };
  }

  // ---- HTTP ----

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const verb = req.method ?? 'GET';
    const send = (status: number, body: unknown, contentType = 'application/json') => {
      this.requests.push({ verb, path: url.pathname + url.search, status });
      res.writeHead(status, { 'Content-Type': contentType });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const sendError = (err: ApiError) =>
      send(err.code, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: err.message,
        reason: err.reason,
        details: err.details,
        code: err.code,
      });
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.headers.authorization !== `Bearer ${this.opts.token}`)
        throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      if (this.failures && this.failures.count > 0) {
        this.failures.count--;
        throw new ApiError(
          this.failures.status,
          http.STATUS_CODES[this.failures.status] ?? 'Error',
          'injected failure',
        );
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new ApiError(400, 'BadRequest', 'the request body is not JSON');
        }
      }
      const result = this.route(verb, url, body, req.headers['content-type'] ?? '');
      if (typeof result.body === 'string') send(result.status, result.body, 'text/plain');
      else send(result.status, result.body);
    } catch (err) {
      if (err instanceof ApiError) sendError(err);
      else sendError(new ApiError(500, 'InternalError', (err as Error).message));
    }
  }

  private route(
    verb: string,
    url: URL,
    body: unknown,
    contentType: string,
  ): { status: number; body: unknown } {
    const p = url.pathname;
    let m: RegExpMatchArray | null;
    const ns = (name: string) => {
      if (!this.namespaces.has(name)) throw new ApiError(404, 'NotFound', `namespaces "${name}" not found`);
      return name;
    };
    const ok = (b: unknown, status = 200) => ({ status, body: b });
    const selector = url.searchParams.get('labelSelector');
    if ((m = p.match(/^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs$/))) {
      const n = ns(m[1] as string);
      if (verb === 'POST') return ok(this.createJob(n, body), 201);
      if (verb === 'GET') return ok(this.list('JobList', 'batch/v1', this.jobs, n, selector));
    } else if ((m = p.match(/^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\/([^/]+)$/))) {
      const n = ns(m[1] as string);
      const job = this.jobs.get(key(n, m[2] as string));
      if (!job)
        throw new ApiError(404, 'NotFound', `jobs.batch "${m[2]}" not found`, {
          name: m[2],
          group: 'batch',
          kind: 'jobs',
        });
      if (verb === 'GET') return ok(job);
      if (verb === 'DELETE') return ok(this.deleteJob(job, propagation(url, body)));
      if (verb === 'PATCH') return ok(this.patch(job, body, contentType));
    } else if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/))) {
      const n = ns(m[1] as string);
      if (verb === 'POST') return ok(this.createConfigMap(n, body), 201);
      if (verb === 'GET') return ok(this.list('ConfigMapList', 'v1', this.configMaps, n, selector));
    } else if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/))) {
      const n = ns(m[1] as string);
      const cm = this.configMaps.get(key(n, m[2] as string));
      if (!cm)
        throw new ApiError(404, 'NotFound', `configmaps "${m[2]}" not found`, {
          name: m[2],
          kind: 'configmaps',
        });
      if (verb === 'GET') return ok(cm);
      if (verb === 'PATCH') return ok(this.patch(cm, body, contentType));
      if (verb === 'DELETE') {
        this.configMaps.delete(key(n, cm.metadata.name));
        return ok({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Success',
          details: { name: cm.metadata.name, kind: 'configmaps' },
        });
      }
    } else if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods$/))) {
      const n = ns(m[1] as string);
      if (verb === 'GET') return ok(this.list('PodList', 'v1', this.pods, n, selector));
    } else if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/log)?$/))) {
      const n = ns(m[1] as string);
      const pod = this.pods.get(key(n, m[2] as string));
      if (!pod) throw new ApiError(404, 'NotFound', `pods "${m[2]}" not found`, { name: m[2], kind: 'pods' });
      if (verb === 'GET' && m[3]) return ok(this.podLog(pod, url));
      if (verb === 'GET') return ok(pod);
      if (verb === 'DELETE') {
        this.deletePod(pod);
        return ok(pod);
      }
    } else {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    throw new ApiError(
      405,
      'MethodNotAllowed',
      `the server does not allow this method on the requested resource (${verb} ${p})`,
    );
  }

  private list<T extends { metadata: Meta }>(
    kind: string,
    apiVersion: string,
    store: Map<string, T>,
    namespace: string,
    selector: string | null,
  ) {
    const items = [...store.values()].filter(
      (o) => o.metadata.namespace === namespace && selectorMatches(selector, o.metadata.labels),
    );
    return { kind, apiVersion, metadata: { resourceVersion: String(this.version) }, items };
  }

  private patch<T extends { metadata: Meta }>(obj: T, body: unknown, contentType: string): T {
    if (!contentType.startsWith('application/merge-patch+json'))
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got ${contentType || 'none'})`,
      );
    const patched = mergePatch(obj, body) as T;
    // Identity fields cannot change through a patch.
    const { name, namespace, uid, creationTimestamp } = obj.metadata;
    Object.assign(obj, patched, {
      metadata: {
        ...patched.metadata,
        name,
        namespace,
        uid,
        creationTimestamp,
        resourceVersion: String(this.version++),
      },
    });
    return obj;
  }

  // ---- ConfigMaps and garbage collection ----

  private createConfigMap(namespace: string, body: unknown): FakeConfigMap {
    const problems = validateConfigMap(body);
    const input = body as FakeConfigMap;
    if (problems.length > 0)
      throw invalid(
        'ConfigMap',
        '',
        isRecord(body) && isRecord(body.metadata) ? String(body.metadata.name) : '',
        problems,
      );
    if (this.configMaps.has(key(namespace, input.metadata.name)))
      throw new ApiError(409, 'AlreadyExists', `configmaps "${input.metadata.name}" already exists`, {
        name: input.metadata.name,
        kind: 'configmaps',
      });
    const cm: FakeConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: this.meta(input.metadata as unknown as Record<string, unknown>, namespace),
      data: input.data,
    };
    this.configMaps.set(key(namespace, cm.metadata.name), cm);
    this.later(0, () => this.collectGarbage()); // an owner that does not exist makes it garbage at once
    return cm;
  }

  /** Deletes ConfigMaps and pods whose owners are all gone (what the garbage collector does). */
  private collectGarbage(): void {
    const uids = new Set([...this.jobs.values()].map((j) => j.metadata.uid));
    const orphaned = (meta: Meta) =>
      (meta.ownerReferences?.length ?? 0) > 0 && meta.ownerReferences!.every((o) => !uids.has(o.uid));
    for (const [k, cm] of this.configMaps) if (orphaned(cm.metadata)) this.configMaps.delete(k);
    for (const pod of this.pods.values()) if (orphaned(pod.metadata)) this.deletePod(pod);
  }

  // ---- The job controller ----

  private createJob(namespace: string, body: unknown): FakeJob {
    const problems = validateJob(body);
    if (problems.length > 0)
      throw invalid(
        'Job',
        'batch',
        isRecord(body) && isRecord(body.metadata) ? String(body.metadata.name) : '',
        problems,
      );
    const input = body as FakeJob;
    if (this.jobs.has(key(namespace, input.metadata.name)))
      throw new ApiError(409, 'AlreadyExists', `jobs.batch "${input.metadata.name}" already exists`, {
        name: input.metadata.name,
        group: 'batch',
        kind: 'jobs',
      });
    const job: FakeJob = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: this.meta(input.metadata as unknown as Record<string, unknown>, namespace),
      spec: { backoffLimit: 6, ...input.spec },
      status: { startTime: now(), active: 0 },
    };
    const { uid, name } = job.metadata;
    job.spec.template.metadata = {
      ...job.spec.template.metadata,
      labels: {
        ...job.spec.template.metadata?.labels,
        'controller-uid': uid,
        'batch.kubernetes.io/controller-uid': uid,
        'job-name': name,
        'batch.kubernetes.io/job-name': name,
      },
    };
    this.jobs.set(key(namespace, name), job);
    this.startPod(job);
    if (job.spec.activeDeadlineSeconds !== undefined)
      this.later(job.spec.activeDeadlineSeconds * 1000, () => this.deadline(job));
    return job;
  }

  private isFinished(job: FakeJob): boolean {
    return (job.status.conditions ?? []).some(
      (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
    );
  }

  private finish(job: FakeJob, type: 'Complete' | 'Failed', reason?: string, message?: string): void {
    const t = now();
    const target: Condition =
      type === 'Complete'
        ? { type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: t }
        : { type: 'FailureTarget', status: 'True', reason, message, lastTransitionTime: t };
    job.status.conditions = [
      ...(job.status.conditions ?? []),
      target,
      { type, status: 'True', reason, message, lastTransitionTime: t },
    ];
    job.status.active = 0;
    if (type === 'Complete') job.status.completionTime = t;
    job.metadata.resourceVersion = String(this.version++);
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl !== undefined)
      this.later(ttl * 1000, () => {
        if (this.jobs.get(key(job.metadata.namespace, job.metadata.name)) === job)
          this.deleteJob(job, 'Background');
      });
  }

  private deadline(job: FakeJob): void {
    if (this.isFinished(job) || this.jobs.get(key(job.metadata.namespace, job.metadata.name)) !== job) return;
    const active = this.podsOfJob(job.metadata.namespace, job.metadata.name).filter(
      (p) => p.status.phase === 'Pending' || p.status.phase === 'Running',
    );
    job.status.failed = (job.status.failed ?? 0) + active.length;
    this.finish(job, 'Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline');
    for (const pod of active) this.deletePod(pod);
  }

  private podFinished(job: FakeJob, pod: FakePod): void {
    if (this.jobs.get(key(job.metadata.namespace, job.metadata.name)) !== job || this.isFinished(job)) return;
    job.status.active = Math.max(0, (job.status.active ?? 0) - 1);
    if (pod.status.phase === 'Succeeded') {
      job.status.succeeded = (job.status.succeeded ?? 0) + 1;
      this.finish(job, 'Complete');
    } else {
      job.status.failed = (job.status.failed ?? 0) + 1;
      if (job.status.failed > (job.spec.backoffLimit ?? 6))
        this.finish(job, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
      else this.startPod(job);
    }
  }

  private deleteJob(job: FakeJob, policy: string): unknown {
    const k = key(job.metadata.namespace, job.metadata.name);
    const pods = this.podsOfJob(job.metadata.namespace, job.metadata.name);
    if (policy === 'Orphan') {
      this.jobs.delete(k);
      for (const pod of pods)
        pod.metadata.ownerReferences = pod.metadata.ownerReferences?.filter(
          (o) => o.uid !== job.metadata.uid,
        );
      for (const cm of this.configMaps.values())
        cm.metadata.ownerReferences = cm.metadata.ownerReferences?.filter((o) => o.uid !== job.metadata.uid);
    } else if (policy === 'Foreground') {
      // The Job stays, marked for deletion, until the garbage collector has removed its pods.
      job.metadata.deletionTimestamp ??= now();
      job.metadata.finalizers = ['foregroundDeletion'];
      for (const pod of pods) this.deletePod(pod);
      const waitForPods = () => {
        if (this.podsOfJob(job.metadata.namespace, job.metadata.name).length > 0)
          return this.later(50, waitForPods);
        if (this.jobs.get(k) === job) this.jobs.delete(k);
        this.collectGarbage();
      };
      waitForPods();
    } else {
      this.jobs.delete(k);
      this.later(0, () => this.collectGarbage());
    }
    return { ...job, status: job.status };
  }

  // ---- The kubelet ----

  private startPod(job: FakeJob): void {
    const { namespace, name } = job.metadata;
    const template = job.spec.template;
    const pod: FakePod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...this.meta({ name: `${name}-${randomBytes(3).toString('hex').slice(0, 5)}` }, namespace),
        labels: { ...template.metadata?.labels },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true },
        ],
      },
      spec: structuredClone(template.spec),
      status: {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now() }],
        containerStatuses: template.spec.containers.map((c) => ({
          name: c.name,
          image: c.image,
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ContainerCreating' } },
        })),
      },
    };
    const k = key(namespace, pod.metadata.name);
    this.pods.set(k, pod);
    this.runtimes.set(k, { log: [] });
    job.status.active = (job.status.active ?? 0) + 1;
    this.later(0, () => this.mountAndRun(job, pod));
  }

  /** Waits until every configMap volume exists (as the kubelet retries a mount), then runs the container. */
  private mountAndRun(job: FakeJob, pod: FakePod): void {
    const k = key(pod.metadata.namespace, pod.metadata.name);
    const runtime = this.runtimes.get(k);
    if (!runtime || this.pods.get(k) !== pod || pod.metadata.deletionTimestamp) return;
    const volumes = pod.spec.volumes ?? [];
    const missing = volumes.find(
      (v) => v.configMap && !this.configMaps.has(key(pod.metadata.namespace, v.configMap.name)),
    );
    if (missing) return this.later(100, () => this.mountAndRun(job, pod));

    const root = mkdtempSync(path.join(os.tmpdir(), `fake-k8s-${pod.metadata.name}-`));
    runtime.root = root;
    const hostDirs = new Map<string, string>();
    for (const v of volumes) {
      const dir = path.join(root, 'volumes', v.name);
      mkdirSync(dir, { recursive: true });
      const cm = v.configMap ? this.configMaps.get(key(pod.metadata.namespace, v.configMap.name)) : undefined;
      for (const [file, content] of Object.entries(cm?.data ?? {}))
        writeFileSync(path.join(dir, file), content);
      hostDirs.set(v.name, dir);
    }
    const container = pod.spec.containers[0] as Container;
    const mounts = (container.volumeMounts ?? [])
      .map((m) => ({ mountPath: m.mountPath.replace(/\/+$/, ''), dir: hostDirs.get(m.name) as string }))
      .sort((a, b) => b.mountPath.length - a.mountPath.length);
    const rewrite = (text: string) => {
      const mount = mounts.find((m) => text === m.mountPath || text.startsWith(`${m.mountPath}/`));
      return mount ? mount.dir + text.slice(mount.mountPath.length) : text;
    };
    const vars: Record<string, string> = {};
    for (const e of container.env ?? []) vars[e.name] = rewrite(expandVars(e.value ?? '', vars));
    const argv = [...(container.command ?? []), ...(container.args ?? [])].map((a) =>
      rewrite(expandVars(a, vars)),
    );
    const [program, ...args] = argv;
    const status = pod.status.containerStatuses?.[0];
    const startedAt = now();
    const terminate = (exitCode: number, reason: string, message?: string) => {
      if (status) {
        status.state = { terminated: { exitCode, reason, message, startedAt, finishedAt: now() } };
        status.ready = false;
      }
      pod.status.phase = exitCode === 0 && runtime.stoppedFor === undefined ? 'Succeeded' : 'Failed';
      if (runtime.stoppedFor === 'evicted') {
        pod.status.reason = 'Evicted';
        pod.status.message = 'The node was low on resource: memory.';
      }
      pod.metadata.resourceVersion = String(this.version++);
      if (pod.metadata.deletionTimestamp) this.removePod(pod);
      this.podFinished(job, pod); // a no-op once the Job is gone or finished
    };
    if (!program)
      return terminate(
        128,
        'StartError',
        'no command: the fake kubelet has no image entrypoint to fall back on',
      );

    const child = spawn(program, args, {
      cwd: container.workingDir ? rewrite(container.workingDir) : this.opts.imageWorkdir,
      env: {
        PATH: [...(this.opts.path ?? []), process.env.PATH ?? '/usr/bin:/bin'].join(path.delimiter),
        HOME: root,
        HOSTNAME: pod.metadata.name,
        ...vars,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so that a kill reaches everything it started
    });
    runtime.child = child;
    pod.status.phase = 'Running';
    pod.status.startTime = startedAt;
    if (status) {
      status.state = { running: { startedAt } };
      status.ready = true;
    }
    const streams = [child.stdout, child.stderr].map(
      (s) =>
        new Promise<void>((resolve) => {
          const rl = createInterface({ input: s });
          rl.on('line', (line) => runtime.log.push(line));
          rl.on('close', resolve);
        }),
    );
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    child.once('close', (code, signal) => {
      void Promise.all(streams).then(() => {
        if (runtime.stopping) clearTimeout(runtime.stopping);
        if (spawnError)
          return terminate(
            128,
            'StartError',
            `failed to start container "${container.name}": ${spawnError.message}`,
          );
        const exitCode = code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
        terminate(exitCode, exitCode === 0 ? 'Completed' : 'Error');
      });
    });
  }

  /** Marks the pod deleted and stops its process; it leaves the store once the process is gone. */
  private deletePod(pod: FakePod): void {
    if (pod.metadata.deletionTimestamp) return;
    pod.metadata.deletionTimestamp = now();
    const runtime = this.runtimes.get(key(pod.metadata.namespace, pod.metadata.name));
    if (runtime) runtime.stoppedFor ??= 'deleted';
    if (runtime?.child && runtime.child.exitCode === null && runtime.child.signalCode === null) {
      this.stopProcess(pod, this.opts.gracePeriodMs ?? 1000);
      return;
    }
    const wasPending = pod.status.phase === 'Pending';
    this.removePod(pod);
    const owner = [...this.jobs.values()].find((j) =>
      pod.metadata.ownerReferences?.some((o) => o.uid === j.metadata.uid),
    );
    if (owner && wasPending) {
      pod.status.phase = 'Failed'; // a deleted attempt counts as failed, as the job controller sees it
      this.podFinished(owner, pod);
    }
  }

  private stopProcess(pod: FakePod, graceMs: number): void {
    const runtime = this.runtimes.get(key(pod.metadata.namespace, pod.metadata.name));
    const pid = runtime?.child?.pid;
    if (
      !runtime ||
      pid === undefined ||
      runtime.child?.exitCode !== null ||
      runtime.child.signalCode !== null
    )
      return;
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        // already gone
      }
    };
    if (graceMs <= 0) return kill('SIGKILL');
    kill('SIGTERM');
    runtime.stopping = setTimeout(() => kill('SIGKILL'), graceMs);
  }

  private removePod(pod: FakePod): void {
    const k = key(pod.metadata.namespace, pod.metadata.name);
    if (this.pods.get(k) === pod) this.pods.delete(k);
    const runtime = this.runtimes.get(k);
    if (runtime?.root) rmSync(runtime.root, { recursive: true, force: true });
  }

  private podLog(pod: FakePod, url: URL): string {
    const status = pod.status.containerStatuses?.[0];
    const container = url.searchParams.get('container') ?? status?.name;
    if (container !== status?.name)
      throw new ApiError(
        400,
        'BadRequest',
        `container ${container} is not valid for pod ${pod.metadata.name}`,
      );
    if (status?.state.waiting)
      throw new ApiError(
        400,
        'BadRequest',
        `container "${status.name}" in pod "${pod.metadata.name}" is waiting to start: ${status.state.waiting.reason}`,
      );
    const runtime = this.runtimes.get(key(pod.metadata.namespace, pod.metadata.name));
    const lines = runtime?.log ?? [];
    const tail = Number(url.searchParams.get('tailLines') ?? NaN);
    const picked =
      Number.isInteger(tail) && tail >= 0 ? lines.slice(Math.max(0, lines.length - tail)) : lines;
    let text = picked.map((l) => `${l}\n`).join('');
    const limit = Number(url.searchParams.get('limitBytes') ?? NaN);
    if (Number.isInteger(limit) && limit > 0) text = Buffer.from(text).subarray(0, limit).toString('utf8');
    return text;
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function propagation(url: URL, body: unknown): string {
  const fromBody =
    isRecord(body) && typeof body.propagationPolicy === 'string' ? body.propagationPolicy : undefined;
  // batch/v1 Jobs default to orphaning their pods when deleted through the API.
  return url.searchParams.get('propagationPolicy') ?? fromBody ?? 'Orphan';
}

function invalid(kind: string, group: string, name: string, problems: string[]): ApiError {
  return new ApiError(
    422,
    'Invalid',
    `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${problems.join(', ')}`,
    {
      name,
      group,
      kind: kind.toLowerCase() + 's',
      causes: problems.map((p) => ({ reason: 'FieldValueInvalid', message: p, field: p.split(':')[0] })),
    },
  );
}
