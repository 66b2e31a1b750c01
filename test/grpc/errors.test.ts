import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { RegistryError, invalid, type ErrorKind } from '../../src/core/errors.js';
import { toRpcStatus } from '../../src/grpc/errors.js';

/** A logger that keeps what it writes, to see what was logged and what was not. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('toRpcStatus', () => {
  const cases: Array<{ name: string; err: unknown; code: status; details: string; logged: boolean }> = [
    {
      name: 'invalid_argument names the field',
      err: invalid('instance.port.number', 'must be 0..65535'),
      code: status.INVALID_ARGUMENT,
      details: 'instance.port.number: must be 0..65535',
      logged: false,
    },
    { name: 'a field missing from the message is prefixed', err: new RegistryError('invalid_argument', 'too long', 'app'), code: status.INVALID_ARGUMENT, details: 'app: too long', logged: false },
    { name: 'not_found', err: new RegistryError('not_found', 'instance a/b is not registered'), code: status.NOT_FOUND, details: 'instance a/b is not registered', logged: false },
    { name: 'resource_exhausted', err: new RegistryError('resource_exhausted', 'rate limit exceeded'), code: status.RESOURCE_EXHAUSTED, details: 'rate limit exceeded', logged: false },
    { name: 'unavailable', err: new RegistryError('unavailable', 'starting'), code: status.UNAVAILABLE, details: 'starting', logged: false },
    { name: 'unauthenticated', err: new RegistryError('unauthenticated', 'bad token'), code: status.UNAUTHENTICATED, details: 'bad token', logged: false },
    { name: 'failed_precondition', err: new RegistryError('failed_precondition', 'not now'), code: status.FAILED_PRECONDITION, details: 'not now', logged: false },
    { name: 'an unknown kind is internal', err: new RegistryError('exploded' as ErrorKind, 'secret path /etc/x'), code: status.INTERNAL, details: 'internal error', logged: true },
    { name: 'a plain Error is internal', err: new TypeError('cannot read properties of undefined (secret)'), code: status.INTERNAL, details: 'internal error', logged: true },
    { name: 'a thrown string is internal', err: 'boom secret', code: status.INTERNAL, details: 'internal error', logged: true },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const { logger, lines } = capturingLogger();
      assert.deepEqual(toRpcStatus(c.err, logger), { code: c.code, details: c.details });
      assert.equal(lines.length, c.logged ? 1 : 0);
      if (c.logged) {
        assert.equal(lines[0]!.msg, 'internal error');
        assert.ok(lines[0]!.err, 'the cause is logged');
        assert.doesNotMatch(c.details, /secret/);
      }
    });
  }
});
