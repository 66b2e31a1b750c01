import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { recordToProto } from '../../src/grpc/convert.js';
import * as rs from '../../src/gen/roster/v1/registry_service.js';
import { registration } from '../core/fixtures.js';
import { call, startHarness, WAIT_MS, type Harness } from './helpers.js';
import { connect, grpcFrame, openCall, rawCall } from './raw-http2.js';

const REGISTER = rs.RegistryServiceService.register.path;
const register = (instanceId: string): Buffer =>
  Buffer.from(rs.RegisterRequest.encode({ instance: recordToProto({ ...registration({ instanceId }), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }) }).finish());

/**
 * Unary RegistryService calls take the fast path (unary-fast-path.ts): requests only it
 * answers this way show it is in use, and every malformed one changes nothing.
 */
describe('the unary fast path', () => {
  let h: Harness;
  const warnings: string[] = [];
  const observed: Array<{ method: string; code: grpc.status }> = [];
  before(async () => {
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    h = await startHarness({ logger, observer: { observe: (method, code) => void observed.push({ method, code }) } });
  });
  after(() => h.close());

  const refused = async (frames: Buffer[], code: grpc.status, details: RegExp, headers = {}): Promise<void> => {
    const revision = h.registry.revision;
    const status = await rawCall(h.server.port, REGISTER, frames, headers);
    assert.equal(status.code, code, status.details);
    assert.match(status.details, details);
    assert.equal(h.registry.revision, revision, 'a refused request changed the registry');
  };

  test('is installed: grpc-js internals were found', () => {
    assert.deepEqual(
      warnings.filter((w) => w.includes('fast path')),
      [],
    );
  });

  test('a well-formed Register is served, observed OK, and readable back', async () => {
    const status = await rawCall(h.server.port, REGISTER, [grpcFrame(register('fast-1'))]);
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.ok(observed.some((o) => o.method === REGISTER && o.code === grpc.status.OK));
    const found = await call(h.client.getInstance.bind(h.client), { app: 'billing', instanceId: 'fast-1' });
    assert.equal(found.instance?.instanceId, 'fast-1');
  });

  test('two request messages on a unary call are INVALID_ARGUMENT', () =>
    refused([grpcFrame(register('two-1')), grpcFrame(register('two-2'))], grpc.status.INVALID_ARGUMENT, /exactly one request message/));

  test('no request message is INVALID_ARGUMENT', () => refused([], grpc.status.INVALID_ARGUMENT, /without its request message/));

  test('a message cut short is INVALID_ARGUMENT', () => refused([grpcFrame(register('cut-1')).subarray(0, 20)], grpc.status.INVALID_ARGUMENT, /cut short \(15 of \d+ bytes\)/));

  test('a compressed flag without grpc-encoding is INVALID_ARGUMENT', () => refused([grpcFrame(register('flag-1'), true)], grpc.status.INVALID_ARGUMENT, /flagged compressed/));

  test('a declared length beyond the 4 MiB receive limit is RESOURCE_EXHAUSTED before the body arrives', () => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(5 * 1024 * 1024, 1);
    return refused([header], grpc.status.RESOURCE_EXHAUSTED, /larger than max/);
  });

  test('a client that drops its connection mid-call releases its call slot and is observed CANCELLED', async () => {
    const session = connect(h.server.port);
    try {
      const stream = openCall(session, REGISTER);
      stream.on('error', () => undefined);
      stream.write(grpcFrame(register('reset-1')).subarray(0, 10));
      await waitFor(() => h.server.connectionStats().calls === 1, 'the call to be admitted');
      session.destroy();
      await waitFor(() => h.server.connectionStats().calls === 0, 'the call slot to be released');
      await waitFor(() => observed.some((o) => o.method === REGISTER && o.code === grpc.status.CANCELLED), `CANCELLED to be observed: ${JSON.stringify(observed)}`);
    } finally {
      session.close();
    }
    assert.equal(h.registry.record('billing', 'reset-1'), undefined);
  });
});

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
