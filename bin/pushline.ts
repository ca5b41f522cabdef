#!/usr/bin/env node
import { resolve } from 'node:path';
import { App } from 'aws-cdk-lib';
import { ConfigError, loadConfig } from '../lib/config/load';
import { createPushlineStacks } from '../lib/pushline-app';

const app = new App();
const configPath = resolve(String(app.node.tryGetContext('config') ?? 'pipeline.config.yaml'));

try {
  createPushlineStacks(app, loadConfig(configPath));
} catch (err) {
  if (err instanceof ConfigError) {
    // A config mistake is the user's to fix: print what and where, not a stack trace.
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
