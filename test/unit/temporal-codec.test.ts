import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, parsePayloadKeys, payloadKeyId } from '../../src/temporal-codec';

const secret = { prompt: 'the secret prompt of team a', progressToken: 'zpj_not_for_temporal' };
const key = () => randomBytes(32);
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

test('payload codec: AES-256-GCM round trip; the ciphertext holds neither the data nor the key, and differs every time', async () => {
  const k = key();
  const codec = new AesGcmPayloadCodec([k]);
  const plain = defaultPayloadConverter.toPayload(secret);
  const [once] = await codec.encode([plain]);
  const [twice] = await codec.encode([plain]);
  assert.equal(text(once.metadata?.encoding), ENCRYPTED_ENCODING);
  assert.equal(text(once.metadata?.['encryption-key-id']), payloadKeyId(k));
  assert.doesNotMatch(text(once.data), /secret prompt|zpj_/);
  assert.ok(!Buffer.from(once.data ?? []).includes(k), 'the key is not in the payload');
  assert.notDeepEqual(once.data, twice.data, 'a fresh IV each time');
  const [back] = await codec.decode([once]);
  assert.deepEqual(defaultPayloadConverter.fromPayload(back), secret);
});

test('payload codec: a tampered payload or an unknown key is an error, never wrong data; old keys still decrypt after a rotation; plain payloads pass', async () => {
  const [oldKey, newKey] = [key(), key()];
  const [sealed] = await new AesGcmPayloadCodec([oldKey]).encode([defaultPayloadConverter.toPayload(secret)]);
  const tampered = { ...sealed, data: Buffer.from(sealed.data ?? []).map((b, i) => (i === 20 ? b ^ 1 : b)) };
  await assert.rejects(new AesGcmPayloadCodec([oldKey]).decode([tampered]), /unable to authenticate|auth/i);
  await assert.rejects(
    new AesGcmPayloadCodec([newKey]).decode([sealed]),
    new RegExp(`key ${payloadKeyId(oldKey)}, which TEMPORAL_PAYLOAD_KEYS does not hold`),
  );
  const rotated = new AesGcmPayloadCodec([newKey, oldKey]);
  assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([sealed]))[0]), secret);
  const [fresh] = await rotated.encode([defaultPayloadConverter.toPayload(1)]);
  assert.equal(text(fresh.metadata?.['encryption-key-id']), payloadKeyId(newKey), 'the first key encrypts');
  const plain = defaultPayloadConverter.toPayload('written before encryption');
  assert.deepEqual(await rotated.decode([plain]), [plain]);
});

test('TEMPORAL_PAYLOAD_KEYS: 32-byte base64 keys, comma-separated; a bad one is named by position, never echoed', () => {
  const a = key().toString('base64');
  const b = key().toString('base64');
  assert.equal(parsePayloadKeys(`${a}, ${b}`).length, 2);
  assert.throws(
    () => parsePayloadKeys(`${a},c2hvcnQ=`),
    (err: Error) => /key 2 is not 32 bytes of base64/.test(err.message) && !err.message.includes('c2hvcnQ'),
  );
  assert.throws(() => parsePayloadKeys(' , '), /no key given/);
});
