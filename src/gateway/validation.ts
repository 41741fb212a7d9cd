// Validation failures as problem+json: a bad path id is 400 invalid_id (as the replaced system
// answered), anything else 422 validation_failed with every issue listed.
import type { Hook } from '@hono/zod-openapi';
import { AppError } from '../core/errors.ts';

export const validationHook: Hook<unknown, any, any, any> = (result) => {
  if (result.success) return;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  if (result.target === 'param') {
    const what = issues.map((i) => `${i.path || 'path'}: ${i.message}`).join('; ');
    throw new AppError(400, 'invalid_id', `The path is invalid (${what}).`, { errors: issues });
  }
  const where = result.target === 'json' ? 'request body' : result.target === 'query' ? 'query string' : result.target;
  throw new AppError(422, 'validation_failed', `The ${where} is invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, {
    errors: issues,
  });
};
