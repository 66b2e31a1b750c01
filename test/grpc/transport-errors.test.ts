import assert from 'node:assert/strict';
import { deflateSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { recordToProto } from '../../src/grpc/convert.js';
import * as rs from '../../src/gen/roster/v1/registry_service.js';
import { registration } from '../core/fixtures.js';
import { startHarness, type Harness } from './helpers.js';
import { grpcFrame, rawCall } from './raw-http2.js';

const REGISTER = rs.RegistryServiceService.register.path;
const register = rs.RegisterRequest.encode({
  instance: recordToProto({ ...registration({ instanceId: 'raw-1' }), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }),
}).finish();

/** Requests grpc-js itself answers INTERNAL, sent as raw HTTP/2: the client's fault, so INVALID_ARGUMENT. */
describe('transport-level client faults are INVALID_ARGUMENT, not INTERNAL', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const unchanged = async (send: () => Promise<{ code: number; details: string }>): Promise<{ code: number; details: string }> => {
    const revision = h.registry.revision;
    const status = await send();
    assert.equal(h.registry.revision, revision, 'a refused request changed the registry');
    return status;
  };

  for (const encoding of ['gzip', 'deflate']) {
    test(`a corrupt ${encoding} message`, async () => {
      const status = await unchanged(() => rawCall(h.server.port, REGISTER, [grpcFrame(Buffer.from('these bytes are not compressed'), true)], { 'grpc-encoding': encoding }));
      assert.deepEqual(status, { code: grpc.status.INVALID_ARGUMENT, details: 'request message could not be decompressed with its grpc-encoding' });
    });
  }

  test('well-formed compressed messages are still accepted', async () => {
    const gzip = await rawCall(h.server.port, REGISTER, [grpcFrame(gzipSync(register), true)], { 'grpc-encoding': 'gzip' });
    assert.equal(gzip.code, grpc.status.OK, gzip.details);
    const deflate = await rawCall(h.server.port, REGISTER, [grpcFrame(deflateSync(register), true)], { 'grpc-encoding': 'deflate' });
    assert.equal(deflate.code, grpc.status.OK, deflate.details);
  });

  for (const timeout of ['1x', 'S', 'soon', '99999999999']) {
    test(`a malformed grpc-timeout header (${JSON.stringify(timeout)})`, async () => {
      const status = await unchanged(() => rawCall(h.server.port, REGISTER, [grpcFrame(register)], { 'grpc-timeout': timeout }));
      assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(status.details, `grpc-timeout: not a valid timeout: "${timeout}"`);
    });
  }

  test('a well-formed grpc-timeout is honoured as before', async () => {
    const status = await rawCall(h.server.port, rs.RegistryServiceService.getInstance.path, [grpcFrame(rs.GetInstanceRequest.encode({ app: 'billing', instanceId: 'raw-1' }).finish())], {
      'grpc-timeout': '5S',
    });
    assert.equal(status.code, grpc.status.OK, status.details);
  });
});
