import { describe, expect, it } from 'vitest';
import {
  candidatePath,
  installFromStdin,
  NginxConfigError,
  nginxLayout,
  parseAppConfigs,
  parseUpstreamPorts,
  readAppConfigs,
  removeConfig,
  renderSite,
  renderUpstream,
  sitePath,
  upstreamName,
  upstreamPath,
} from '../../../src/commands/nginx.js';

const lab = nginxLayout('/var/lib/dyce-lab/hosts/vps1/nginx/');
const system = nginxLayout();

describe('layout and commands', () => {
  it('a prefix gives its own main config and conf.d; none means the system nginx', () => {
    expect(lab).toEqual({
      prefix: '/var/lib/dyce-lab/hosts/vps1/nginx',
      conf: '/var/lib/dyce-lab/hosts/vps1/nginx/nginx.conf',
      confDir: '/var/lib/dyce-lab/hosts/vps1/nginx/conf.d',
    });
    expect(system).toEqual({ conf: '/etc/nginx/nginx.conf', confDir: '/etc/nginx/conf.d' });
    expect(upstreamPath(system, 'web')).toBe('/etc/nginx/conf.d/dyce-web.upstream.conf');
    expect(sitePath(system, 'web')).toBe('/etc/nginx/conf.d/dyce-web.site.conf');
  });

  it('the candidate is written from stdin (atomic, 0600), then installed with its path as an argument', () => {
    const t = upstreamPath(lab, 'web');
    const i = installFromStdin(lab, t);
    expect(i[2]).toContain('umask 077');
    expect(i.slice(3)).toEqual(['sh', t, candidatePath(t), '-p', `${lab.prefix}/`, '-c', lab.conf]);
    // The script text is constant: no path is spliced into it.
    expect(i[2]).not.toContain(t);
    expect(i[2]).toMatch(/nginx -t -q "\$@"[\s\S]*mv -f "\$t.dyce-prev" "\$t"[\s\S]*exit 30[\s\S]*nginx -s reload/);
    expect(removeConfig(lab, t).slice(3)).toEqual(['sh', t, '-p', `${lab.prefix}/`, '-c', lab.conf]);
  });
});

