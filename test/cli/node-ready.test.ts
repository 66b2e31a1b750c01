import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { startTestNode } from '../client/harness.js';

const HealthClient = grpc.makeClientConstructor(healthService as grpc.ServiceDefinition, 'grpc.health.v1.Health');
type Health = grpc.Client & {
  check: (req: { service: string }, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
};

test('a standalone node reports SERVING as soon as it has started, not a recheck later', async () => {
  const node = await startTestNode();
  const client = new HealthClient(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Health;
  try {
    const status = await new Promise<string>((resolve, reject) =>
      client.check({ service: 'roster.v1.RegistryService' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res.status))),
    );
    assert.equal(status, 'SERVING');
  } finally {
    client.close();
    await node.stop();
  }
});
