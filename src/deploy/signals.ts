// Kept apart from action.ts, which imports @actions/core: the CLI needs this, and not the toolkit's load time.

/** Aborts on SIGINT/SIGTERM (a cancelled job): the engine stops starting work and releases its locks. */
export function abortOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const h = () => controller.abort(`${sig} received`);
    process.once(sig, h);
    return [sig, h] as const;
  });
  return {
    signal: controller.signal,
    dispose: () => {
      for (const [sig, h] of handlers) process.removeListener(sig, h);
    },
  };
}
