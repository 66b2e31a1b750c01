import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsPeers, staticPeers } from '../../src/replication/peers.js';

test('static peers: a comma-separated list, blanks ignored', async () => {
  assert.deepEqual(await staticPeers(' 10.0.0.1:8761, node-b:8761 ,')(), ['10.0.0.1:8761', 'node-b:8761']);
  assert.deepEqual(await staticPeers('')(), []);
});

test('DNS peers: every answer becomes host:port, deduplicated and sorted, IPv6 in brackets, resolved on every call', async () => {
  const answers = [['10.0.0.2', '10.0.0.1', '10.0.0.2', 'fd00::1'], ['10.0.0.3']];
  const asked: string[] = [];
  const resolve = dnsPeers('roster-headless.ns.svc.cluster.local:8761', async (name) => {
    asked.push(name);
    return answers.shift()!;
  });
  assert.deepEqual(await resolve(), ['10.0.0.1:8761', '10.0.0.2:8761', '[fd00::1]:8761']);
  assert.deepEqual(await resolve(), ['10.0.0.3:8761']);
  assert.deepEqual(asked, ['roster-headless.ns.svc.cluster.local', 'roster-headless.ns.svc.cluster.local']);
});

test('DNS peers: a real lookup of localhost answers loopback', async () => {
  const peers = await dnsPeers('localhost:8761')();
  assert.ok(peers.length > 0);
  assert.ok(
    peers.every((p) => p === '127.0.0.1:8761' || p === '[::1]:8761'),
    peers.join(','),
  );
});
