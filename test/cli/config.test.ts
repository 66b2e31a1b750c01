import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, describeSettings, envVarOf, flagOf, loadConfig, resolveConfig } from '../../src/cli/config.js';

test('defaults apply when no source sets a value', () => {
  const c = resolveConfig({});
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8761);
  assert.equal(c.httpPort, 8762);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.leaseRenewalSecs, 30);
  assert.equal(c.leaseDurationSecs, 90);
  assert.equal(c.selfPreservation, true);
  assert.equal(c.renewalThresholdPercent, 85);
  assert.equal(c.evictionIntervalMs, 1000);
  assert.equal(c.changeLogSize, 100_000);
  assert.equal(c.writesPerSecond, 50_000);
  assert.equal(c.writeBurst, 20_000);
  assert.equal(c.maxWatchers, 10_000);
  assert.equal(c.shutdownGraceMs, 5000);
  assert.match(c.nodeId, /^[A-Za-z0-9][A-Za-z0-9._:-]*-[0-9a-f]{6}$/);
  assert.notEqual(resolveConfig({}).nodeId, c.nodeId, 'the default node id is random');
});

test('precedence: defaults < file < env < flags', () => {
  const file = { path: 'roster.json', data: { port: 1001, httpPort: 2001, logLevel: 'debug', leaseRenewalSecs: 10 } };
  const env = { ROSTER_PORT: '1002', ROSTER_HTTP_PORT: '2002' };
  const flags = { port: '1003' };
  const c = resolveConfig({ file, env, flags });
  assert.equal(c.port, 1003, 'flag beats env and file');
  assert.equal(c.httpPort, 2002, 'env beats file');
  assert.equal(c.logLevel, 'debug', 'file beats default');
  assert.equal(c.leaseRenewalSecs, 10);
  assert.equal(c.shutdownGraceMs, 5000, 'default when nothing sets it');
});

test('env and flag strings are converted to the setting type', () => {
  const c = resolveConfig({
    env: { ROSTER_SELF_PRESERVATION: 'false', ROSTER_NODE_ID: 'node-a', ROSTER_SERVER: 'ignored:1' },
    flags: { writesPerSecond: '1000', maxWatchers: 5 },
  });
  assert.equal(c.selfPreservation, false);
  assert.equal(c.nodeId, 'node-a');
  assert.equal(c.writesPerSecond, 1000);
  assert.equal(c.maxWatchers, 5);
});

test('an empty env var does not override', () => {
  assert.equal(resolveConfig({ env: { ROSTER_PORT: '' } }).port, 8761);
});

test('validation errors name the setting, its value and its source, all at once', () => {
  assert.throws(
    () => resolveConfig({ env: { ROSTER_PORT: '70000' }, flags: { httpPort: 'abc' } }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /port=70000 \(from env ROSTER_PORT\)/);
      assert.match(err.message, /httpPort="abc" \(from flag --http-port\)/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    },
  );
  assert.throws(() => resolveConfig({ flags: { logLevel: 'loud' } }), /logLevel="loud" \(from flag --log-level\)/);
  assert.throws(() => resolveConfig({ env: { ROSTER_SELF_PRESERVATION: 'maybe' } }), /selfPreservation="maybe"/);
  assert.throws(() => resolveConfig({ flags: { nodeId: '-bad id' } }), /nodeId/);
  assert.throws(() => resolveConfig({ flags: { port: '1.5' } }), /port="1.5"/);
});

test('file values keep their JSON types and unknown file keys are refused', () => {
  assert.throws(() => resolveConfig({ file: { path: 'r.json', data: { port: '8761' } } }), /port="8761" \(from file r.json\)/);
  assert.throws(() => resolveConfig({ file: { path: 'r.json', data: { prot: 1 } } }), /unknown setting "prot"/);
  assert.throws(() => resolveConfig({ file: { path: 'r.json', data: [1] } }), /must hold a JSON object/);
});

