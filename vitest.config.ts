import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, fast, no host) and `lab` (behaviour against the real lab: dockerd, registry,
// sshd, nginx, the Loki plugin). `npm test` runs both; `npm run test:unit` is the fast loop.
export default defineConfig({
  test: {
    // Lab tests share one lab (ports, daemons); run files one at a time.
    fileParallelism: false,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 10_000 } },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts', 'test/bundle/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          globalSetup: ['test/lab/global-setup.ts'],
        },
      },
    ],
  },
});
