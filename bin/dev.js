#!/usr/bin/env node
// Runs the CLI from the TypeScript sources (commands/*.ts) without a build: tsx is registered here and
// oclif is pointed at commands/ instead of dist/commands. Unlike execute({development: true}), oclif's
// debug mode stays off, so failures print exactly as in production (stack traces only with --debug).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execute, settings } from '@oclif/core';
import { register } from 'tsx/esm/api';

register();
settings.enableAutoTranspile = false;
const root = fileURLToPath(new URL('..', import.meta.url));
const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
pjson.oclif.commands = { ...pjson.oclif.commands, target: './commands' };
await execute({ loadOptions: { root, pjson } });
