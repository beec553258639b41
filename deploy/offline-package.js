'use strict';
// A local osls plugin with two jobs, so `npx serverless package` works on a clean clone, offline:
// 1. Before packaging, build the runtime-dependencies layer for Lambda's platform
//    (deploy/build_layer.py: pip --platform manylinux2014_<arch> --only-binary=:all:).
// 2. On `serverless package`, skip osls's comparison of each layer with the deployed stack's:
//    it calls CloudFormation DescribeStacks, which needs AWS credentials and a network
//    (serverless/serverless#8187). `serverless deploy` still compares, so an unchanged layer is
//    not uploaded again.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class OfflinePackage {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { 'before:package:createDeploymentArtifacts': () => this.buildLayer() };
    const command = (serverless.processedInput && serverless.processedInput.commands) || [];
    if (command[0] === 'package') this.skipLayerComparison();
  }

  skipLayerComparison() {
    for (const plugin of this.serverless.pluginManager.plugins) {
      if (plugin.constructor.name === 'AwsCompileLayers') {
        plugin.compareWithLastLayer = async (layerName) =>
          this.serverless.cli.log(`offline package: layer ${layerName} not compared with the deployed stack`);
      }
    }
  }

  buildLayer() {
    const provider = this.serverless.service.provider;
    const version = String(provider.runtime || '').replace(/^python/, '');
    const root = this.serverless.serviceDir || this.serverless.config.servicePath;
    const venvPython = path.join(root, '.venv', 'bin', 'python');
    const python = fs.existsSync(venvPython) ? venvPython : 'python3';
    const args = [path.join(root, 'deploy', 'build_layer.py'), '--python-version', version, '--arch', provider.architecture || 'arm64'];
    const result = spawnSync(python, args, { cwd: root, stdio: 'inherit' });
    if (result.status !== 0) {
      throw new this.serverless.classes.Error(`building the layer failed: ${python} ${args.join(' ')}`);
    }
  }
}

module.exports = OfflinePackage;
