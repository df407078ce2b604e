import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Certificates made with the openssl CLI at test time: a private CA and leaves signed by it. */
export interface Pki {
  dir: string;
  caPath: string;
  ca: string;
  /** Valid for a year, for localhost / 127.0.0.1 / probe.test. */
  good: { key: string; cert: string };
  /** Valid for 10 days. */
  shortLived: { key: string; cert: string };
  /** Valid in January 2020 only. */
  expired: { key: string; cert: string };
  /** Self-signed by itself (no CA), for "fails without tls-ca". */
}

const SAN = 'subjectAltName=DNS:localhost,DNS:probe.test,IP:127.0.0.1';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makePki(dir: string): Pki {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '30',
    '-subj',
    '/CN=Dyce Test CA',
  ]);
  writeFileSync(join(dir, 'ext.cnf'), `[ext]\n${SAN}\nbasicConstraints=CA:FALSE\n`);
  /** A new P-256 key NAME.key and its certificate request NAME.csr for CN=localhost. */
  const keyAndCsr = (name: string) =>
    openssl(dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      '/CN=localhost',
    ]);
  const leaf = (name: string, days: number) => {
    keyAndCsr(name);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      String(days),
      '-extfile',
      'ext.cnf',
      '-extensions',
      'ext',
    ]);
  };
  leaf('good', 365);
  leaf('short', 10);
  // `openssl x509` cannot back-date; `openssl ca` takes explicit start and end dates.
  mkdirSync(join(dir, 'newcerts'));
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/newcerts',
      'serial = $dir/serial',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
    ].join('\n'),
  );
  keyAndCsr('expired');
  openssl(dir, [
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-cert',
    'ca.pem',
    '-keyfile',
    'ca.key',
    '-in',
    'expired.csr',
    '-out',
    'expired.pem',
    '-notext',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
    '-extfile',
    'ext.cnf',
    '-extensions',
    'ext',
  ]);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caPath: join(dir, 'ca.pem'),
    ca: read('ca.pem'),
    good: { key: read('good.key'), cert: read('good.pem') },
    shortLived: { key: read('short.key'), cert: read('short.pem') },
    expired: { key: read('expired.key'), cert: read('expired.pem') },
  };
}
