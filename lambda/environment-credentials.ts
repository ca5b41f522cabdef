/**
 * Stands in for `@aws-sdk/credential-provider-node` in the functions' bundles (an esbuild alias,
 * `functionBundling` in `lib/constructs/webhook-receiver.ts`). A Lambda function's credentials are
 * always in its environment: "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN – The
 * access keys obtained from the function's execution role." (Lambda Developer Guide, "Defined
 * runtime environment variables",
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
 * So the default chain's other providers (SSO, shared INI files, STS web identity, credential
 * process, container and instance metadata) and the STS and SSO clients they carry are never used
 * there; without them the webhook bundle is about 125 KB smaller and loads about a fifth faster
 * (`bench/webhook.ts`). Every SDK client takes `defaultProvider` as its `credentialDefaultProvider`.
 */
export { fromEnv as defaultProvider } from '@aws-sdk/credential-provider-env';
