'use strict';
// A local osls plugin with three jobs, so `npx serverless package` works on a clean clone, offline:
// 1. Before packaging, build the runtime-dependencies layer for Lambda's platform
//    (deploy/build_layer.py: pip --platform manylinux2014_<arch> --only-binary=:all:).
// 2. Before packaging, give each function's zip exactly the project files its handler imports,
//    transitively (deploy/function_files.py reads the import statements), not all of shared/.
// 3. On `serverless package`, skip osls's comparison of each layer with the deployed stack's:
//    it calls CloudFormation DescribeStacks, which needs AWS credentials and a network
//    (serverless/serverless#8187). `serverless deploy` still compares, so an unchanged layer is
//    not uploaded again.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class OfflinePackage {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => {
        this.buildLayer();
        this.functionFiles();
      },
    };
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

  python() {
    const root = this.serverless.serviceDir || this.serverless.config.servicePath;
    const venvPython = path.join(root, '.venv', 'bin', 'python');
    return { root, python: fs.existsSync(venvPython) ? venvPython : 'python3' };
  }

  functionFiles() {
    const { root, python } = this.python();
    const functions = this.serverless.service.functions || {};
    const handlers = {};
    for (const [name, fn] of Object.entries(functions)) {
      handlers[name] = `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.py`;
    }
    const args = [path.join(root, 'deploy', 'function_files.py'), ...Object.values(handlers)];
    const result = spawnSync(python, args, { cwd: root, encoding: 'utf8' });
    if (result.status !== 0) {
      throw new this.serverless.classes.Error(`listing the functions' files failed: ${result.stderr}`);
    }
    const files = JSON.parse(result.stdout);
    for (const [name, fn] of Object.entries(functions)) {
      fn.package = fn.package || {};
      fn.package.patterns = [...(fn.package.patterns || []), ...files[handlers[name]]];
    }
  }

  buildLayer() {
    const provider = this.serverless.service.provider;
    const version = String(provider.runtime || '').replace(/^python/, '');
    const { root, python } = this.python();
    const args = [path.join(root, 'deploy', 'build_layer.py'), '--python-version', version, '--arch', provider.architecture || 'arm64'];
    const result = spawnSync(python, args, { cwd: root, stdio: 'inherit' });
    if (result.status !== 0) {
      throw new this.serverless.classes.Error(`building the layer failed: ${python} ${args.join(' ')}`);
    }
  }
}

module.exports = OfflinePackage;
