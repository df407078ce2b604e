import { describe, expect, it } from 'vitest';
import { deployRules, deploySpec } from '../../../src/config/actions/deploy.js';
import { parseInputs, type RawInputs } from '../../../src/config/input-spec.js';
import { deployInputIssues } from '../../support/deploy-fixtures.js';

const base: RawInputs = {
  hosts: 'vps1 ansible_host=127.0.0.1 ansible_port=2222',
  image: '127.0.0.1:5000/dyce/sample-app:v1',
  name: 'web',
};

const issues = (extra: RawInputs): string[] => deployInputIssues({ ...base, ...extra });

describe('rollout inputs', () => {
  it('defaults: no proxy, /health, 5s per check, 1s apart, 60s deadline, one at a time, 10s drain', () => {
    const i = parseInputs(deploySpec, base, deployRules);
    expect([
      i.proxy,
      i['health-path'],
      i['health-timeout'],
      i['health-interval'],
      i['health-deadline'],
      i['max-unavailable'],
      i['drain-timeout'],
    ]).toEqual(['none', '/health', 5000, 1000, 60000, 1, 10000]);
  });

  it('proxy nginx needs a port, and room for the alternate ports', () => {
    expect(issues({ proxy: 'nginx' })).toEqual([expect.stringMatching(/input "port" is required with proxy: nginx/)]);
    expect(issues({ proxy: 'nginx', port: '8000' })).toEqual([]);
    expect(issues({ proxy: 'nginx', port: '65000', replicas: '300' })).toContain(
      'input "replicas" must be at most 100, got 300',
    );
    expect(issues({ proxy: 'nginx', port: '65530', replicas: '4' })).toEqual([
      expect.stringMatching(/host ports 65530..65537, past 65535/),
    ]);
    expect(issues({ proxy: 'apache' })[0]).toMatch(/input "proxy"/);
  });

  it('health-path must be a path nothing can be smuggled into', () => {
    expect(issues({ 'health-path': '/api/' })).toEqual([]);
    expect(issues({ 'health-path': 'health' })[0]).toMatch(/input "health-path" must start with \//);
    expect(issues({ 'health-path': '/a b' })[0]).toMatch(/health-path/);
    expect(issues({ 'max-unavailable': '0' })[0]).toMatch(/max-unavailable/);
    expect(issues({ 'health-deadline': 'soon' })[0]).toMatch(/health-deadline/);
  });

  it('site options: need proxy nginx and a server name; cert and key together; values safe for nginx', () => {
    expect(issues({ 'nginx-server-name': 'a.example' })).toEqual(['input "nginx-server-name" needs proxy: nginx']);
    const n = { proxy: 'nginx', port: '8000' };
    expect(
      issues({ ...n, 'nginx-server-name': 'a.example', 'nginx-tls-cert': '/c.pem', 'nginx-tls-key': '/k.pem' }),
    ).toEqual([]);
    expect(issues({ ...n, 'nginx-server-name': 'a.example', 'nginx-tls-cert': '/c.pem' })).toEqual([
      'input "nginx-tls-cert" and input "nginx-tls-key" go together',
    ]);
    expect(issues({ ...n, 'nginx-static-dir': '/srv/static' })).toEqual([
      expect.stringMatching(/"nginx-static-dir" needs input "nginx-server-name"/),
    ]);
    expect(issues({ ...n, 'nginx-server-name': 'a.example; include /etc/shadow' })[0]).toMatch(/invalid server name/);
    expect(issues({ ...n, 'nginx-server-name': 'a', 'nginx-static-dir': '/srv/x;y' })[0]).toMatch(/nginx-static-dir/);
    expect(issues({ ...n, 'nginx-https-listen': '443 ssl' })[0]).toMatch(/nginx-https-listen/);
  });
});
