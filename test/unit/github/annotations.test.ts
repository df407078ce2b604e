import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActionsReporter } from '../../../src/github/action-runner.js';
import { annotateInputError, annotationOf } from '../../../src/github/annotations.js';
import { RecordingReporter } from '../../../src/github/reporter.js';
import { InputError, UserError } from '../../../src/util/errors.js';

describe('annotations', () => {
  it('read file, line and column from an issue, and leave other issues alone', () => {
    expect(annotationOf('inventory.yml:12: ansible_port must be a port, got "x"')).toEqual({
      file: 'inventory.yml',
      line: 12,
      message: 'ansible_port must be a port, got "x"',
    });
    expect(annotationOf('deploy/site.yml:3:7: unknown module "dockr_container"')).toEqual({
      file: 'deploy/site.yml',
      line: 3,
      col: 7,
      message: 'unknown module "dockr_container"',
    });
    expect(annotationOf('input "replicas" must be at least 1, got 0')).toEqual({
      message: 'input "replicas" must be at least 1, got 0',
    });
    expect(annotationOf('https://example.com:443: refused')).toEqual({ message: 'https://example.com:443: refused' });
  });

  it('report each located issue of an input error on its file and line; nothing for other errors', () => {
    const r = new RecordingReporter();
    const spy = vi.spyOn(r, 'error');
    const e = new InputError(['hosts:2: ansible_port must be a port', 'input "name" is required'], 'invalid inventory');
    expect(annotateInputError(e, r)).toBe(1);
    expect(spy).toHaveBeenCalledWith('ansible_port must be a port', { file: 'hosts', line: 2 });
    expect(annotateInputError(new UserError('hosts:2: x'), r)).toBe(0);
  });

  describe('in the runner protocol', () => {
    afterEach(() => vi.restoreAllMocks());
    it('an ActionsReporter writes ::error file=…,line=…::, escaped', () => {
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        out.push(String(chunk));
        return true;
      });
      annotateInputError(
        new InputError(['site.yml:14: unknown key "hots", did you mean "hosts"?\nsecond line']),
        new ActionsReporter(),
      );
      expect(out.join('')).toBe(
        '::error file=site.yml,line=14::unknown key "hots", did you mean "hosts"?%0Asecond line\n',
      );
    });
  });
});
