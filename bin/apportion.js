#!/usr/bin/env node
// Entry point of the `apportion` command: runs the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../orchestrator/cli.ts');
