import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { service as reference } from 'grpc-health-check';
import { HEALTH_SERVICE_DEFINITION, HealthService, type ServingStatus } from '../../src/grpc/health.js';
import { call, rejectsWith, StreamReader, WAIT_MS } from './helpers.js';

/** grpc-health-check's definition, built by proto-loader from the official .proto: the reference our hand-written codecs must match. */
const official = reference as unknown as Record<'Check' | 'Watch' | 'List', grpc.MethodDefinition<unknown, unknown>>;
const STATUSES: ServingStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
const SERVICES = ['', 'roster.v1.RegistryService', 'ünïcode.Ŝervice'];

test('messages encode and decode as the official .proto does, both ways', () => {
  const ours = HEALTH_SERVICE_DEFINITION;
  for (const service of SERVICES) {
    assert.deepEqual(official.Check.requestDeserialize(ours.Check.requestSerialize({ service })), { service });
    assert.deepEqual(ours.Check.requestDeserialize(official.Check.requestSerialize({ service })), { service });
  }
  for (const status of STATUSES) {
    assert.deepEqual(official.Check.responseDeserialize(ours.Check.responseSerialize({ status })), { status });
    assert.deepEqual(ours.Check.responseDeserialize(official.Check.responseSerialize({ status })), { status });
  }
  const statuses = { '': { status: 'SERVING' }, 'a.B': { status: 'NOT_SERVING' }, 'c.D': { status: 'UNKNOWN' } } as const;
  assert.deepEqual(official.List.responseDeserialize(ours.List.responseSerialize({ statuses })), { statuses });
  assert.deepEqual(ours.List.responseDeserialize(official.List.responseSerialize({ statuses })), { statuses });
  assert.deepEqual(ours.Check.requestDeserialize(Buffer.from([0x10, 0x01, 0x0a, 0x01, 0x78])), { service: 'x' }, 'unknown fields are skipped');
});

test('Check, Watch and List served to a client built from the official .proto', async () => {
  const health = new HealthService();
  health.setStatus('', 'SERVING');
  const server = new grpc.Server();
  server.addService(HEALTH_SERVICE_DEFINITION, health.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const Client = grpc.makeClientConstructor(reference as grpc.ServiceDefinition, 'grpc.health.v1.Health');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    check: (req: { service: string }, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => grpc.ClientUnaryCall;
    list: (req: object, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: { statuses: Record<string, { status: string }> }) => void) => grpc.ClientUnaryCall;
    watch: (req: { service: string }, opts: Partial<grpc.CallOptions>) => grpc.ClientReadableStream<{ status: string }>;
  };
  try {
    assert.deepEqual(await call(client.check.bind(client), { service: '' }), { status: 'SERVING' });
    await rejectsWith(call(client.check.bind(client), { service: 'x.Y' }), grpc.status.NOT_FOUND, /unknown for service x\.Y/);

    const watch = client.watch({ service: 'x.Y' }, { deadline: Date.now() + WAIT_MS });
    const reader = new StreamReader(watch);
    assert.equal((await reader.next()).status, 'SERVICE_UNKNOWN', 'a name never set');
    health.setStatus('x.Y', 'NOT_SERVING');
    health.setStatus('other.Z', 'SERVING');
    health.setStatus('x.Y', 'SERVING');
    assert.deepEqual([(await reader.next()).status, (await reader.next()).status], ['NOT_SERVING', 'SERVING'], 'only its own name, every change');
    watch.cancel();

    assert.deepEqual(await call(client.list.bind(client), {}), { statuses: { '': { status: 'SERVING' }, 'x.Y': { status: 'SERVING' }, 'other.Z': { status: 'SERVING' } } });
  } finally {
    client.close();
    server.forceShutdown();
  }
});