test('lease duration must cover the renewal interval', () => {
  assert.throws(() => resolveConfig({ flags: { leaseRenewalSecs: '60', leaseDurationSecs: '30' } }), /leaseDurationSecs \(30\) must be at least leaseRenewalSecs \(60\)/);
});

test('loadConfig reads --config and reports unreadable files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-config-'));
  try {
    const path = join(dir, 'roster.json');
    writeFileSync(path, JSON.stringify({ port: 9000, maxWatchers: 7 }));
    const c = loadConfig({ config: path, maxWatchers: '8' }, { ROSTER_PORT: '9001' });
    assert.equal(c.port, 9001);
    assert.equal(c.maxWatchers, 8);
    writeFileSync(path, '{ not json');
    assert.throws(
      () => loadConfig({ config: path }, {}),
      (err: unknown) => err instanceof ConfigError && err.message.includes(path),
    );
    assert.throws(() => loadConfig({ config: join(dir, 'missing.json') }, {}), /cannot read config file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('names map to stable env vars and flags', () => {
  assert.equal(envVarOf('httpPort'), 'ROSTER_HTTP_PORT');
  assert.equal(envVarOf('renewalThresholdPercent'), 'ROSTER_RENEWAL_THRESHOLD_PERCENT');
  assert.equal(flagOf('shutdownGraceMs'), 'shutdown-grace-ms');
  const names = describeSettings().map((s) => s.name);
  assert.deepEqual(names, [
    'host',
    'port',
    'httpPort',
    'logLevel',
    'logFormat',
    'nodeId',
    'leaseRenewalSecs',
    'leaseDurationSecs',
    'selfPreservation',
    'renewalThresholdPercent',
    'selfPreservationMinLapsed',
    'maxClockSkewSecs',
    'evictionIntervalMs',
    'changeLogSize',
    'peerHoldSecs',
    'maxInstances',
    'maxInstancesPerApp',
    'maxMetadataBytes',
    'writesPerSecond',
    'writeBurst',
    'maxWatchers',
    'fullReadCacheMib',
    'eurekaPlainCacheMib',
    'shutdownGraceMs',
    'peers',
    'peersDns',
    'peerRefreshSecs',
    'clusterToken',
    'antiEntropySecs',
    'startupWaitSecs',
    'replicationQueueSize',
    'replicationTasksPerSecond',
    'clusterTokenFile',
    'credentialsFile',
    'tlsCertFile',
    'tlsKeyFile',
    'tlsCaFile',
    'tlsClientAuth',
    'httpTls',
    'httpTlsClientAuth',
    'peerTlsServerName',
    'tlsReloadSecs',
    'insecure',
    'httpHost',
    'maxConnections',
    'maxConnectionsPerAddress',
    'maxCalls',
    'maxCallsPerConnection',
    'idleConnectionSecs',
    'httpMaxHeaderBytes',
    'httpMaxBodyBytes',
  ]);
  assert.equal(envVarOf('clusterToken'), 'ROSTER_CLUSTER_TOKEN');
});

test('peer lists are validated, naming the setting', () => {
  assert.equal(resolveConfig({ flags: { peers: '10.0.0.1:8761,node-b.ns.svc:8761', insecure: true } }).peers, '10.0.0.1:8761,node-b.ns.svc:8761');
  assert.throws(() => resolveConfig({ flags: { peers: 'no-port' } }), /peers="no-port"/);
  assert.throws(() => resolveConfig({ env: { ROSTER_PEERS_DNS: 'roster-headless' } }), /peersDns=.*ROSTER_PEERS_DNS/);
});

test('a refused cluster token is never echoed: the error names the setting and the length only', () => {
  const secret = 'S3CRET'.repeat(200);
  for (const sources of [{ flags: { clusterToken: secret } }, { env: { ROSTER_CLUSTER_TOKEN: secret } }]) {
    assert.throws(
      () => resolveConfig(sources),
      (err: Error) => err.message.includes('clusterToken=<secret of 1200 characters>') && !err.message.includes('S3CRET'),
    );
  }
});
