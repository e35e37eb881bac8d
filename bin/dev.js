#!/usr/bin/env -S node --import tsx
// Runs the CLI from the TypeScript sources (commands/*.ts) without a build.
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
