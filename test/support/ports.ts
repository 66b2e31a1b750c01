import { createServer, type Server } from 'node:net';

/**
 * Ports for child processes to bind, chosen below Linux's ephemeral range (32768-60999 by
 * default). A port taken with `listen(0)` and released comes from that range, so until the child
 * binds it any outgoing connection on the machine (another test's client, the other test file
 * running beside this one) may take it as its source port, and the child fails with EADDRINUSE.
 * The kernel never hands out a port from this window by itself: only another caller of these
 * functions can take one, and they start from different places (the pid) and check each port.
 */
const FIRST = 20_000;
const SPAN = 12_000;
let cursor = (process.pid * 7919) % SPAN;

/** A free loopback port: bound, then released, so a child process (or a test) can bind it. */
export async function freePort(): Promise<number> {
  const [port] = (await freePorts(1)) as [number];
  return port;
}

/**
 * `count` distinct free loopback ports, all held open together while chosen, then released.
 * Bounded: gives up after `SPAN` candidates.
 */
export async function freePorts(count: number): Promise<number[]> {
  const held: Server[] = [];
  try {
    for (let tried = 0; held.length < count; tried++) {
      if (tried >= SPAN) throw new Error(`no free port in 127.0.0.1:${FIRST}-${FIRST + SPAN - 1}`);
      cursor = (cursor + 1) % SPAN;
      const server = await listening(FIRST + cursor);
      if (server !== undefined) held.push(server);
    }
    return held.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

function listening(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}
