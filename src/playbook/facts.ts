import type { Executor } from '../remote/executor.js';

/**
 * gather_facts: the `ansible_*` facts playbooks use, in one round trip: distribution (name, version, major
 * version, release), os family, architecture, system, kernel, hostname/nodename/fqdn/domain, default IPv4
 * (address, interface, gateway), all IPv4 addresses, memory (memtotal_mb, memfree_mb), processor counts, user,
 * package and service managers. Values come from the host: they are unsafe data, never rendered (run.ts).
 */

const SCRIPT = [
  '. /etc/os-release 2>/dev/null',
  'echo "id=$ID"',
  'echo "version=$VERSION_ID"',
  'echo "like=$ID_LIKE"',
  'echo "codename=$VERSION_CODENAME"',
  'echo "arch=$(uname -m)"',
  'echo "system=$(uname -s)"',
  'echo "kernel=$(uname -r)"',
  'echo "nodename=$(uname -n)"',
  'echo "fqdn=$(hostname -f 2>/dev/null || uname -n)"',
  'echo "route=$(ip -4 -o route get 1.0.0.0 2>/dev/null | head -n1)"',
  "echo \"addrs=$(ip -4 -o addr show 2>/dev/null | awk '{print $4}' | tr '\\n' ' ')\"",
  'echo "mem=$(awk \'/^MemTotal:/{t=$2} /^MemFree:/{f=$2} END{print t" "f}\' /proc/meminfo 2>/dev/null)"',
  'echo "vcpus=$(grep -c ^processor /proc/cpuinfo 2>/dev/null)"',
  'echo "sockets=$(grep "^physical id" /proc/cpuinfo 2>/dev/null | sort -u | wc -l)"',
  'echo "cores=$(awk -F: \'/^cpu cores/{print $2; exit}\' /proc/cpuinfo 2>/dev/null)"',
  'echo "nproc=$(nproc 2>/dev/null)"',
  'echo "user=$(id -un)"',
  'echo "uid=$(id -u)"',
  'echo "systemd=$(cat /proc/1/comm 2>/dev/null)"',
].join('; ');

const NAMES: Record<string, string> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  centos: 'CentOS',
  rhel: 'RedHat',
  fedora: 'Fedora',
  alpine: 'Alpine',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  arch: 'Archlinux',
};

/** Pure: the script's `key=value` lines -> facts (the names without `ansible_`). */
export function factsFrom(stdout: string): Record<string, unknown> {
  const v: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) v[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  const id = v.id ?? '';
  const like = v.like ?? '';
  const family =
    ['debian', 'ubuntu'].includes(id) || like.includes('debian')
      ? 'Debian'
      : ['rhel', 'centos', 'fedora', 'rocky', 'almalinux'].includes(id) || /rhel|fedora/.test(like)
        ? 'RedHat'
        : id === 'alpine'
          ? 'Alpine'
          : (NAMES[id] ?? id);
  const version = v.version ?? '';
  const route = v.route ?? '';
  const word = (k: string) => new RegExp(`\\b${k} (\\S+)`).exec(route)?.[1];
  const [memTotal = 0, memFree = 0] = (v.mem ?? '').split(' ').map((n) => Math.floor(Number(n || 0) / 1024));
  const vcpus = Number(v.vcpus || v.nproc || 1);
  const sockets = Math.max(1, Number(v.sockets || 0));
  const fqdn = v.fqdn || v.nodename || '';
  const address = word('src');
  return {
    os_family: family,
    distribution: NAMES[id] ?? id,
    distribution_version: version,
    distribution_major_version: version.split('.')[0] ?? '',
    distribution_release: v.codename ?? '',
    architecture: v.arch ?? '',
    system: v.system ?? '',
    kernel: v.kernel ?? '',
    hostname: (v.nodename ?? '').split('.')[0] ?? '',
    nodename: v.nodename ?? '',
    fqdn,
    domain: fqdn.includes('.') ? fqdn.slice(fqdn.indexOf('.') + 1) : '',
    default_ipv4: address ? { address, interface: word('dev') ?? '', gateway: word('via') ?? '' } : {},
    all_ipv4_addresses: (v.addrs ?? '')
      .split(' ')
      .map((a) => a.split('/')[0]!)
      .filter((a) => a !== '' && !a.startsWith('127.')),
    memtotal_mb: memTotal,
    memfree_mb: memFree,
    processor_count: sockets,
    processor_cores: Number(v.cores || 0) || Math.max(1, Math.floor(vcpus / sockets)),
    processor_vcpus: vcpus,
    processor_nproc: Number(v.nproc || vcpus),
    user_id: v.user ?? '',
    user_uid: Number(v.uid || 0),
    pkg_mgr: family === 'Debian' ? 'apt' : family === 'RedHat' ? 'dnf' : family === 'Alpine' ? 'apk' : 'unknown',
    service_mgr: v.systemd === 'systemd' ? 'systemd' : v.systemd || 'unknown',
  };
}

/** The facts as variables: `ansible_facts` and each fact as `ansible_<name>`. */
export function factVariables(facts: Record<string, unknown>): Record<string, unknown> {
  return { ansible_facts: facts, ...Object.fromEntries(Object.entries(facts).map(([k, x]) => [`ansible_${k}`, x])) };
}

export async function gatherFacts(exec: Executor): Promise<Record<string, unknown>> {
  const r = await exec.run(['sh', '-c', SCRIPT], { label: 'gather facts' });
  return factVariables(factsFrom(r.stdout));
}

/** Every `ansible_<fact>` name (for the static undefined-variable check). */
export const FACT_VARIABLES: ReadonlySet<string> = new Set(Object.keys(factVariables(factsFrom(''))));
