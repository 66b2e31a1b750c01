import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { RegistryServiceClient } from '../../src/gen/roster/v1/registry_service.js';
import { GrpcPeerLink, peerCredentials } from '../../src/grpc/peer-link.js';
import { startGrpcServer, type ClientAuth, type GrpcServerHandle } from '../../src/grpc/server.js';
import { startHttpServer } from '../../src/http/server.js';
import { adminRoutes } from '../../src/admin/routes.js';
import { createMetrics } from '../../src/grpc/metrics.js';
import { buildPolicy } from '../../src/security/credentials-file.js';
import { TlsMaterial } from '../../src/security/tls-material.js';
import { registration } from '../core/fixtures.js';
import { StreamReader, WAIT_MS, silentLogger } from '../grpc/helpers.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { ReplicationServiceService } from '../../src/gen/roster/v1/replication_service.js';
import { TestPki } from './pki.js';

const logger = silentLogger();

interface Server {
  readonly registry: Registry;
  readonly handle: GrpcServerHandle;
  readonly address: string;
  readonly material: TlsMaterial;
}

/** A gRPC server (registry and replication) with TLS from `files`. */
async function tlsServer(files: { cert: string; key: string; ca?: string }, clientAuth: ClientAuth = 'require'): Promise<Server> {
  const clock = new FakeClock();
  const registry = new Registry({ clock });
  const material = new TlsMaterial({ certFile: files.cert, keyFile: files.key, ...(files.ca ? { caFile: files.ca } : {}) }, logger);
  const policy = buildPolicy({ mtls: material.hasCa && clientAuth === 'require' });
  const replication = createReplicationService({ registry, nodeId: 'server', clock, logger });
  const handle = await startGrpcServer({
    registry,
    logger,
    clock,
    tls: material,
    clientAuth,
    policy: () => policy,
    extraServices: [{ definition: ReplicationServiceService, implementation: replication.implementation as unknown as grpc.UntypedServiceImplementation }],
  });
  return { registry, handle, address: `127.0.0.1:${handle.port}`, material };
}

function client(address: string, credentials: grpc.ChannelCredentials): RegistryServiceClient {
  return new RegistryServiceClient(address, credentials);
}

function getInstance(c: RegistryServiceClient): Promise<grpc.status> {
  return new Promise((resolve) => {
    c.getInstance({ app: 'billing', instanceId: 'i-1' }, new grpc.Metadata(), { deadline: Date.now() + WAIT_MS }, (err) => resolve(err ? err.code : grpc.status.OK));
  });
}

const pem = (path: string): Buffer => readFileSync(path);

/** The SHA-256 fingerprint of the certificate a fresh TLS handshake gets from `port`. */
function servedFingerprint(port: number, caFile: string, clientFiles?: { cert: string; key: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ca: pem(caFile), ALPNProtocols: ['h2'], servername: 'localhost', ...(clientFiles ? { cert: pem(clientFiles.cert), key: pem(clientFiles.key) } : {}) },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      },
    );
    socket.once('error', reject);
  });
}

