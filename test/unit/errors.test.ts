import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HsError, errorBody } from '../../core/errors.js';

describe('error table', () => {
  it('documents every code in specs/errors.md', async () => {
    const spec = await readFile(new URL('../../specs/errors.md', import.meta.url), 'utf8');
    const undocumented = Object.keys(ERROR_CODES).filter((code) => !spec.includes(`### ${code}`));
    expect(undocumented).toEqual([]);
  });

  it('gives each error its status, exit code and a JSON body with its details', () => {
    const err = new HsError('HS_ERR_STORE_VERSION', 'too new', { details: { found: 2 } });
    expect([err.status, err.exitCode]).toEqual([500, 1]);
    expect(errorBody(err)).toEqual({ code: 'HS_ERR_STORE_VERSION', message: 'too new', found: 2 });
  });
});
