import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Melton playbook and inventory, copied unchanged from the reference workload. */
export const MELTON_DIR = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/playbooks/melton');
