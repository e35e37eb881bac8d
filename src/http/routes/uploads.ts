import type { Router } from 'express';
import type { AppContext } from '../../app/context.js';
export function uploadRoutes(_r: Router, _c: AppContext): void {}
