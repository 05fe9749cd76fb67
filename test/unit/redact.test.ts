import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../recorder/redact.js';

const base = { mode: 'mask' as const, key: null, headers: [], query_params: [], body_paths: [] };

describe('redaction', () => {
  it('masks credential headers and keeps the rest', () => {
    const { value, redacted } = createRedactor(base).headers({
      Authorization: 'token ghp_x',
      cookie: 'a=b',
      'X-Gitlab-Token': 't',
      'x-api-key': 'k',
      'x-github-event': 'issues',
      'x-hub-signature-256': 'sha256=ab',
    });
    expect(value).toEqual({
      authorization: '[REDACTED]',
      cookie: '[REDACTED]',
      'x-gitlab-token': '[REDACTED]',
      'x-api-key': '[REDACTED]',
      'x-github-event': 'issues',
      'x-hub-signature-256': 'sha256=ab',
    });
    expect(redacted.sort()).toEqual(['header:authorization', 'header:cookie', 'header:x-api-key', 'header:x-gitlab-token']);
  });

  it('masks configured extra headers', () => {
    expect(createRedactor({ ...base, headers: ['X-Internal'] }).headers({ 'x-internal': 'v' }).value).toEqual({ 'x-internal': '[REDACTED]' });
  });

  it('masks tokens in query strings and leaves other parameters', () => {
    const { value, redacted } = createRedactor(base).path('/repos/o/r/issues?access_token=abc&per_page=10&private_token=x');
    expect(value).toBe('/repos/o/r/issues?access_token=%5BREDACTED%5D&per_page=10&private_token=%5BREDACTED%5D');
    expect(redacted).toEqual(['query:access_token', 'query:private_token']);
  });

  it('leaves a path without a query string untouched', () => {
    expect(createRedactor(base).path('/repos/o/r')).toEqual({ value: '/repos/o/r', redacted: [] });
  });

  it('redacts configured body paths in place, keeping every other byte of the body', () => {
    const body = '{ "installation": {"id": 1, "token": "ghs_secret"},\n  "items": [{"key": "k1"}, {"key": "k2"}] }';
    const { value, redacted } = createRedactor({ ...base, body_paths: ['installation.token', 'items.*.key'] }).body(body);
    expect(value).toBe('{ "installation": {"id": 1, "token": "[REDACTED]"},\n  "items": [{"key": "[REDACTED]"}, {"key": "[REDACTED]"}] }');
    expect(redacted).toEqual(['body:installation.token', 'body:items.*.key']);
  });

  it('in hmac mode replaces values with a keyed hash, equal for equal values so they can still be joined', () => {
    const r = createRedactor({ ...base, mode: 'hmac', key: 'k' });
    const a = r.headers({ authorization: 'token same' }).value.authorization;
    const b = r.headers({ authorization: 'token same' }).value.authorization;
    const c = r.headers({ authorization: 'token other' }).value.authorization;
    expect(a).toMatch(/^hmac-sha256:[0-9a-f]{32}$/);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(a).not.toContain('same');
  });
});

describe('redaction of body values that are not plain string literals', () => {
  const r = createRedactor({ mode: 'mask', key: null, headers: [], query_params: [], body_paths: ['issue.number', 'auth.pin'] });

  it('redacts a number only after its key, never digits elsewhere in the body', () => {
    const body = '{"size":1555,"issue":{"number":5},"other":{"number":5}}';
    const { value } = r.body(body);
    expect(value).toBe('{"size":1555,"issue":{"number":"[REDACTED]"},"other":{"number":"[REDACTED]"}}');
    expect(() => JSON.parse(value!)).not.toThrow();
  });

  it('re-serializes rather than keep a secret written with other escapes', () => {
    const body = '{"auth": {"pin": "s\\u0065cret"}}';
    const { value, redacted } = r.body(body);
    expect(value).not.toContain('secret');
    expect(value).not.toContain('s\\u0065cret');
    expect(JSON.parse(value!)).toEqual({ auth: { pin: '[REDACTED]' } });
    expect(redacted).toContain('body:reserialized');
  });
});

describe('redaction with duplicate keys', () => {
  it('does not let the first of two duplicate keys keep its secret', () => {
    const r = createRedactor({ mode: 'mask', key: null, headers: [], query_params: [], body_paths: ['token'] });
    const { value } = r.body('{"token":"first-secret","token":"second"}');
    expect(value).not.toContain('first-secret');
    expect(value).not.toContain('second');
  });
});
