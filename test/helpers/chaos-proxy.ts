/**
 * A TCP proxy for the chaos suite (node:net), put between rea's processes and the private
 * PostgreSQL or Redis so that a test can cut their connections the way a network or a load
 * balancer does: every open connection reset at once, both ends, or new connections refused for a
 * while. The harness's own clients connect directly and are not cut.
 *
 *   const proxy = await TcpProxy.start(await freePort(), 5433);
 *   proxy.cut();            // every open connection reset (RST), client and server side
 *   await proxy.refuse(3000); // connection refused for 3 s, open ones reset
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Resets a socket (RST, as a cut cable or a dropped NAT entry looks to its peer) and frees it. */
function reset(socket: Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy();
}

export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  /** Connections accepted and forwarded since the start. */
  accepted = 0;

  private constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  static async start(port: number, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(port, targetPort);
    await proxy.listen();
    return proxy;
  }

  private listen(): Promise<void> {
    const server = createServer((client) => this.forward(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private forward(client: Socket): void {
    this.accepted++;
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    // Either end gone: the other goes too, as through a real proxy.
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.setNoDelay(true);
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Open connections now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Resets every open connection, both sockets of each; returns how many were cut. */
  cut(): number {
    const n = this.pairs.size;
    for (const [client, upstream] of [...this.pairs]) {
      reset(client);
      reset(upstream);
    }
    this.pairs.clear();
    return n;
  }

  /**
   * Stops listening (a new connection is refused: ECONNREFUSED), cuts every open connection, and
   * listens again after `ms`. Returns how many open connections were cut.
   */
  async refuse(ms: number): Promise<number> {
    const server = this.server;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const n = this.cut();
    await closed;
    await new Promise((r) => setTimeout(r, ms));
    // What connected between close() and the listener's end was cut above or is cut now.
    this.cut();
    await this.listen();
    return n;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.cut();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}