describe('TLS and mTLS on the gRPC port', () => {
  const pki = new TestPki();
  const ca = pki.ca('cluster-ca');
  const otherCa = pki.ca('other-ca');
  const serverFiles = pki.leaf(ca, 'node-a');
  const goodClient = pki.leaf(ca, 'client-good');
  const foreignClient = pki.leaf(otherCa, 'client-foreign');
  let server: Server;
  before(async () => {
    server = await tlsServer(serverFiles);
    server.registry.register(registration());
  });
  after(async () => {
    await server.handle.shutdown(0);
    server.material.close();
    pki.close();
  });

  test('a client with a certificate from the cluster CA is served', async () => {
    const c = client(server.address, grpc.credentials.createSsl(pem(ca.cert), pem(goodClient.key), pem(goodClient.cert)));
    assert.equal(await getInstance(c), grpc.status.OK);
    c.close();
  });

  test('a client without a certificate is refused at the handshake under mTLS', async () => {
    const c = client(server.address, grpc.credentials.createSsl(pem(ca.cert)));
    assert.equal(await getInstance(c), grpc.status.UNAVAILABLE);
    c.close();
  });

  test('a client with a certificate from another CA is refused, and a plain-text client too', async () => {
    const foreign = client(server.address, grpc.credentials.createSsl(pem(ca.cert), pem(foreignClient.key), pem(foreignClient.cert)));
    assert.equal(await getInstance(foreign), grpc.status.UNAVAILABLE);
    foreign.close();
    const plain = client(server.address, grpc.credentials.createInsecure());
    assert.equal(await getInstance(plain), grpc.status.UNAVAILABLE);
    plain.close();
  });

  test('a peer with a certificate from another CA cannot replicate; one from the cluster CA can', async () => {
    const foreignMaterial = new TlsMaterial({ certFile: foreignClient.cert, keyFile: foreignClient.key, caFile: ca.cert }, logger);
    const foreign = new GrpcPeerLink(server.address, { token: undefined, credentials: peerCredentials(foreignMaterial), callTimeoutMs: WAIT_MS });
    await assert.rejects(foreign.digest(), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    foreign.close();
    foreignMaterial.close();
    const peerMaterial = new TlsMaterial({ certFile: goodClient.cert, keyFile: goodClient.key, caFile: ca.cert }, logger);
    const peer = new GrpcPeerLink(server.address, { token: undefined, credentials: peerCredentials(peerMaterial), callTimeoutMs: WAIT_MS });
    const digest = await peer.digest();
    assert.equal(digest.nodeId, 'server');
    assert.equal(digest.apps.get('billing')?.count, 1);
    peer.close();
    peerMaterial.close();
  });

  test('a peer whose server certificate comes from another CA is not trusted by the dialling node', async () => {
    const impostorFiles = pki.leaf(otherCa, 'impostor');
    const impostor = await tlsServer({ ...impostorFiles, ca: ca.cert });
    const material = new TlsMaterial({ certFile: goodClient.cert, keyFile: goodClient.key, caFile: ca.cert }, logger);
    const link = new GrpcPeerLink(impostor.address, { token: undefined, credentials: peerCredentials(material), callTimeoutMs: WAIT_MS });
    await assert.rejects(link.digest(), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    link.close();
    material.close();
    await impostor.handle.shutdown(0);
    impostor.material.close();
  });
});

describe('TLS without client certificates', () => {
  test('server-only TLS: a client verifying the CA is served without a certificate', async () => {
    const pki = new TestPki();
    try {
      const ca = pki.ca('ca');
      const files = pki.leaf(ca, 'node');
      const server = await tlsServer({ cert: files.cert, key: files.key });
      server.registry.register(registration());
      const c = client(server.address, grpc.credentials.createSsl(pem(ca.cert)));
      assert.equal(await getInstance(c), grpc.status.OK);
      c.close();
      await server.handle.shutdown(0);
      server.material.close();
    } finally {
      pki.close();
    }
  });
});

describe('certificate rotation', () => {
  test('a rotated certificate is served to new handshakes while an open Watch stream carries on', async () => {
    const pki = new TestPki();
    const ca = pki.ca('ca');
    const first = pki.leaf(ca, 'node', 'server');
    const clientFiles = pki.leaf(ca, 'client');
    const server = await tlsServer(first);
    try {
      const before = await servedFingerprint(server.handle.port, ca.cert, clientFiles);
      const c = client(server.address, grpc.credentials.createSsl(pem(ca.cert), pem(clientFiles.key), pem(clientFiles.cert)));
      const watch = new StreamReader(c.watch({ app: '', vip: '', nodeId: '' }));
      assert.equal((await watch.next()).progress, true);

      pki.leaf(ca, 'node-rotated', 'server');
      assert.equal(await server.material.reload(), true);
      assert.equal(await server.material.reload(), false, 'unchanged files are not applied twice');
      const afterRotation = await servedFingerprint(server.handle.port, ca.cert, clientFiles);
      assert.notEqual(afterRotation, before);

      // The stream opened before the rotation still delivers changes.
      server.registry.register(registration());
      const change = await watch.next();
      assert.equal(change.changes[0]?.instance?.instanceId, 'i-1');
      watch.stream.cancel();
      c.close();
    } finally {
      await server.handle.shutdown(0);
      server.material.close();
      pki.close();
    }
  });

  test('a broken update (key of another certificate) is ignored and the last good material stays', async () => {
    const pki = new TestPki();
    const ca = pki.ca('ca');
    const files = pki.leaf(ca, 'node', 'server');
    const other = pki.leaf(ca, 'other', 'other');
    const material = new TlsMaterial({ certFile: files.cert, keyFile: files.key, caFile: ca.cert }, logger);
    try {
      const good = material.pem.cert;
      copyFileSync(other.key, files.key);
      assert.equal(await material.reload(), false);
      assert.deepEqual(material.pem.cert, good);
    } finally {
      material.close();
      pki.close();
    }
  });

  test('material that cannot be used fails at start, naming the file', () => {
    const pki = new TestPki();
    try {
      const ca = pki.ca('ca');
      const files = pki.leaf(ca, 'node');
      assert.throws(() => new TlsMaterial({ certFile: files.cert, keyFile: `${pki.dir}/missing.key` }, logger), /missing\.key: ENOENT/);
      assert.throws(() => new TlsMaterial({ certFile: files.cert, keyFile: ca.key }, logger), /is not usable/);
    } finally {
      pki.close();
    }
  });
});

describe('TLS on the HTTP port', () => {
  test('HTTPS with the node certificate, client certificates verified when required, reloaded for new handshakes', async () => {
    const pki = new TestPki();
    const ca = pki.ca('ca');
    const files = pki.leaf(ca, 'node', 'server');
    const clientFiles = pki.leaf(ca, 'client');
    const material = new TlsMaterial({ certFile: files.cert, keyFile: files.key, caFile: ca.cert }, logger);
    const registry = new Registry({ clock: new FakeClock() });
    const http = await startHttpServer({
      port: 0,
      logger,
      tls: material,
      clientAuth: 'require',
      mounts: [adminRoutes({ metrics: createMetrics(registry), health: () => ({ live: true, ready: true, details: {} }) })],
    });
    const get = (withCert: boolean): Promise<{ status: number; fingerprint: string }> =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: http.port,
            path: '/healthz',
            ca: pem(ca.cert),
            servername: 'localhost',
            agent: false,
            ...(withCert ? { cert: pem(clientFiles.cert), key: pem(clientFiles.key) } : {}),
          },
          (res) => {
            const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      const first = await get(true);
      assert.equal(first.status, 200);
      await assert.rejects(get(false));
      pki.leaf(ca, 'node-rotated', 'server');
      assert.equal(await material.reload(), true);
      const second = await get(true);
      assert.equal(second.status, 200);
      assert.notEqual(second.fingerprint, first.fingerprint);
    } finally {
      await http.close();
      material.close();
      pki.close();
    }
  });
});
