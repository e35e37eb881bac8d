/**
 * The JSON body reader. Replaces ultimate-express's `express.json()`, which on Node 20 costs about a
 * third of a message create's CPU (an AsyncResource.bind per request, type-is, inflate set-up).
 * Reads only `application/json` bodies of POST/PUT/PATCH (so raw uploads stream untouched), refuses
 * compressed bodies, enforces the limit from Content-Length and while reading, and reports errors in
 * the shapes the error mapper knows (SyntaxError → 400, "Request entity too large" → 413).
 */
import type { NextFunction, Request, Response } from 'express';
import { errors } from '../errors.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export const isJsonType = (type: string | undefined): boolean => {
  if (!type) return false;
  const bare = type.split(';', 1)[0]!.trim().toLowerCase();
  return bare === 'application/json';
};

const bodySizes = new WeakMap<Request, number>();

/** The size in bytes of the JSON body read for `req` (0 when none), for routes with a tighter limit. */
export const jsonBodySize = (req: Request): number => bodySizes.get(req) ?? 0;

/**
 * `rawBody(req)` marks routes whose body is a raw stream (uploads): never read here whatever its
 * Content-Type, so the route can refuse a JSON-typed upload with its documented 415 instead of this
 * reader answering 400 for a body that is not JSON.
 */
export function jsonBody(limitBytes: number, rawBody: (req: Request) => boolean = () => false) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (!BODY_METHODS.has(req.method) || !isJsonType(req.headers['content-type']) || rawBody(req)) {
      next();
      return;
    }
    const encoding = req.headers['content-encoding'];
    if (encoding && encoding.toLowerCase() !== 'identity') {
      next(errors.unsupportedMediaType('Compressed request bodies are not accepted.'));
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limitBytes) {
      next(new Error('Request entity too large'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      next(err);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return; // keep draining so the connection stays usable
      size += chunk.length;
      if (size > limitBytes) return finish(new Error('Request entity too large'));
      chunks.push(chunk);
    });
    req.on('error', (err) => finish(err));
    req.on('end', () => {
      if (settled) return;
      bodySizes.set(req, size);
      const text = Buffer.concat(chunks, size).toString('utf8');
      if (text.length === 0) {
        req.body = {};
        return finish();
      }
      try {
        req.body = JSON.parse(text);
      } catch (e) {
        return finish(e);
      }
      finish();
    });
  };
}
