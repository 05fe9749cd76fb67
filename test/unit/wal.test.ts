import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { HsError } from '../../core/errors.js';
import { WriteAheadLog, openWalFileOnDisk, type OpenWalFile } from '../../core/store/wal.js';
import { tempDir } from '../helpers.js';

function walIn(dir: string, overrides: Partial<ConstructorParameters<typeof WriteAheadLog>[0]> = {}) {
  const sealed: string[] = [];
  const flushes: number[] = [];
  const wal = new WriteAheadLog({
    dir,
    maxSegmentBytes: 1024 * 1024,
    maxSegmentAgeMs: 60_000,
    onSealed: (p) => sealed.push(p),
    onFlush: ({ records }) => flushes.push(records),
    ...overrides,
  });
  return { wal, sealed, flushes };
}

describe('write-ahead log', () => {
  it('resolves an append only once its record is in the segment file', async () => {
    const dir = await tempDir();
    const { wal, sealed } = walIn(dir);
    await wal.append({ t: 'delivery', n: 1 });
    const [name] = (await readdir(dir)).filter((n) => n.endsWith('.wal'));
    expect(await readFile(`${dir}/${name}`, 'utf8')).toBe('{"t":"delivery","n":1}\n');
    await wal.close();
    expect(sealed).toHaveLength(1);
  });

  it('group-commits appends made while a flush is in flight into one durable write', async () => {
    const dir = await tempDir();
    const { wal, flushes } = walIn(dir);
    await Promise.all(Array.from({ length: 500 }, (_, n) => wal.append({ t: 'delivery', n })));
    await wal.close();
    expect(flushes.reduce((a, b) => a + b, 0)).toBe(500);
    expect(flushes.length).toBeLessThan(50);
  });

  it('seals a segment once it reaches the size limit and keeps every record across segments', async () => {
    const dir = await tempDir();
    const { wal, sealed } = walIn(dir, { maxSegmentBytes: 4096 });
    for (let n = 0; n < 200; n++) await wal.append({ t: 'delivery', n, pad: 'x'.repeat(50) });
    await wal.close();
    expect(sealed.length).toBeGreaterThan(2);
    const lines = (await Promise.all(sealed.map((p) => readFile(p, 'utf8')))).join('').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
  });

  it('seals a non-empty segment once it is older than the age limit', async () => {
    const dir = await tempDir();
    const { wal, sealed } = walIn(dir, { maxSegmentAgeMs: 50 });
    await wal.append({ t: 'delivery' });
    await expect.poll(() => sealed.length, { timeout: 2000 }).toBe(1);
    await wal.close();
  });

  it('rejects the batch with HS_ERR_WAL_WRITE on a full disk, leaves no torn line, and recovers on a new segment', async () => {
    const dir = await tempDir();
    let failNext = true;
    const flaky: OpenWalFile = async (path) => {
      const file = await openWalFileOnDisk(path);
      return {
        ...file,
        writev: async (buffers) => {
          if (failNext) {
            failNext = false;
            // Half the batch reaches the disk before the device fills up.
            await file.writev([buffers[0]!.subarray(0, 5)]);
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          }
          return file.writev(buffers);
        },
      };
    };
    const { wal, sealed } = walIn(dir, { openFile: flaky });
    const err = await wal.append({ t: 'delivery', n: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HsError);
    expect((err as HsError).code).toBe('HS_ERR_WAL_WRITE');
    expect((err as HsError).message).toMatch(/disk is full/);
    await wal.append({ t: 'delivery', n: 2 });
    await wal.close();
    const contents = await Promise.all(sealed.map((p) => readFile(p, 'utf8')));
    expect(contents.join('')).toBe('{"t":"delivery","n":2}\n');
    expect((await readdir(dir)).filter((n) => n.endsWith('.wal'))).toHaveLength(1);
  });

  it('refuses appends after close with HS_ERR_SHUTTING_DOWN', async () => {
    const dir = await tempDir();
    const { wal } = walIn(dir);
    await wal.close();
    await expect(wal.append({ t: 'delivery' })).rejects.toMatchObject({ code: 'HS_ERR_SHUTTING_DOWN' });
  });
});
