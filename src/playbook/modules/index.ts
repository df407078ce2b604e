import { aptModule } from './apt.js';
import { assertModule, debugModule, setFactModule } from './basic.js';
import { includeVarsModule, metaModule } from './control.js';
import { dockerContainerModule, dockerImageModule, dockerLoginModule } from './docker.js';
import { copyModule, fileModule, lineinfileModule, statModule } from './files.js';
import { authorizedKeyModule, groupModule, serviceModules, ufwModule, userModule } from './system.js';
import type { ModuleDef } from './types.js';

export type { ModuleContext, ModuleDef, ModuleResult } from './types.js';

/** Every module Dyce runs, under its short name, its FQCN and (for builtins) ansible.legacy.*. */
export function moduleRegistry(): Map<string, ModuleDef> {
  const all = [
    debugModule,
    setFactModule,
    assertModule,
    metaModule,
    includeVarsModule,
    aptModule,
    dockerLoginModule,
    dockerImageModule,
    dockerContainerModule,
    fileModule,
    statModule,
    copyModule,
    lineinfileModule,
    userModule,
    groupModule,
    authorizedKeyModule,
    ...serviceModules,
    ufwModule,
  ];
  const map = new Map<string, ModuleDef>();
  for (const m of all) {
    map.set(m.name, m);
    map.set(`${m.collection}.${m.name}`, m);
    if (m.collection === 'ansible.builtin') map.set(`ansible.legacy.${m.name}`, m);
  }
  return map;
}
