import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { ConfigError, resolveConfig } from '../../src/cli/config.js';
import { startNode, type RosterNode } from '../../src/cli/node.js';
import { RosterClient } from '../../src/client/index.js';
import { captureLogger, waitFor } from '../client/harness.js';
import { protoInstance } from '../grpc/helpers.js';
import { TestPki } from './pki.js';
import { freePort } from '../support/ports.js';

describe('a 3-node cluster over mTLS, without a cluster token', () => {
  const pki = new TestPki();
  const ca = pki.ca('cluster-ca');
  const nodes: RosterNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    pki.close();
  });

  test('peers authenticate by certificate and converge; a client needs a certificate from the same CA', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const ports = await Promise.all(names.map(() => freePort()));
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    for (const [k, name] of names.entries()) {
      const files = pki.leaf(ca, name);
      const config = resolveConfig({
        flags: {
          port: ports[k],
          httpPort: 0,
          nodeId: name,
          logLevel: 'silent',
          shutdownGraceMs: 500,
          startupWaitSecs: 0,
          antiEntropySecs: 1,
          peers: addresses.filter((_, j) => j !== k).join(','),
          tlsCertFile: files.cert,
          tlsKeyFile: files.key,
          tlsCaFile: files.ca,
        },
      });
      nodes.push(await startNode(config, pino({ level: 'silent' })));
    }
    const clientFiles = pki.leaf(ca, 'app-client');
    const credentials = grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(clientFiles.key), readFileSync(clientFiles.cert));
    const client = new RosterClient(addresses[0]!, { credentials });
    try {
      await client.register(protoInstance({ app: 'billing', instanceId: 'over-mtls' }));
      for (const node of nodes.slice(1)) await waitFor('the record on every peer', () => node.registry.record('billing', 'over-mtls') !== undefined, 10_000);
      await waitFor('every Replicate stream up', () => nodes.every((n) => n.replicator.peers().every((p) => p.connected)), 10_000);
    } finally {
      client.close();
    }
    const plain = new RosterClient(addresses[1]!, { timeoutMs: 2_000 });
    await assert.rejects(plain.getInstance('billing', 'over-mtls'), /UNAVAILABLE|14/);
    plain.close();
  });
});

describe('safe defaults', () => {
  test('a node with peers refuses to start without a cluster credential unless --insecure', () => {
    assert.throws(
      () => resolveConfig({ flags: { peers: '127.0.0.1:9' } }),
      (err: unknown) => err instanceof ConfigError && /needs a cluster credential/.test(err.message),
    );
    assert.throws(() => resolveConfig({ flags: { peersDns: 'roster:8761' } }), /needs a cluster credential/);
    assert.equal(resolveConfig({ flags: { peers: '127.0.0.1:9', insecure: true } }).insecure, true);
    assert.equal(resolveConfig({ flags: { peers: '127.0.0.1:9' }, env: { ROSTER_CLUSTER_TOKEN: 'from-the-environment' } }).clusterToken, 'from-the-environment');
    assert.ok(resolveConfig({ flags: { peers: '127.0.0.1:9', clusterTokenFile: '/run/secrets/token' } }));
    assert.throws(() => resolveConfig({ flags: { tlsCertFile: '/x.crt' } }), /tlsCertFile and tlsKeyFile go together/);
    assert.throws(() => resolveConfig({ flags: { clusterToken: 'a', clusterTokenFile: '/b' } }), /not both/);
  });

  test('unreadable TLS material or secrets stop the start with a configuration error naming the file', async () => {
    const base = { port: 0, httpPort: 0, nodeId: 'broken', logLevel: 'silent' as const };
    await assert.rejects(
      startNode(resolveConfig({ flags: { ...base, tlsCertFile: '/nonexistent/node.crt', tlsKeyFile: '/nonexistent/node.key' } }), pino({ level: 'silent' })),
      (err: unknown) => err instanceof ConfigError && /\/nonexistent\/node\.crt: ENOENT/.test(err.message),
    );
    await assert.rejects(startNode(resolveConfig({ flags: { ...base, credentialsFile: '/nonexistent/credentials.json' } }), pino({ level: 'silent' })), /credentials\.json: ENOENT/);
    await assert.rejects(startNode(resolveConfig({ flags: { ...base, clusterTokenFile: '/nonexistent/token' } }), pino({ level: 'silent' })), /\/nonexistent\/token: ENOENT/);
  });

  test('an open node says so once at start-up; with credentials it does not', async () => {
    const open = captureLogger();
    const node = await startNode(resolveConfig({ flags: { port: 0, httpPort: 0, nodeId: 'open', shutdownGraceMs: 0 } }), open.logger);
    await node.stop();
    assert.equal(open.lines.filter((l) => String(l.msg).startsWith('open node')).length, 1);

    const pki = new TestPki();
    try {
      const token = `${pki.dir}/token`;
      writeFileSync(token, 'cluster-secret-from-a-file\n');
      const closed = captureLogger();
      const secured = await startNode(
        resolveConfig({ flags: { port: 0, httpPort: 0, nodeId: 'closed', shutdownGraceMs: 0, clusterTokenFile: token, peers: '127.0.0.1:9', startupWaitSecs: 0 } }),
        closed.logger,
      );
      await secured.stop();
      assert.equal(closed.lines.filter((l) => String(l.msg).startsWith('open node')).length, 0);
      assert.ok(!JSON.stringify(closed.lines).includes('cluster-secret-from-a-file'), 'the token is never logged');
    } finally {
      pki.close();
    }
  });
});
