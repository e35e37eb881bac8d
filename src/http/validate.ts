/** zod → VALIDATION_FAILED with per-field details. Used by every route for body, query and params. */
import type { z } from 'zod';
import { errors } from '../errors.js';

export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  throw errors.validation(
    'The request is not valid.',
    result.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.') || '(body)', message: i.message })),
  );
}
