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

/**
 * Stable reason codes of answers the data plane gives before (or instead of) a policy decision.
 * The first six are the ones lib/metrics labels; the rest are counted there as 'other'.
 */
export const DataPlaneCodes = {
  bad_request: 'malformed request, bad header bytes or conflicting framing (400/408/417)',
  method_not_allowed: 'method outside GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH (405)',
  body_too_large: 'body over 100 KiB, or over 100 MiB on the signature-exempt uploads (413)',
  headers_too_large: 'request target over 8 KiB (414) or header block over 32 KiB (431)',
  unattributed: 'connection not redirected by the agent, no kernel record (421)',
  no_policy: 'no policy snapshot yet',
  too_many_connections: 'the caller holds too many open connections (503; see connection limits)',
  header_timeout: 'request head or body too slow (408)',
  upstream_unreachable: 'metadata service refused or reset the connection (502)',
  upstream_connect_timeout: 'connect to the metadata service timed out (503)',
  upstream_timeout: 'metadata service did not answer in time (503)',
  upstream_bad_response: 'metadata service sent an unparsable response (502)',
  client_closed: 'client went away before the response was complete',
  local: 'answered locally (/provision, /gpa-aggregated-status)',
} as const;

/** The data-plane code for an agent-generated status. */
export function codeForStatus(status: number): keyof typeof DataPlaneCodes {
  switch (status) {
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'body_too_large';
    case 414:
    case 431:
      return 'headers_too_large';
    case 421:
      return 'unattributed';
    case 408:
      return 'header_timeout';
    default:
      return 'bad_request';
  }
}
