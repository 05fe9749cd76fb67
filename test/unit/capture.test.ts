import { describe, expect, it } from 'vitest';
import { parsePayload } from '../../core/payload.js';
import { buildDeliveryRecord, encodeBody } from '../../recorder/capture.js';
import { createRedactor } from '../../recorder/redact.js';

const redactor = createRedactor({ mode: 'mask', key: null, headers: [], query_params: [], body_paths: [] });
const base = { source: 'github' as const, receivedAtUs: 1, instance: 'i', mode: 'passive' as const, signatureValid: null, rejected: null, redactor };

describe('delivery records', () => {
  it('keeps a malformed JSON body as received, with its parse error', () => {
    const rec = buildDeliveryRecord({ ...base, raw: Buffer.from('{"action": "assig'), headers: { 'x-github-event': 'issues' } });
    expect(rec.body).toBe('{"action": "assig');
    expect(rec.parse_error).toMatch(/JSON/);
    expect(rec.event).toBe('issues');
    expect(rec.action).toBeNull();
  });

  it('stores bytes that are not UTF-8 as base64, so nothing is altered', () => {
    expect(encodeBody(Buffer.from([0xff, 0xfe, 0x00]))).toEqual({ text: '//4A', encoding: 'base64' });
  });

  it("reads GitHub's form-encoded payload variant", () => {
    const form = `payload=${encodeURIComponent('{"action":"opened"}')}`;
    expect(parsePayload(form, 'application/x-www-form-urlencoded')).toEqual({ payload: { action: 'opened' }, error: null });
  });

  it('generates a UUIDv7 delivery id when the sender gives none', () => {
    const rec = buildDeliveryRecord({ ...base, raw: Buffer.from('{}'), headers: {} });
    expect(rec.delivery_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(rec.delivery_id_origin).toBe('generated');
  });

  it('records size and hash of the raw bytes and redacts headers', () => {
    const rec = buildDeliveryRecord({ ...base, raw: Buffer.from('{"a":1}'), headers: { authorization: 'Bearer x', 'x-github-delivery': 'd' } });
    expect(rec).toMatchObject({ delivery_id: 'd', body_size: 7, headers: { authorization: '[REDACTED]' }, redacted: ['header:authorization'] });
    expect(rec.body_sha256).toHaveLength(64);
  });
});
