#!/usr/bin/env node
// Entry point of the `apportion` command: the compiled CLI (npm run build
// writes dist/; the package ships it, and `npm ci` in a checkout builds it).
await import('../dist/orchestrator/cli.js');
