import type * as Http from 'node:http';
import { createRequire } from 'node:module';

// Node 24: an ESM import of node:http evaluates its lazy WebSocket/CloseEvent/MessageEvent getters,
// loading the bundled undici (~2.3 MiB heap per thread). require() does not.
const http: typeof Http = createRequire(import.meta.url)('node:http');
export const { createServer, request } = http;
