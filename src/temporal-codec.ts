/**
 * Optional encryption of every payload zeropool hands to Temporal (workflow inputs and results, signals,
 * updates, activity arguments, heartbeats, failures' details): AES-256-GCM, so job payloads, prompts and
 * results are ciphertext in Temporal's database, its Web UI and exported histories. The keys come from
 * TEMPORAL_PAYLOAD_KEYS (comma-separated, each 32 bytes in base64): the first encrypts, all decrypt, so a key is
 * rotated by putting the new one first and dropping the old one once no open workflow needs it.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/** The payload encoding that marks our ciphertext. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null | undefined) => new TextDecoder().decode(bytes ?? new Uint8Array());

/** A key's id in payload metadata: the start of its SHA-256 (never the key). */
export function payloadKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Parses TEMPORAL_PAYLOAD_KEYS; throws a message that names what is wrong (never the key). */
export function parsePayloadKeys(setting: string): Buffer[] {
  const keys = setting
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0)
    .map((k, i) => {
      const key = Buffer.from(k, 'base64');
      if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== k.replace(/=+$/, ''))
        throw new Error(`TEMPORAL_PAYLOAD_KEYS: key ${i + 1} is not 32 bytes of base64 (make one with: openssl rand -base64 32)`);
      return key;
    });
  if (keys.length === 0) throw new Error('TEMPORAL_PAYLOAD_KEYS: no key given');
  return keys;
}

export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: { id: string; key: Buffer };

  constructor(keys: Buffer[]) {
    this.byId = new Map(keys.map((key) => [payloadKeyId(key), key]));
    this.current = { id: payloadKeyId(keys[0]), key: keys[0] };
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID]: utf8(this.current.id) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before encryption was turned on stay readable.
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID]);
      const key = this.byId.get(id);
      if (!key) throw new Error(`payload encrypted with key ${id}, which TEMPORAL_PAYLOAD_KEYS does not hold`);
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** The data converter for clients and workers: with the codec when keys are set, else the SDK's default. */
export function payloadDataConverter(setting: string | undefined): { payloadCodecs: PayloadCodec[] } | undefined {
  return setting ? { payloadCodecs: [new AesGcmPayloadCodec(parsePayloadKeys(setting))] } : undefined;
}
