#!/usr/bin/env node
// The `zeropool` command: runs the TypeScript CLI through tsx (a dependency), so no build step is needed.
require('tsx/cjs');
require('../src/cli/main.ts').cliMain(process.argv.slice(2));
