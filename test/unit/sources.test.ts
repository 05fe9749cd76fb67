import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deliveryFacts, verifySignature } from '../../recorder/sources.js';

const hex = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');

describe('signature verification', () => {
  // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
  it("accepts GitHub's documented test vector", async () => {
    const headers = { 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' };
    expect(await verifySignature('github', Buffer.from('Hello, World!'), headers, ["It's a Secret to Everybody"])).toBe(true);
  });

  it('rejects a GitHub signature made with another secret, and a missing one', async () => {
    const body = Buffer.from('Hello, World!');
    expect(await verifySignature('github', body, { 'x-hub-signature-256': `sha256=${hex('other', 'Hello, World!')}` }, ['secret'])).toBe(false);
    expect(await verifySignature('github', body, {}, ['secret'])).toBe(false);
  });

  it('accepts any of several secrets, so secrets can be rotated', async () => {
    const headers = { 'x-hub-signature-256': `sha256=${hex('new', 'x')}` };
    expect(await verifySignature('github', Buffer.from('x'), headers, ['old', 'new'])).toBe(true);
  });

  it('verifies Gitea and Forgejo hex HMAC signatures over the raw bytes', async () => {
    const body = '{"action":"opened"}';
    expect(await verifySignature('gitea', Buffer.from(body), { 'x-gitea-signature': hex('s', body) }, ['s'])).toBe(true);
    expect(await verifySignature('forgejo', Buffer.from(body), { 'x-forgejo-signature': hex('s', body) }, ['s'])).toBe(true);
    expect(await verifySignature('gitea', Buffer.from(body + ' '), { 'x-gitea-signature': hex('s', body) }, ['s'])).toBe(false);
    expect(await verifySignature('gitea', Buffer.from(body), { 'x-gitea-signature': 'zz' }, ['s'])).toBe(false);
  });

  it("compares GitLab's X-Gitlab-Token with the secret", async () => {
    expect(await verifySignature('gitlab', Buffer.from('{}'), { 'x-gitlab-token': 'tok' }, ['tok'])).toBe(true);
    expect(await verifySignature('gitlab', Buffer.from('{}'), { 'x-gitlab-token': 'tok2' }, ['tok'])).toBe(false);
  });

  it('answers null when no secret is configured for the source', async () => {
    expect(await verifySignature('github', Buffer.from('x'), {}, undefined)).toBeNull();
  });
});

describe('delivery facts', () => {
  it('reads GitHub event, delivery id, action, repository and issue number', () => {
    const facts = deliveryFacts(
      'github',
      { 'x-github-event': 'issues', 'x-github-delivery': 'abc' },
      { action: 'assigned', repository: { full_name: 'octo/repo' }, issue: { number: 7 } },
    );
    expect(facts).toEqual({ event: 'issues', deliveryId: 'abc', action: 'assigned', repository: 'octo/repo', issueNumber: 7 });
  });

  it('prefers Forgejo headers, falling back to the Gitea ones', () => {
    expect(deliveryFacts('forgejo', { 'x-forgejo-event': 'push', 'x-gitea-delivery': 'g1' }, {})).toMatchObject({ event: 'push', deliveryId: 'g1' });
  });

  it("takes GitLab's event from object_kind and its number from the iid", () => {
    const facts = deliveryFacts(
      'gitlab',
      { 'x-gitlab-event': 'Issue Hook', 'x-gitlab-event-uuid': 'u1' },
      { object_kind: 'issue', project: { path_with_namespace: 'group/proj' }, object_attributes: { iid: 3, action: 'open' } },
    );
    expect(facts).toEqual({ event: 'issue', deliveryId: 'u1', action: 'open', repository: 'group/proj', issueNumber: 3 });
  });

  it('reads nothing from a payload that is not an object', () => {
    expect(deliveryFacts('generic', {}, 'not an object')).toEqual({ event: null, deliveryId: null, action: null, repository: null, issueNumber: null });
  });
});

describe('signature edge cases', () => {
  it('verifies a signed empty GitHub body instead of failing', async () => {
    const headers = { 'x-hub-signature-256': `sha256=${hex('s', '')}` };
    expect(await verifySignature('github', Buffer.alloc(0), headers, ['s'])).toBe(true);
    expect(await verifySignature('github', Buffer.alloc(0), { 'x-hub-signature-256': 'sha256=00' }, ['s'])).toBe(false);
  });
});

describe('signatures over raw bytes', () => {
  it('verifies the bytes as sent, so two bodies that differ only in invalid UTF-8 do not share a signature', async () => {
    const signed = Buffer.from([0x7b, 0xff, 0x7d]);
    const other = Buffer.from([0x7b, 0xfe, 0x7d]);
    const sig = `sha256=${createHmac('sha256', 's').update(signed).digest('hex')}`;
    expect(await verifySignature('github', signed, { 'x-hub-signature-256': sig }, ['s'])).toBe(true);
    expect(await verifySignature('github', other, { 'x-hub-signature-256': sig }, ['s'])).toBe(false);
  });
});
