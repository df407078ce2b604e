import '../../src/util/cjs-globals.js';

// The post step after a clean main step has nothing to do (no lock was left: src/deploy/action.ts saves
// `deploy_locks` as `[]`), so it ends before the engine is even evaluated: no SSH connection, and about 0.6 s
// less of the time a user waits for. `eager` keeps run.js inside the one-file bundle (ncc).
const post = process.env.STATE_isPost === 'true';
const locks = process.env.STATE_deploy_locks ?? '';
if (!post || (locks !== '' && locks !== '[]')) {
  const { run } = await import(/* webpackMode: "eager" */ './run.js');
  await run();
}
