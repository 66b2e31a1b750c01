import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { resolveConfig } from '../../src/cli/config.js';
import { startNode, type RosterNode } from '../../src/cli/node.js';

/** A node on 127.0.0.1 with free ports and a silent logger; `flags` override settings. */
export function startTestNode(flags: Record<string, unknown> = {}): Promise<RosterNode> {
  const config = resolveConfig({
    flags: { port: 0, httpPort: 0, logLevel: 'silent', nodeId: 'test-node', shutdownGraceMs: 500, ...flags },
  });
  return startNode(config, pino({ level: 'silent' }));
}

/** A logger whose records land in `lines` (parsed), to assert on what a component reported. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

export { TcpProxy } from '../support/tcp-proxy.js';
export { waitFor } from '../support/wait.js';
