import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boolean, integer, oneOf, Refused, text, verdict } from '../../src/security/checks.js';

test('checks pass a valid value through and say what a refused one must be', () => {
  assert.deepEqual(verdict(integer(0, 10), 10), { ok: true, value: 10 });
  for (const bad of [11, -1, 1.5, '5', Number.NaN, undefined]) assert.deepEqual(verdict(integer(0, 10), bad), { ok: false, problem: 'must be an integer from 0 to 10' });
  assert.deepEqual(verdict(boolean, 'true'), { ok: false, problem: 'must be true or false' });
  assert.deepEqual(verdict(oneOf(['a', 'b']), 'c'), { ok: false, problem: 'must be one of a, b' });
  assert.deepEqual(verdict(oneOf(['a', 'b']), 'b'), { ok: true, value: 'b' });
  const name = text({ min: 1, max: 3, format: /^[a-z]+$/, says: 'must be lower-case letters' });
  assert.deepEqual(
    ['', 'abcd', 'aB', 7, 'abc'].map((value) => verdict(name, value)),
    [
      { ok: false, problem: 'must not be empty' },
      { ok: false, problem: 'must be at most 3 characters' },
      { ok: false, problem: 'must be lower-case letters' },
      { ok: false, problem: 'must be a string' },
      { ok: true, value: 'abc' },
    ],
  );
  assert.deepEqual(verdict(text({ min: 16 }), 'short'), { ok: false, problem: 'must be at least 16 characters' });
  assert.deepEqual(verdict(text({ format: (s) => s.split(',').length === 2 }), 'a'), { ok: false, problem: 'is not in the expected format' });
});

test('only a refusal is a verdict: any other error is a bug and is thrown on', () => {
  assert.deepEqual(
    verdict(() => {
      throw new Refused('no');
    }, 1),
    { ok: false, problem: 'no' },
  );
  assert.throws(
    () =>
      verdict(() => {
        throw new TypeError('bug');
      }, 1),
    TypeError,
  );
});
