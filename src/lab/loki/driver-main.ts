/**
 * Entry point of the plugin program, bundled to one file and run by the daemon inside the plugin's rootfs
 * (config.json `entrypoint`). The socket name matches config.json `interface.socket`.
 */
import { runLokiDriver } from './driver.js';

const driver = await runLokiDriver({
  socketPath: process.env.LOKI_DRIVER_SOCKET ?? '/run/docker/plugins/loki.sock',
  logDir: process.env.LOKI_DRIVER_LOG_DIR ?? '/var/log/docker',
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    void driver.close().finally(() => process.exit(0));
  });
}
