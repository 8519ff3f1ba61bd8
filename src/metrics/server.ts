/**
 * A small HTTP server for Prometheus: GET /metrics renders what `collect` returns, cached for a few
 * seconds so that several scrapers (or a fast one) cost one round of queries.
 *
 *   const server = await startMetricsServer({ address: '0.0.0.0:9464', collect: () => collectReaMetrics(pool), log });
 *   // curl http://127.0.0.1:9464/metrics
 *   await server.close();
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logging';
import { EXPOSITION_CONTENT_TYPE, renderExposition, type MetricFamily } from './exposition';

export interface MetricsServerOptions {
  /** host:port to listen on; port 0 picks a free one (see `url`). */
  address: string;
  collect: () => Promise<MetricFamily[]>;
  log: Logger;
  /** How long one collection serves scrapes. */
  cacheMs?: number;
  /** The variable the address came from, for errors. */
  variable?: string;
}

export interface MetricsServer {
  /** Where to scrape, e.g. http://127.0.0.1:9464/metrics. */
  url: string;
  close(): Promise<void>;
}

/** Splits host:port; `[::]:9464` gives host `::`. */
function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const cacheMs = opts.cacheMs ?? 5_000;
  const variable = opts.variable ?? 'REA_METRICS_ADDRESS';
  let cached: { at: number; body: Promise<string> } | undefined;
  const body = (): Promise<string> => {
    if (!cached || Date.now() - cached.at >= cacheMs) {
      const next = opts.collect().then(renderExposition);
      cached = { at: Date.now(), body: next };
      // A failed collection is not cached: the next scrape tries again.
      next.catch(() => {
        if (cached?.body === next) cached = undefined;
      });
    }
    return cached.body;
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('rea serves GET /metrics\n');
      return;
    }
    body().then(
      (text) => {
        res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        opts.log.warn({ err: message }, 'metrics: collection failed');
        res
          .writeHead(503, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`rea could not collect its metrics from PostgreSQL: ${message}\n`);
      },
    );
  });

  const { host, port } = splitAddress(opts.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `${variable}=${opts.address}: cannot listen (${err.code ?? err.message}); choose a free host:port`,
          { cause: err },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `http://${shownHost}:${bound.port}/metrics`;
  opts.log.info({ url }, 'metrics endpoint ready');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
