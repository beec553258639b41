// Drives the local emulator with Alipay's Node SDK v4, unchanged: exec() on gateway.do (v1) and
// curl() on OpenAPI v3. Reads {config, steps} as JSON on stdin; prints one JSON result per step.
// tests/dev/test_sdks_against_emulator.py runs it (npm ci into tests/dev/node on first use).
'use strict';
const { AlipaySdk } = require('alipay-sdk');

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const sdk = new AlipaySdk({ ...input.config, camelcase: false, timeout: 30000 });
  const results = [];
  for (const step of input.steps) {
    try {
      if (step.proto === 'v3') {
        const reply = await sdk.curl('POST', '/v3/' + step.method.replace(/\./g, '/'),
          { body: step.biz, needEncrypt: Boolean(step.needEncrypt) });
        results.push({ ok: true, status: reply.responseHttpStatus, data: reply.data });
      } else {
        const params = { bizContent: step.biz, needEncrypt: Boolean(step.needEncrypt) };
        if (step.notify_url) params.notify_url = step.notify_url;
        const data = await sdk.exec(step.method, params, { validateSign: step.validateSign !== false });
        delete data.traceId;
        results.push({ ok: true, data });
      }
    } catch (err) {
      results.push({ ok: false, name: err.name, code: err.code || null, message: String(err.message).slice(0, 300),
                     status: err.responseHttpStatus || null });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => { console.error(err); process.exit(1); });
