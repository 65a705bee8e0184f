import { Buffer } from 'node:buffer';
import { ALLOW_HEADER_VALUE } from './request-head.js';

/** The marker on every response that passed through the agent (spec section 4). */
export const PASS_THROUGH_MARKER = 'x-ms-azure-host-authorization: value\r\n';

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  411: 'Length Required',
  413: 'Content Too Large',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  421: 'Misdirected Request',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Reason phrase for a status the agent generates. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Error';
}

/**
 * A complete response the agent generates itself. `close` adds `connection: close`; agent errors
 * always close (spec section 5) so a confused client cannot desynchronise what follows.
 */
export function localResponse(
  status: number,
  body: string,
  opts: { contentType?: string; close?: boolean; headOnly?: boolean } = {},
): Buffer {
  const payload = Buffer.from(body, 'utf8');
  let head =
    'HTTP/1.1 ' +
    status +
    ' ' +
    reasonPhrase(status) +
    '\r\ncontent-type: ' +
    (opts.contentType ?? 'text/plain; charset=utf-8') +
    '\r\ncontent-length: ' +
    payload.length +
    '\r\n' +
    PASS_THROUGH_MARKER;
  if (status === 405) head += 'allow: ' + ALLOW_HEADER_VALUE + '\r\n';
  if (opts.close !== false) head += 'connection: close\r\n';
  head += '\r\n';
  const h = Buffer.from(head, 'latin1');
  return opts.headOnly ? h : Buffer.concat([h, payload]);
}

/** The body of an agent-generated error: a short reason and the stable code, for humans and logs. */
export function errorBody(status: number, code: string, detail: string): string {
  return JSON.stringify({ error: reasonPhrase(status), code, detail }) + '\n';
}

export const CONTINUE_100 = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
