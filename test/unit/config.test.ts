import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, configFromEnv, loadConfigFile, parsePairs, resolveConfig } from '../../recorder/config.js';
import { flagsLayer } from '../../cli/commands/record.js';
import { tempDir } from '../helpers.js';

describe('recorder config', () => {
  it('runs on built-in defaults with no configuration', () => {
    const config = resolveConfig([]);
    expect(config.store).toBe('./.hookshadow/store');
    expect(config.body_limit_bytes).toBe(25 * 1024 * 1024);
    expect(config.legacy.url).toBeNull();
  });

  it('layers file < environment < flags, merging maps', () => {
    const config = resolveConfig([
      { port: 9000, upstreams: { github: 'https://api.github.com' }, secrets: { github: 'from-file' } },
      configFromEnv({ HOOKSHADOW_SECRET_GITEA: 'a, b' }),
      flagsLayer({ port: '9100', upstream: ['agents=http://queue:8000'], secret: ['github=from-flag'] }),
    ]);
    expect(config.port).toBe(9100);
    expect(config.upstreams).toEqual({ github: 'https://api.github.com', agents: 'http://queue:8000' });
    expect(config.secrets).toEqual({ github: ['from-flag'], gitea: ['a', 'b'] });
  });

  it('is frozen once resolved', () => {
    const config = resolveConfig([]);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(DEFAULT_CONFIG.port).toBe(8080);
  });

  it('reports every invalid setting at once, by path', () => {
    expect(() => resolveConfig([{ port: 'x', signature_policy: 'maybe', upstreams: { github: 'ftp://nope' } }])).toThrowError(
      expect.objectContaining({
        code: 'HS_ERR_CONFIG_INVALID',
        message: expect.stringMatching(/\/port must be integer[\s\S]*\/upstreams\/github must match[\s\S]*\/signature_policy .*\(reject, flag\)/),
      }),
    );
  });

  it('refuses unknown keys, so a typo does not silently do nothing', () => {
    expect(() => resolveConfig([{ legacy: { ur: 'http://x' } } as never])).toThrowError(/must NOT have additional properties/);
  });

  it('requires a key for hmac redaction', () => {
    expect(() => resolveConfig([{ redaction: { mode: 'hmac' } }])).toThrowError(/redaction.key/);
  });

  it('names file:line:col for YAML syntax errors', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'store: ./x\nupstreams:\n  github: [unclosed\n');
    await expect(loadConfigFile(file)).rejects.toMatchObject({ code: 'HS_ERR_CONFIG_INVALID', message: expect.stringMatching(/bad\.yaml:\d+:\d+: /) });
  });

  it('reads a valid YAML file', async () => {
    const dir = await tempDir();
    const file = join(dir, 'ok.yaml');
    await writeFile(file, 'port: 8081\nlegacy:\n  url: http://bot:3000/webhook\n');
    expect(resolveConfig([await loadConfigFile(file)]).legacy.url).toBe('http://bot:3000/webhook');
  });

  it('rejects NAME=VALUE flags without a name', () => {
    expect(() => parsePairs(['=x'], '--upstream')).toThrowError(/--upstream expects NAME=VALUE/);
  });
});

describe('record flags', () => {
  it('keeps every --secret given for one source, for rotation', () => {
    expect(resolveConfig([flagsLayer({ secret: ['github=old', 'github=new'] })]).secrets).toEqual({ github: ['old', 'new'] });
  });
});

describe('secrets', () => {
  it('refuses an empty secret, which would let anyone sign', () => {
    expect(() => resolveConfig([{ secrets: { gitea: [''] } }])).toThrowError(/secrets\/gitea/);
    expect(() => flagsLayer({ secret: ['github='] })).toThrowError(/both parts non-empty/);
    expect(configFromEnv({ HOOKSHADOW_SECRET_GITHUB: ' , ' })).toEqual({});
  });
});
