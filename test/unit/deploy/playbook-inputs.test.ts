import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec, hasImage, imageDeployInputs } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { UserError } from '../../../src/util/errors.js';
import { deployInputIssues } from '../../support/deploy-fixtures.js';

const hosts = 'vps1 ansible_host=127.0.0.1 ansible_port=2222';

const issues = (raw: RawInputs): string[] => deployInputIssues({ hosts, ...raw });

describe('deploy inputs: playbook instead of, or besides, image', () => {
  it('image and name are required unless a playbook is given', () => {
    expect(issues({})).toEqual([
      'input "image" is required (or input "playbook" to run a playbook)',
      'input "name" is required',
    ]);
    expect(issues({ image: 'reg/app:v1' })).toEqual(['input "name" is required']);
    expect(issues({ playbook: 'playbook.yml' })).toEqual([]);
    expect(issues({ playbook: 'playbook.yml', image: 'reg/app:v1' })).toEqual([
      'input "name" is required with input "image"',
    ]);
    expect(issues({ playbook: 'playbook.yml', image: 'reg/app:v1', name: 'web' })).toEqual([]);
  });

  it('parses extra-vars as -e lines and secret-extra-vars as a map', () => {
    const i = parseInputs(
      deploySpec,
      {
        hosts,
        playbook: 'playbook.yml',
        'extra-vars': 'REGISTRY=reg:5000 DOCKER_TAG=v1\n{"create_containers": 3}\n@vars.yml',
        'secret-extra-vars': 'DOCKER_PASSWORD=p@ss word\nKEY<<EOF\nline 1\nline 2\nEOF',
      },
      deployRules,
    );
    expect(i['extra-vars']).toEqual(['REGISTRY=reg:5000 DOCKER_TAG=v1', '{"create_containers": 3}', '@vars.yml']);
    expect(i['secret-extra-vars']?.map((e) => [e.key, e.value])).toEqual([
      ['DOCKER_PASSWORD', 'p@ss word'],
      ['KEY', 'line 1\nline 2'],
    ]);
    expect(hasImage(i)).toBe(false);
    expect(() => imageDeployInputs(i)).toThrow(UserError);
    expect(deploySpec.inputs['secret-extra-vars'].meta.secret).toBe(true);
  });

  it('refuses extra vars without a playbook, and image-deploy inputs a playbook alone would ignore', () => {
    expect(issues({ image: 'reg/app:v1', name: 'web', 'extra-vars': 'a=1' })).toEqual([
      'input "extra-vars" needs input "playbook"',
    ]);
    expect(issues({ image: 'reg/app:v1', name: 'web', 'secret-extra-vars': 'A=1' })).toEqual([
      'input "secret-extra-vars" needs input "playbook"',
    ]);
    expect(issues({ playbook: 'p.yml', serial: '1' })).toEqual([
      'input "serial" is an input of the image deploy: it needs input "image" (the playbook does not use it)',
    ]);
    expect(issues({ playbook: 'p.yml', name: 'web', port: '8000', env: 'A=1' })).toEqual([
      'input "name" is an input of the image deploy: it needs input "image" (the playbook does not use it)',
      'input "port" is an input of the image deploy: it needs input "image" (the playbook does not use it)',
      'input "env" is an input of the image deploy: it needs input "image" (the playbook does not use it)',
    ]);
    // The connection settings are the playbook's too.
    expect(
      issues({ playbook: 'p.yml', limit: 'vps1', 'insecure-skip-host-key-check': 'true', 'dry-run': 'true' }),
    ).toEqual([]);
  });

  it('a secret-extra-vars key must be a variable name', () => {
    expect(issues({ playbook: 'p.yml', 'secret-extra-vars': 'not-a-name=1' }).join('\n')).toContain(
      'input "secret-extra-vars"',
    );
  });
});
