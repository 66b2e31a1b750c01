import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeHeaders, HpackDecoder, HpackError, type HeaderField } from '../../src/grpc/http2/hpack.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('HPACK decoder (RFC 7541 Appendix C)', () => {
  it('C.3: requests without Huffman coding, the dynamic table carried from one to the next', () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.deepEqual(decoder.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    assert.deepEqual(decoder.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')), [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('C.4: the same requests with Huffman coding', () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))[3], [':authority', 'www.example.com']);
    assert.deepEqual(decoder.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))[4], ['cache-control', 'no-cache']);
    assert.deepEqual(decoder.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))[4], ['custom-key', 'custom-value']);
  });

  it('C.6: responses with Huffman coding evict from a 256-byte table', () => {
    const decoder = new HpackDecoder({ maxTableSize: 256 });
    // The encoder announces the smaller table first (a size update is allowed at a block's start).
    decoder.decode(hex('3fe1 01'));
    assert.deepEqual(decoder.decode(hex('4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3')), [
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
    assert.deepEqual(decoder.decode(hex('4883 640e ffc1 c0bf')), [
      [':status', '307'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
    assert.deepEqual(
      decoder.decode(
        hex(
          '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
        ),
      ),
      [
        [':status', '200'],
        ['cache-control', 'private'],
        ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
        ['location', 'https://www.example.com'],
        ['content-encoding', 'gzip'],
        ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
      ],
    );
  });

  it('refuses what RFC 7541 calls a decoding error', () => {
    const refused = (block: string, options = {}): void => assert.throws(() => new HpackDecoder(options).decode(hex(block)), HpackError, block);
    refused('80'); // index 0
    refused('be'); // index 62: the dynamic table is empty
    refused('3fe2 1f', { maxTableSize: 4096 }); // a size update above what this side allows (4097)
    refused('82 20'); // a size update after a field
    refused('4088 25a8'); // a string running past the block
    refused('ff ff ff ff ff 0f'); // an integer too large
    refused('0081 ff'); // Huffman padding longer than 7 bits
    refused('0081 fe'); // Huffman padding that is not all ones
  });

  it('reads back whatever encodeHeaders writes, static-table fields included', () => {
    const field = fc.tuple(
      fc.oneof(fc.constantFrom(':status', 'content-type', 'grpc-status', 'grpc-message', 'user-agent', 'date'), fc.stringMatching(/^[a-z][a-z0-9-]{0,40}$/)),
      fc.oneof(fc.constantFrom('200', '404', ''), fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 })),
    );
    fc.assert(
      fc.property(fc.array(field, { maxLength: 20 }), (fields: HeaderField[]) => {
        assert.deepEqual(new HpackDecoder().decode(encodeHeaders(fields)), fields);
      }),
    );
    assert.deepEqual([...encodeHeaders([[':status', '200']])], [0x88]);
  });
});
