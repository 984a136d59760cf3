#!/usr/bin/env node
// The CDK app: `npx cdk synth` / `npx cdk deploy --all` in deploy/cdk.
// Parameters: -c params=FILE.json (see params.example.json), single values
// with -c KEY=VALUE. Nothing is looked up in AWS at synthesis.
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { build } from '../lib/app';
import { paramsFromContext } from '../lib/params';

const app = new cdk.App();
const params = paramsFromContext((k) => app.node.tryGetContext(k), path.resolve(__dirname, '../..'));
build(params, { app });
app.synth();
