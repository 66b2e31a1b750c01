import { lookup } from 'node:dns/promises';

/** Splits "host:port,host:port" into addresses (empty string: no peers). */
export function staticPeers(list: string): () => Promise<readonly string[]> {
  const peers = list
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  return async () => peers;
}

/**
 * Resolves "name:port" on every call (a Kubernetes headless service answers one address per
 * ready pod), so peers that come and go are dialled and shut down at the next refresh.
 */
export function dnsPeers(
  nameAndPort: string,
  resolve: (name: string) => Promise<readonly string[]> = async (name) => (await lookup(name, { all: true })).map((a) => a.address),
): () => Promise<readonly string[]> {
  const colon = nameAndPort.lastIndexOf(':');
  const name = nameAndPort.slice(0, colon);
  const port = nameAndPort.slice(colon + 1);
  return async () => {
    const addresses = await resolve(name);
    return [...new Set(addresses)].sort().map((ip) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`));
  };
}
