import { type ActionSpec, input } from '../input-spec.js';

export const probeInputs = {
  url: input.list({ description: 'URL(s) to probe', required: true }),
  timeout: input.duration({ description: 'Timeout of one request', default: '5s' }),
};

export const probeSpec: ActionSpec<typeof probeInputs> = {
  name: 'Dyce probe',
  id: 'probe',
  description:
    'Post-deploy HTTP(S) health probe with blackbox_exporter http_2xx semantics, retries, conditions, TLS checks and alerts.',
  inputs: probeInputs,
  outputs: { success: { description: 'true when every URL passed' } },
  branding: { icon: 'activity', color: 'green' },
};
