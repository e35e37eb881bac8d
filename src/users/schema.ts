/** Validation of user fields, shared by HTTP routes and the CLI. */
import { z } from 'zod';

export const usernameSchema = z
  .string()
  .regex(/^[a-z0-9_]{3,32}$/, 'must be 3-32 characters of lowercase letters, digits and underscores');
export const passwordSchema = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(128, 'must be at most 128 characters');
export const emailSchema = z
  .string()
  .max(254)
  .regex(/^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/, 'must be an email address');
export const displayNameSchema = z.string().trim().min(1).max(64);
