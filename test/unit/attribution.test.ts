import { describe, expect, it } from 'vitest';
import { callSubject, createAttributionIndex } from '../../recorder/attribution.js';

const S = 1_000_000; // one second in microseconds

describe('call subjects', () => {
  it('finds owner/repo#N in GitHub, Gitea and GitLab API paths and in web URLs in bodies', () => {
    expect(callSubject('/repos/Octo/Repo/issues/12/comments', null)).toBe('octo/repo#12');
    expect(callSubject('/api/v1/repos/o/r/pulls/3/requested_reviewers', null)).toBe('o/r#3');
    expect(callSubject('/projects/group%2Fproj/merge_requests/4/notes', null)).toBe('group/proj#4');
    expect(callSubject('/jobs', '{"ref":"https://github.com/o/r/issues/9"}')).toBe('o/r#9');
    expect(callSubject('/jobs', '{"queue":"x"}')).toBeNull();
  });
});

describe('attribution', () => {
  it('is exact when the call carries X-Hookshadow-Delivery', () => {
    const index = createAttributionIndex(30 * S);
    expect(index.attribute({ headerDeliveryId: 'd1', path: '/x', body: null, atUs: 0 })).toEqual({ delivery_id: 'd1', correlation: 'exact' });
  });

  it('infers the most recent delivery about the same issue within the window', () => {
    const index = createAttributionIndex(30 * S);
    index.remember('older', 'o/r', 1, 100 * S);
    index.remember('newer', 'o/r', 1, 110 * S);
    index.remember('other-issue', 'o/r', 2, 112 * S);
    expect(index.attribute({ headerDeliveryId: null, path: '/repos/o/r/issues/1/labels', body: null, atUs: 115 * S })).toEqual({
      delivery_id: 'newer',
      correlation: 'inferred',
    });
  });

  it('says none outside the window, before the delivery, or with no subject', () => {
    const index = createAttributionIndex(30 * S);
    index.remember('d', 'o/r', 1, 100 * S);
    const at = (atUs: number, path = '/repos/o/r/issues/1/labels') => index.attribute({ headerDeliveryId: null, path, body: null, atUs });
    expect(at(131 * S).correlation).toBe('none');
    expect(at(99 * S).correlation).toBe('none');
    expect(at(101 * S, '/user')).toEqual({ delivery_id: null, correlation: 'none' });
  });

  it('forgets deliveries older than the window, so memory stays bounded', () => {
    const index = createAttributionIndex(10 * S);
    for (let i = 0; i < 1000; i++) index.remember(`d${i}`, 'o/r', i, i * S);
    expect(index.size()).toBeLessThanOrEqual(21);
  });
});
