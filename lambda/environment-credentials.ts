/**
 * Stands in for `@aws-sdk/credential-provider-node` in the functions' bundles (an esbuild alias,
 * `functionBundling` in `lib/constructs/pushline-function.ts`). A Lambda function's credentials are
 * always in its environment: "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN – The
 * access keys obtained from the function's execution role." (Lambda Developer Guide, "Defined
 * runtime environment variables",
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
 * So the default chain's other providers (SSO, shared INI files, STS web identity, credential
 * process, container and instance metadata) and the STS and SSO clients they carry are never used
 * there; without them the webhook bundle is 133 KB smaller (489 → 356 KB) and its cold load went
 * from 3.4x to 3.0x a bare `node` start (`bench/webhook.ts`, Node 22). Every SDK client takes
 * `defaultProvider` as its `credentialDefaultProvider`.
 */
export { fromEnv as defaultProvider } from '@aws-sdk/credential-provider-env';
