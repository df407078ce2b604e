import { describe, expect, it } from 'vitest';
import { InputError, isUserError, UserError } from '../../../src/util/errors.js';

describe('UserError across bundles', () => {
  it('is recognised from another copy of the module (the lab bundle has its own)', async () => {
    // A query makes a second, separate instance of the module: other classes, the same brands.
    const second = '../../../src/util/errors.js?copy';
    const copy = (await import(/* @vite-ignore */ second)) as typeof import('../../../src/util/errors.js');
    expect(copy.UserError).not.toBe(UserError);
    const input = new copy.InputError(['--hosts must be a whole number']);
    expect(input instanceof InputError).toBe(true);
    expect(input instanceof UserError).toBe(true);
    expect(isUserError(new copy.UserError('x'))).toBe(true);
    expect(new copy.UserError('x') instanceof InputError).toBe(false);
    expect(new Error('x') instanceof UserError).toBe(false);
    expect(isUserError({ name: 'UserError', message: 'x' })).toBe(false);
  });

  it('keeps prototype checks for subclasses without a brand of their own', () => {
    class Special extends UserError {}
    expect(new Special('x') instanceof Special).toBe(true);
    expect(new UserError('x') instanceof Special).toBe(false);
    expect(new Special('x') instanceof UserError).toBe(true);
  });
});