describe('renderUpstream', () => {
  it('lists the healthy replicas with max_fails=0 and keeps connections alive', () => {
    expect(renderUpstream({ app: 'melton-app', ports: [8004, 8001] })).toBe(
      [
        '# Written by Dyce for melton-app: the replicas that passed their health gate. Rewritten on every rollout; do not edit.',
        'upstream dyce_melton_app {',
        '    server 127.0.0.1:8004 max_fails=0;',
        '    server 127.0.0.1:8001 max_fails=0;',
        '    keepalive 16;',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('brackets an IPv6 address, and refuses an empty upstream, bad ports and hostile addresses', () => {
    expect(renderUpstream({ app: 'a', ports: [1], address: '::1', keepalive: 4 })).toContain(
      'server [::1]:1 max_fails=0;',
    );
    expect(() => renderUpstream({ app: 'a', ports: [] })).toThrow(NginxConfigError);
    expect(() => renderUpstream({ app: 'a', ports: [70000] })).toThrow(/port/);
    expect(() => renderUpstream({ app: 'a', ports: [1], address: '1.2.3.4; include /etc/passwd' })).toThrow(/address/);
  });

  it('parses the ports back', () => {
    expect(parseUpstreamPorts(renderUpstream({ app: 'a', ports: [8004, 8001, 8006] }))).toEqual([8004, 8001, 8006]);
    expect(parseUpstreamPorts('')).toEqual([]);
  });

  it('names the upstream with nginx-safe characters', () => {
    expect(upstreamName('melton.app-2')).toBe('dyce_melton_app_2');
  });
});

describe('renderSite', () => {
  it('Melton’s block for N replicas: TLS on 443, /static/ from disk, proxy to the upstream, 80 -> 443', () => {
    const site = renderSite({
      app: 'melton-app',
      serverNames: ['melton.example.org'],
      tls: { cert: '/etc/letsencrypt/live/melton/fullchain.pem', key: '/etc/letsencrypt/live/melton/privkey.pem' },
      staticDir: '/root/melton-app/staticfiles/',
    });
    expect(site).toBe(
      [
        '# Written by Dyce for melton-app. The upstream dyce_melton_app lives in its own file, rewritten on every rollout.',
        'server {',
        '    listen 80;',
        '    server_name melton.example.org;',
        '    return 301 https://$host$request_uri;',
        '}',
        'server {',
        '    listen 443 ssl;',
        '    server_name melton.example.org;',
        '    ssl_certificate /etc/letsencrypt/live/melton/fullchain.pem;',
        '    ssl_certificate_key /etc/letsencrypt/live/melton/privkey.pem;',
        '    ssl_protocols TLSv1.2 TLSv1.3;',
        '    ssl_session_cache shared:dyce_ssl:1m;',
        '    location /static/ {',
        '        alias /root/melton-app/staticfiles/;',
        '    }',
        '    location / {',
        '        proxy_pass http://dyce_melton_app;',
        '        proxy_http_version 1.1;',
        '        proxy_set_header Connection "";',
        '        proxy_set_header Host $host;',
        '        proxy_set_header X-Real-IP $remote_addr;',
        '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
        '        proxy_set_header X-Forwarded-Proto $scheme;',
        '        proxy_connect_timeout 2s;',
        '        proxy_next_upstream error timeout http_502 http_503 http_504;',
        '        proxy_next_upstream_tries 3;',
        '    }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('never retries non-idempotent requests (no non_idempotent)', () => {
    const site = renderSite({ app: 'a' });
    expect(site).toMatch(/proxy_next_upstream error timeout http_502 http_503 http_504;/);
    expect(site).not.toMatch(/non_idempotent/);
  });

  it('without TLS: one plain server that proxies; a non-443 TLS port is kept in the redirect', () => {
    const plain = renderSite({ app: 'a', httpListen: '127.0.0.1:18080' });
    expect(plain).toContain('    listen 127.0.0.1:18080;\n    server_name _;');
    expect(plain).not.toContain('return 301');
    const tls = renderSite({
      app: 'a',
      httpListen: '127.0.0.1:18080',
      httpsListen: '127.0.0.1:18443',
      tls: { cert: '/c', key: '/k' },
    });
    expect(tls).toContain('return 301 https://$host:18443$request_uri;');
    expect(tls).toContain('listen 127.0.0.1:18443 ssl;');
  });

  it('refuses values that would inject config', () => {
    expect(() => renderSite({ app: 'a', serverNames: ['x; include /etc/shadow'] })).toThrow(/server name/);
    expect(() => renderSite({ app: 'a', serverNames: ['a}b'] })).toThrow(NginxConfigError);
    expect(() => renderSite({ app: 'a', staticDir: '/srv/static; deny all' })).toThrow(/static dir/);
    expect(() => renderSite({ app: 'a', staticDir: 'relative/dir' })).toThrow(/absolute/);
    expect(() => renderSite({ app: 'a', staticDir: '/srv/../etc' })).toThrow(/static dir/);
    expect(() => renderSite({ app: 'a', tls: { cert: '/c"', key: '/k' } })).toThrow(/certificate/);
    expect(() => renderSite({ app: 'a', httpListen: '80 default_server' })).toThrow(/listen/);
    expect(() => renderSite({ app: 'a', httpsListen: '99999' })).toThrow(/range/);
    expect(() => renderSite({ app: 'a', maxBodySize: '10m; x' })).toThrow(/body size/);
  });
});

describe('readAppConfigs', () => {
  it('reads both files in one command and splits the answer', () => {
    const argv = readAppConfigs(lab, 'web');
    expect(argv.slice(3)).toEqual(['sh', upstreamPath(lab, 'web'), sitePath(lab, 'web')]);
    const up = renderUpstream({ app: 'web', ports: [1] });
    expect(parseAppConfigs(`${up}\n--dyce--\nserver {}\n`)).toEqual({ upstream: up, site: 'server {}\n' });
    expect(parseAppConfigs('\n--dyce--\n')).toEqual({});
  });
});
