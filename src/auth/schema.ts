/** Request bodies of /auth (DESIGN.md §6), parsed with zod before any verb runs. */
import { z } from 'zod';
import { displayNameSchema, emailSchema, passwordSchema, usernameSchema } from '../users/schema.js';

/** Login and confirmation fields are only bounded, not format-checked: a wrong value is just wrong. */
const anyPassword = z.string().min(1).max(1024);
const code = z.string().trim().min(1).max(64);

export const registerBody = z.object({
  username: usernameSchema,
  password: passwordSchema,
  email: emailSchema.nullish(),
  display_name: displayNameSchema.nullish(),
  invite_code: z.string().trim().min(1).max(64).optional(),
});

export const loginBody = z.object({
  username: z.string().min(1).max(64),
  password: anyPassword,
  mfa_code: code.optional(),
});

export const refreshBody = z.object({ refresh_token: z.string().min(1).max(256) });
export const logoutBody = z.object({ refresh_token: z.string().min(1).max(256).optional() });
export const sessionParams = z.object({ id: z.string().min(1).max(64) });

/** Changing `email` needs `current_password` (and `mfa_code` when MFA is on); checked in the verb. */
export const updateMeBody = z
  .object({
    display_name: displayNameSchema.nullable().optional(),
    email: emailSchema.nullable().optional(),
    current_password: anyPassword.optional(),
    mfa_code: code.optional(),
  })
  .strict();

export const changePasswordBody = z.object({ current_password: anyPassword, new_password: passwordSchema });
export const mfaSetupBody = z.object({ password: anyPassword });
export const mfaVerifyBody = z.object({ code });
export const mfaConfirmBody = z.object({ password: anyPassword, code });
export const forgotPasswordBody = z.object({ username: z.string().min(1).max(64) });
export const resetPasswordBody = z.object({ token: z.string().min(1).max(256), new_password: passwordSchema });

export type RegisterBody = z.output<typeof registerBody>;
export type LoginBody = z.output<typeof loginBody>;
export type UpdateMeBody = z.output<typeof updateMeBody>;
export type ChangePasswordBody = z.output<typeof changePasswordBody>;
export type ResetPasswordBody = z.output<typeof resetPasswordBody>;
