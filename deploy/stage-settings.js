'use strict';
// A local osls plugin: the deployer's environment settings that shape the template are checked
// before anything is packaged, with one clear line each, instead of a CloudFormation rollback
// minutes into a deploy (README, "Deploy").
const RULES = {
  LAMBDA_ARCH: (v) => ['arm64', 'x86_64'].includes(v) || 'must be arm64 or x86_64',
  API_THROTTLE_RATE: (v) => /^[1-9][0-9]{0,5}$/.test(v) || 'must be a whole number of requests per second, 1 or more',
  API_THROTTLE_BURST: (v) => /^[1-9][0-9]{0,4}$/.test(v) || 'must be a whole number of requests, 1 to 99999',
  JWT_ISSUER: (v) => /^https:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(v) || 'must be the issuer URL (https://…, as the token\'s iss claim)',
  JWT_AUDIENCE: (v) => /^[^\s,]+(,[^\s,]+)*$/.test(v) || 'must be one or more comma-separated client ids',
  PUBLIC_BASE_URL: (v) => /^https:\/\/[A-Za-z0-9.-]+(:[0-9]+)?(\/[^\s?#]*[^\s?#/])?$/.test(v) || 'must be https://host[/path] with no trailing slash, query or fragment',
  ALARM_RECONCILE_BEHIND_SECONDS: (v) => /^[1-9][0-9]*$/.test(v) || 'must be a whole number of seconds',
  ALARM_REFUND_PENDING_SECONDS: (v) => /^[1-9][0-9]*$/.test(v) || 'must be a whole number of seconds',
  ALARM_NOTIFY_FAIL_PERCENT: (v) => (/^[0-9]+$/.test(v) && Number(v) < 100) || 'must be a whole percentage, 0 to 99',
};

function problems(env) {
  const found = [];
  for (const [name, rule] of Object.entries(RULES)) {
    if (env[name] === undefined || env[name] === '') continue;
    const verdict = rule(env[name]);
    if (verdict !== true) found.push(`${name} ${verdict}`);
  }
  if (env.JWT_ISSUER && !env.JWT_AUDIENCE) found.push('JWT_AUDIENCE must be set with JWT_ISSUER (the app client ids tokens are issued to)');
  if (env.JWT_AUDIENCE && !env.JWT_ISSUER) found.push('JWT_ISSUER must be set with JWT_AUDIENCE');
  if (Number(env.API_THROTTLE_BURST || 100) < Number(env.API_THROTTLE_RATE || 50) / 10) found.push('API_THROTTLE_BURST is below a tenth of API_THROTTLE_RATE: requests would be refused in bursts');
  return found;
}

class StageSettings {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { 'before:package:initialize': () => this.check() };
  }

  check() {
    const found = problems(process.env);
    if (found.length) {
      throw new this.serverless.classes.Error(`deployer's environment: ${found.join('; ')}`);
    }
  }
}

module.exports = StageSettings;
module.exports.problems = problems;
