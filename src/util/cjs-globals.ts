import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Import this first in an action entry point that reaches ssh2. ssh2's poly1305 module (Emscripten output)
 * reads the CommonJS global `__dirname`, which does not exist in the ESM bundle ncc makes of an action.
 */
const g = globalThis as { __dirname?: string };
g.__dirname ??= dirname(fileURLToPath(import.meta.url));
