import { createServer, type AddressInfo } from 'node:net';

/** A free loopback port: bound, then released, so a child process (or a test) can bind it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
