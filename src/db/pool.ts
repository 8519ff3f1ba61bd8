/** PostgreSQL connections: one pool per process, and creation of the database itself at set-up. */
import { Client, Pool } from 'pg';

/**
 * A connection pool that survives a PostgreSQL restart: an idle connection that the server cuts is
 * dropped and the next query opens a new one (queries that fail meanwhile fail, and activities retry).
 *
 *   const pool = createPool('postgres://postgres@127.0.0.1:5432/rea');
 */
export function createPool(databaseUrl: string, max = 5): Pool {
  const pool = new Pool({ connectionString: databaseUrl, max, idleTimeoutMillis: 30_000 });
  // Without a listener, an idle connection's error (the server restarted) would kill the process.
  pool.on('error', () => undefined);
  return pool;
}

/** Creates the database named in `databaseUrl` when it does not exist (connecting to `postgres`). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name))
    throw new Error(`REA_DATABASE_URL: database name "${name}" must be A-Z, 0-9, _`);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } catch (err) {
        // Another process created it between our check and CREATE: that is fine.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}
